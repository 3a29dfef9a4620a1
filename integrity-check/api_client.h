/* integrity-check/api_client.h -- zonedist-check's client of zonedistd's
 * HTTP API (server/api.h, docs/API.md), over TCP with libevent's evhttp.
 *
 * Threads: any; each call runs its own event base.  Limits: a reply waits
 * at most timeout_ms between reads; a JSON body is at most max_body bytes,
 * a streamed body at most max_stream bytes (ZD_ELIMIT).  Lines of a
 * streamed body are at most 70000 bytes (a record's presentation form). */
#ifndef ZD_API_CLIENT_H
#define ZD_API_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

struct api_client {
	char host[256];
	uint16_t port;
	uint32_t timeout_ms;
	size_t max_body;
	size_t max_stream;
};

/* "http://HOST:PORT" (also "HOST:PORT" and "HOST@PORT").  On failure why
 * says what is wrong. */
zd_err api_client_parse(const char *url, struct api_client *out, char *why, size_t whylen);

/* GET path.  On ZD_OK *status is the HTTP status and *body a new NUL
 * terminated buffer (free()) of *len bytes.  ZD_EIO when zonedistd cannot
 * be reached or does not answer in time. */
zd_err api_client_get(const struct api_client *c, const char *path, int *status, char **body,
                      size_t *len, char *why, size_t whylen);

/* GET path, handing each line of the body (without its newline) to fn as it
 * arrives; a non-ZD_OK return of fn ends the request and is passed back. */
typedef zd_err (*api_line_fn)(void *arg, const char *line, size_t len);
zd_err api_client_get_lines(const struct api_client *c, const char *path, int *status,
                            api_line_fn fn, void *arg, char *why, size_t whylen);

/* Percent-encode text for a URL path segment into out (outlen bytes). */
zd_err api_client_escape(const char *text, char *out, size_t outlen);

#endif
