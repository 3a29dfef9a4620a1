/* server/status_page.h -- the operator's status page: zonedistd's status
 * (the JSON of GET /api/v1/status, docs/API.md) as one self-contained HTML
 * page with red/yellow/green/grey bars, served as GET / and GET /status.html.
 * No script, style or image from the network: everything is in the page
 * (inline <style> only, so it passes the API's Content-Security-Policy); it
 * reloads itself every 5 s (meta refresh) and needs no JavaScript.
 *
 * What the page promises to tools (tests/system/test_status_page.py and any
 * scraper): one <tr class="zone" data-zone="NAME"> per zone; in it one
 * element per bar with class "bar" and exactly one of "green", "yellow",
 * "red", "grey" (not applicable or unknown), data-bar="latency",
 * "signatures", "keys", "hsm", "database", or "secondary" (one per
 * secondary, with data-secondary="ADDRESS"), a visible label and a title=
 * saying why.  The thresholds are in docs/API.md, section "Status page".
 *
 * Threads: the API's.  Limits: the page grows with zones and secondaries
 * only (both bounded by the configuration and OPDB_SECONDARIES_MAX). */
#ifndef ZD_STATUS_PAGE_H
#define ZD_STATUS_PAGE_H

#include <jansson.h>

#include "common/zd_err.h"

struct evbuffer;
struct zd_alarm_config;

/* Append the page for status (borrowed; NULL or any shape is accepted: a
 * field missing or of another type is shown as unknown, never trusted) to
 * out (borrowed).  The secondary-lag and signature-headroom thresholds are
 * the alarms' (th, borrowed): a bar turns yellow or red on the facts that
 * also raise an alarm.  Every string from status is HTML-escaped.  ZD_ENOMEM
 * when out could not grow: out then holds part of a page, which the caller
 * discards. */
zd_err status_page_render(const json_t *status, const struct zd_alarm_config *th,
                          struct evbuffer *out);

#endif
