/* ctl/zonedistctl.c -- zonedistctl, the operator's client of zonedistd's
 * HTTP API (docs/API.md, docs/ZONEDISTCTL.md).
 *
 *   zonedistctl [--api URL] [--token-file FILE] [--json] [--timeout MS] COMMAND ARGS
 *
 * Read-only commands (status, zones, zone, digest, diff, history, trace,
 * transfers, rejected) need no token; hold, release and retry send the
 * content of the token file as "Authorization: Bearer".  Human output is
 * built from whatever fields the answer has (a missing or odd field prints
 * as "-" or as its JSON); --json prints the answer as zonedistd sent it.
 *
 * Exit codes: 0 done; 1 zonedistd answered an error (4xx/5xx) or something
 * that is not JSON, or the output could not be written; 2 zonedistd cannot
 * be reached or broke off; 3 usage (also an unreadable token file). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/zd_clock.h"
#include "common/zd_parse.h"
#include "integrity-check/api_client.h"

#define EXIT_ANSWER      1
#define EXIT_UNREACHABLE 2
#define EXIT_USAGE       3

#define DEFAULT_API    "unix:/run/zonedist/api.sock"
#define PATH_MAX_BYTES 2048              /* a request's path and query */
#define BODY_MAX_BYTES ((size_t)1 << 30) /* a JSON answer (a diff of many serials) */
#define CELL_BYTES     160               /* a table cell made from a number or a list */

enum {
	OPT_SERIAL = 1 << 0,
	OPT_LIMIT = 1 << 1,
	OPT_DAYS = 1 << 4,
	OPT_BY = 1 << 2,
	OPT_REASON = 1 << 3,
};

struct ctl {
	struct api_client api;
	const char *api_url;
	const char *token_file;
	char *token; /* owned; NULL: none sent */
	int json;
	uint32_t timeout_ms;
	const char *serial, *limit, *by, *reason; /* borrowed from argv */
	const char *days;                         /* keys plan --days */
	unsigned given;                           /* OPT_* seen */
	char zone_esc[1024];                      /* the command's ZONE, escaped */
	uint64_t lines;                           /* zone: lines written */
	int out_errno;                            /* zone: why stdout failed */
};

struct command {
	const char *name;
	int min_args, max_args; /* after the command; -1: no maximum */
	unsigned allowed, required;
	int (*run)(struct ctl *x, char **args, int n);
	int post;
	const char *synopsis, *what;
};

/* --- output helpers -------------------------------------------------------- */

/* The server's strings may hold anything the registry held: control bytes
 * (but tabs) are written as \xNN, so they cannot drive the terminal. */
static void
put_safe(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

/* A new copy of s as put_safe() writes it, tabs as one space (a table
 * cell); NULL when out of memory. */
static char *
safe_dup(const char *s)
{
	size_t n = 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += (*p < 0x20 || *p == 0x7f) ? 4 : 1;
	char *out = malloc(n), *o = out;
	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\t') { /* a record's fields: one space keeps the columns */
			*o++ = ' ';
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(o, 5, "\\x%02x", *p);
			o += 4;
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	return out;
}

/* Any JSON value as text: "-" for null or absent, yes/no, numbers, the
 * elements of an array joined by ",", anything else as compact JSON.  The
 * result is buf or a string inside v. */
static const char *
val(const json_t *v, char *buf, size_t len)
{
	if (v == NULL || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	if (json_is_true(v))
		return "yes";
	if (json_is_false(v))
		return "no";
	if (json_is_array(v)) {
		size_t at = 0, i;
		json_t *e;
		buf[0] = '\0';
		json_array_foreach(v, i, e)
		{
			char one[64];
			const char *t = json_is_array(e) || json_is_object(e)
			                        ? "..."
			                        : val(e, one, sizeof one);
			int w = snprintf(buf + at, len - at, "%s%s", i ? "," : "", t);
			if (w < 0 || (size_t)w >= len - at) {
				if (len > 4)
					memcpy(buf + len - 4, "...", 4);
				break;
			}
			at += (size_t)w;
		}
		return at || json_array_size(v) ? buf : "-";
	}
	char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, len, "%s", d ? d : "?");
	if (d && strlen(d) >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	free(d);
	return buf;
}

/* Milliseconds since the epoch as ISO 8601 UTC; anything else as val(). */
static const char *
ms_text(const json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return val(v, buf, len);
	json_int_t ms = json_integer_value(v);
	time_t s = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		s--;
	}
	size_t n = zd_time_utc((uint64_t)s, 1, buf, len);
	if (n == 0)
		return val(v, buf, len);
	snprintf(buf + n, len - n, ".%03dZ", frac);
	return buf;
}

/* A number with a unit ("12 ms"); anything else as val(). */
static const char *
unit_text(const json_t *v, const char *unit, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return val(v, buf, len);
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT " %s", json_integer_value(v), unit);
	return buf;
}

/* "+N ms" from t0 to t1 when both are numbers (and the difference is
 * one), else "". */
static const char *
after_text(const json_t *t0, const json_t *t1, char *buf, size_t len)
{
	json_int_t d;
	buf[0] = '\0';
	if (json_is_integer(t0) && json_is_integer(t1) &&
	    !__builtin_sub_overflow(json_integer_value(t1), json_integer_value(t0), &d))
		snprintf(buf, len, "%s%" JSON_INTEGER_FORMAT " ms", d >= 0 ? "+" : "", d);
	return buf;
}

/* Columns padded to their widest cell; the first row is the heading.  An
 * allocation failure is remembered and reported by table_print(). */
struct table {
	size_t ncol, nrow, cap;
	char **cell; /* nrow * ncol, owned */
	int failed;
};

static void
table_add(struct table *t, const char *const *cells)
{
	if (t->failed)
		return;
	if (t->nrow == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cell, cap * t->ncol * sizeof *c);
		if (c == NULL) {
			t->failed = 1;
			return;
		}
		t->cell = c;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncol; i++) {
		char *s = safe_dup(cells[i] ? cells[i] : "-");
		if (s == NULL) {
			for (size_t k = 0; k < i; k++)
				free(t->cell[t->nrow * t->ncol + k]);
			t->failed = 1;
			return;
		}
		t->cell[t->nrow * t->ncol + i] = s;
	}
	t->nrow++;
}

static int
table_print(struct table *t, const char *indent)
{
	size_t width[16] = {0};
	if (t->failed || t->ncol > 16) {
		fprintf(stderr, "zonedistctl: out of memory\n");
		return EXIT_ANSWER;
	}
	for (size_t r = 0; r < t->nrow; r++)
		for (size_t i = 0; i < t->ncol; i++) {
			size_t w = strlen(t->cell[r * t->ncol + i]);
			if (w > width[i])
				width[i] = w;
		}
	for (size_t r = 0; r < t->nrow; r++) {
		fputs(indent, stdout);
		for (size_t i = 0; i < t->ncol; i++) {
			const char *s = t->cell[r * t->ncol + i];
			if (i + 1 == t->ncol)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)width[i], s);
		}
	}
	return 0;
}

static void
table_clear(struct table *t)
{
	for (size_t i = 0; i < t->nrow * t->ncol; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->nrow = t->cap = 0;
}

/* One "label  value" line. */
static void
kv(const char *indent, const char *label, const char *value, const char *extra)
{
	printf("%s%-20s ", indent, label);
	put_safe(stdout, value);
	if (extra && *extra) {
		fputs("  ", stdout);
		put_safe(stdout, extra);
	}
	fputc('\n', stdout);
}

/* --- requests -------------------------------------------------------------- */

static int
report_error(const struct ctl *x, const struct api_reply *r)
{
	json_t *d = json_loadb(r->body, r->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(d, "error"));

	fprintf(stderr, "zonedistctl: HTTP %d: ", r->status);
	if (msg) {
		put_safe(stderr, msg);
	} else if (r->len) {
		char head[301];
		snprintf(head, sizeof head, "%s", r->body);
		put_safe(stderr, head);
	} else {
		fputs("(no message)", stderr);
	}
	fputc('\n', stderr);
	if (r->status == 401 && x->token == NULL)
		fprintf(stderr, "zonedistctl: no token was sent (--token-file or "
		                "ZONEDIST_TOKEN_FILE)\n");
	json_decref(d);
	return EXIT_ANSWER;
}

static int
report_failure(zd_err e, const char *why)
{
	if (e == ZD_EIO) {
		fprintf(stderr, "zonedistctl: %s\n", why);
		return EXIT_UNREACHABLE;
	}
	fprintf(stderr, "zonedistctl: %s (%s)\n", why[0] ? why : "the request failed",
	        zd_strerror(e));
	return EXIT_ANSWER;
}

/* Ask, and check the answer.  Returns 0 with *doc the parsed answer
 * (caller's), or with *doc NULL when --json printed it already; else the
 * exit code, the reason printed. */
static int
ask(struct ctl *x, const char *method, const char *path, json_t *body, json_t **doc)
{
	char why[600] = "";
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct api_request rq = {.method = method,
	                         .path = path,
	                         .token = body ? x->token : NULL,
	                         .body = text,
	                         .body_len = text ? strlen(text) : 0};
	struct api_reply r = {0};
	json_error_t je;
	int rc = 0;

	*doc = NULL;
	if (body && text == NULL) {
		fprintf(stderr, "zonedistctl: out of memory\n");
		return EXIT_ANSWER;
	}
	zd_err e = api_client_request(&x->api, &rq, &r, why, sizeof why);
	free(text);
	if (e != ZD_OK)
		return report_failure(e, why);
	if (r.status < 200 || r.status > 299) {
		rc = report_error(x, &r);
	} else if (x->json) {
		fwrite(r.body, 1, r.len, stdout);
		if (r.len == 0 || r.body[r.len - 1] != '\n')
			fputc('\n', stdout);
	} else if ((*doc = json_loadb(r.body, r.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)) ==
	           NULL) {
		fprintf(stderr, "zonedistctl: zonedistd's answer is not JSON (%s, at byte %d)\n",
		        je.text, je.position);
		rc = EXIT_ANSWER;
	}
	api_reply_clear(&r);
	return rc;
}

/* path = prefix ZONE suffix */
__attribute__((format(printf, 4, 5))) static int
zone_path(const struct ctl *x, char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(out, len, "/api/v1/zones/%s", x->zone_esc);
	if (n < 0 || (size_t)n >= len)
		return -1;
	va_start(ap, fmt);
	int m = vsnprintf(out + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return m < 0 || (size_t)m >= len - (size_t)n ? -1 : 0;
}

static int
too_long(void)
{
	fprintf(stderr, "zonedistctl: the request is longer than %d bytes\n", PATH_MAX_BYTES);
	return EXIT_USAGE;
}

/* --- commands -------------------------------------------------------------- */

static void
print_secondaries(const json_t *secs)
{
	struct table t = {.ncol = 9};
	static const char *const head[] = {"ADDRESS",       "KEY",  "NOTIFY", "LAST SERIAL", "LAG",
	                                   "LAST TRANSFER", "KIND", "CHECK",  "MESSAGE"};
	size_t i;
	json_t *s;

	table_add(&t, head);
	json_array_foreach(secs, i, s)
	{
		char b[6][CELL_BYTES], chk[2 * CELL_BYTES];
		json_t *c = json_object_get(s, "check");
		const char *msg = "-";
		if (json_is_object(c)) {
			char cs[CELL_BYTES], cm[CELL_BYTES];
			snprintf(chk, sizeof chk, "%s serial %s at %s",
			         val(json_object_get(c, "state"), b[5], sizeof b[5]),
			         val(json_object_get(c, "serial"), cs, sizeof cs),
			         ms_text(json_object_get(c, "checked_ms"), cm, sizeof cm));
			msg = val(json_object_get(c, "message"), b[4], sizeof b[4]);
		} else {
			snprintf(chk, sizeof chk, "%s", c ? val(c, b[5], sizeof b[5]) : "-");
		}
		const char *row[] = {val(json_object_get(s, "address"), b[0], sizeof b[0]),
		                     val(json_object_get(s, "key"), b[1], sizeof b[1]),
		                     val(json_object_get(s, "notify"), b[2], sizeof b[2]),
		                     val(json_object_get(s, "last_serial"), b[3], sizeof b[3]),
		                     NULL,
		                     NULL,
		                     NULL,
		                     chk,
		                     msg};
		char lag[CELL_BYTES], lt[CELL_BYTES], kind[CELL_BYTES];
		row[4] = val(json_object_get(s, "lag"), lag, sizeof lag);
		row[5] = ms_text(json_object_get(s, "last_transfer_ms"), lt, sizeof lt);
		row[6] = val(json_object_get(s, "last_kind"), kind, sizeof kind);
		table_add(&t, row);
	}
	if (t.nrow > 1)
		(void)table_print(&t, "    ");
	else
		printf("    (none)\n");
	table_clear(&t);
}

static void
print_zone_status(const json_t *z)
{
	char b[4][CELL_BYTES], x2[CELL_BYTES];
	const json_t *held = json_object_get(z, "held");

	printf("zone ");
	put_safe(stdout, val(json_object_get(z, "zone"), b[0], sizeof b[0]));
	printf("\n");
	kv("  ", "serial", val(json_object_get(z, "serial"), b[0], sizeof b[0]), NULL);
	kv("  ", "published", ms_text(json_object_get(z, "published_ms"), b[0], sizeof b[0]), NULL);
	kv("  ", "last latency",
	   unit_text(json_object_get(z, "last_latency_ms"), "ms", b[0], sizeof b[0]), NULL);
	kv("  ", "pending changes", val(json_object_get(z, "pending_changes"), b[0], sizeof b[0]),
	   NULL);
	if (json_is_string(held)) {
		char why[2 * CELL_BYTES + 16];
		const json_t *by = json_object_get(z, "held_by");
		snprintf(why, sizeof why, "%s%s%s%s", by && !json_is_null(by) ? "by " : "",
		         by && !json_is_null(by) ? val(by, b[1], sizeof b[1]) : "",
		         by && !json_is_null(by) ? ": " : "",
		         val(json_object_get(z, "held_reason"), b[2], sizeof b[2]));
		kv("  ", "held", json_string_value(held), why);
	} else {
		kv("  ", "held", val(held, b[0], sizeof b[0]), NULL);
	}
	kv("  ", "signed", val(json_object_get(z, "signed"), b[0], sizeof b[0]), NULL);
	const json_t *hsm = json_object_get(z, "hsm");
	if (json_is_object(hsm)) {
		const json_t *down = json_object_get(hsm, "down_for_ms");
		char extra[2 * CELL_BYTES];
		snprintf(extra, sizeof extra, "%s%s%s",
		         json_object_get(hsm, "message")
		                 ? val(json_object_get(hsm, "message"), b[1], sizeof b[1])
		                 : "",
		         down ? " down for " : "",
		         down ? unit_text(down, "ms", b[2], sizeof b[2]) : "");
		kv("  ", "hsm", val(json_object_get(hsm, "state"), b[0], sizeof b[0]), extra);
	} else {
		kv("  ", "hsm", val(hsm, b[0], sizeof b[0]), NULL);
	}
	/* docs/API.md: signature_headroom_s; zonedistd also sends an object */
	const json_t *hr = json_object_get(z, "signature_headroom_s");
	if (hr == NULL) {
		hr = json_object_get(z, "signature_headroom");
		if (json_is_object(hr))
			hr = json_object_get(hr, "seconds");
	}
	kv("  ", "signature headroom", unit_text(hr, "s", b[0], sizeof b[0]), NULL);
	snprintf(x2, sizeof x2, "oldest serial %s",
	         val(json_object_get(z, "oldest_serial_in_memory"), b[1], sizeof b[1]));
	kv("  ", "versions in memory",
	   val(json_object_get(z, "versions_in_memory"), b[0], sizeof b[0]), x2);
	kv("  ", "rejected rows", val(json_object_get(z, "rejected"), b[0], sizeof b[0]), NULL);
	printf("  secondaries\n");
	print_secondaries(json_object_get(z, "secondaries"));
}

static int
cmd_status(struct ctl *x, char **args, int n)
{
	json_t *d = NULL, *z;
	char b[CELL_BYTES];
	size_t i;
	int rc = ask(x, "GET", "/api/v1/status", NULL, &d);

	if (rc || d == NULL)
		return rc;
	kv("", "time", ms_text(json_object_get(d, "time_ms"), b, sizeof b), NULL);
	const json_t *db = json_object_get(d, "database");
	if (json_is_object(db)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)db, k, v)
		{
			char label[80];
			snprintf(label, sizeof label, "database %s", k);
			kv("", label, val(v, b, sizeof b), NULL);
		}
	} else {
		kv("", "database", val(db, b, sizeof b), NULL);
	}
	json_array_foreach(json_object_get(d, "zones"), i, z)
	{
		printf("\n");
		print_zone_status(z);
	}
	json_decref(d);
	return 0;
}

static int
cmd_zones(struct ctl *x, char **args, int n)
{
	json_t *d = NULL, *z;
	struct table t = {.ncol = 8};
	static const char *const head[] = {"ZONE",     "SERIAL",        "PUBLISHED", "DELEGATIONS",
	                                   "VERSIONS", "OLDEST SERIAL", "SIGNED",    "HELD"};
	size_t i;
	int rc = ask(x, "GET", "/api/v1/zones", NULL, &d);

	if (rc || d == NULL)
		return rc;
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "zones"), i, z)
	{
		char b[8][CELL_BYTES];
		const char *name = json_is_string(z)
		                           ? json_string_value(z)
		                           : val(json_object_get(z, "zone"), b[0], CELL_BYTES);
		const char *row[] = {
		        name,
		        val(json_object_get(z, "serial"), b[1], CELL_BYTES),
		        ms_text(json_object_get(z, "last_publish_ms"), b[2], CELL_BYTES),
		        val(json_object_get(z, "delegations"), b[3], CELL_BYTES),
		        val(json_object_get(z, "versions_in_memory"), b[4], CELL_BYTES),
		        val(json_object_get(z, "oldest_serial_in_memory"), b[5], CELL_BYTES),
		        val(json_object_get(z, "signed"), b[6], CELL_BYTES),
		        val(json_object_get(z, "held"), b[7], CELL_BYTES),
		};
		table_add(&t, row);
	}
	rc = table_print(&t, "");
	table_clear(&t);
	json_decref(d);
	return rc;
}

static zd_err
zone_line(void *arg, const char *line, size_t len)
{
	struct ctl *x = arg;
	if (fwrite(line, 1, len, stdout) != len || fputc('\n', stdout) == EOF) {
		x->out_errno = errno ? errno : EIO;
		return ZD_EIO;
	}
	x->lines++;
	return ZD_OK;
}

static int
cmd_zone(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], why[600] = "";
	struct api_reply r = {0};
	int rc = 0;

	if (zone_path(x, path, sizeof path, "/zone%s%s", x->serial ? "?serial=" : "",
	              x->serial ? x->serial : "") != 0)
		return too_long();
	struct api_request rq = {.method = "GET", .path = path, .fn = zone_line, .arg = x};
	zd_err e = api_client_request(&x->api, &rq, &r, why, sizeof why);
	if (x->out_errno) {
		if (x->out_errno == EPIPE) { /* like any filter whose reader went away */
			signal(SIGPIPE, SIG_DFL);
			raise(SIGPIPE);
		}
		fprintf(stderr, "zonedistctl: writing the zone: %s\n", strerror(x->out_errno));
		api_reply_clear(&r);
		return EXIT_ANSWER;
	}
	if (e != ZD_OK) {
		if (x->lines > 0)
			fprintf(stderr, "zonedistctl: the zone text broke off after %llu lines\n",
			        (unsigned long long)x->lines);
		return report_failure(e, why);
	}
	if (r.status != 200)
		rc = report_error(x, &r);
	api_reply_clear(&r);
	return rc;
}

static int
cmd_digest(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], b[CELL_BYTES];
	json_t *d = NULL;

	if (zone_path(x, path, sizeof path, "/digest%s%s", x->serial ? "?serial=" : "",
	              x->serial ? x->serial : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	kv("", "zone", val(json_object_get(d, "zone"), b, sizeof b), NULL);
	kv("", "serial", val(json_object_get(d, "serial"), b, sizeof b), NULL);
	kv("", "digest", val(json_object_get(d, "digest"), b, sizeof b), NULL);
	kv("", "scheme", val(json_object_get(d, "scheme"), b, sizeof b), NULL);
	kv("", "hash algorithm", val(json_object_get(d, "hash_algorithm"), b, sizeof b), NULL);
	kv("", "records", val(json_object_get(d, "records"), b, sizeof b), NULL);
	kv("", "published", ms_text(json_object_get(d, "published_ms"), b, sizeof b), NULL);
	kv("", "latest serial", val(json_object_get(d, "latest_serial"), b, sizeof b), NULL);
	kv("", "versions after", val(json_object_get(d, "versions_after"), b, sizeof b), NULL);
	if (json_object_get(d, "superseded_ms"))
		kv("", "superseded", ms_text(json_object_get(d, "superseded_ms"), b, sizeof b),
		   NULL);
	json_decref(d);
	return 0;
}

static void
print_records(const json_t *arr, const char *mark)
{
	size_t i;
	json_t *rr;
	json_array_foreach(arr, i, rr)
	{
		char b[CELL_BYTES];
		fputs(mark, stdout);
		put_safe(stdout, val(rr, b, sizeof b));
		fputc('\n', stdout);
	}
}

static int
cmd_diff(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES];
	json_t *d = NULL;

	if (zone_path(x, path, sizeof path, "/diff?from=%s%s%s", args[1], n > 2 ? "&to=" : "",
	              n > 2 ? args[2] : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	print_records(json_object_get(d, "removed"), "- ");
	print_records(json_object_get(d, "added"), "+ ");
	json_decref(d);
	return 0;
}

static int
cmd_history(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], name[1024];
	json_t *d = NULL, *c;
	struct table t = {.ncol = 4};
	static const char *const head[] = {"SERIAL", "PUBLISHED", "REGISTRY", "TXIDS"};
	size_t i;

	if (api_client_escape(args[1], name, sizeof name) != ZD_OK ||
	    zone_path(x, path, sizeof path, "/history?name=%s%s%s", name, x->limit ? "&limit=" : "",
	              x->limit ? x->limit : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "changes"), i, c)
	{
		char b[4][CELL_BYTES];
		const char *row[] = {val(json_object_get(c, "serial"), b[0], CELL_BYTES),
		                     ms_text(json_object_get(c, "published_ms"), b[1], CELL_BYTES),
		                     ms_text(json_object_get(c, "registry_ms"), b[2], CELL_BYTES),
		                     val(json_object_get(c, "txids"), b[3], CELL_BYTES)};
		table_add(&t, row);
	}
	if (t.nrow > 1)
		rc = table_print(&t, "");
	else
		printf("no change of %s in the versions kept in memory\n", args[1]);
	if (json_is_true(json_object_get(d, "truncated")))
		printf("(older changes left out: --limit)\n");
	table_clear(&t);
	json_decref(d);
	return rc;
}

static void
transfer_row(struct table *t, const json_t *tr, const json_t *since)
{
	char b[13][CELL_BYTES];
	const char *row[] = {
	        ms_text(json_object_get(tr, "time_ms"), b[0], CELL_BYTES),
	        val(json_object_get(tr, "secondary"), b[1], CELL_BYTES),
	        val(json_object_get(tr, "key"), b[2], CELL_BYTES),
	        val(json_object_get(tr, "kind"), b[3], CELL_BYTES),
	        val(json_object_get(tr, "from_serial"), b[4], CELL_BYTES),
	        val(json_object_get(tr, "to_serial"), b[5], CELL_BYTES),
	        val(json_object_get(tr, "bytes"), b[6], CELL_BYTES),
	        val(json_object_get(tr, "records"), b[7], CELL_BYTES),
	        unit_text(json_object_get(tr, "duration_ms"), "ms", b[8], CELL_BYTES),
	        val(json_object_get(tr, "result"), b[9], CELL_BYTES),
	        val(json_object_get(tr, "reason"), b[10], CELL_BYTES),
	        since ? after_text(since, json_object_get(tr, "time_ms"), b[11], CELL_BYTES)
	              : NULL};
	table_add(t, row);
}

static int
cmd_trace(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], b[CELL_BYTES], a[CELL_BYTES];
	json_t *d = NULL, *tr;
	struct table t = {.ncol = 12};
	static const char *const head[] = {"TIME",     "SECONDARY", "KEY",    "KIND",
	                                   "FROM",     "TO",        "BYTES",  "RECORDS",
	                                   "DURATION", "RESULT",    "REASON", "SINCE REGISTRY"};
	size_t i;

	if (zone_path(x, path, sizeof path, "/trace?txid=%s", args[1]) != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	const json_t *reg = json_object_get(d, "registry_ms");
	kv("", "zone", val(json_object_get(d, "zone"), b, sizeof b), NULL);
	kv("", "txid", val(json_object_get(d, "txid"), b, sizeof b), NULL);
	kv("", "serial", val(json_object_get(d, "serial"), b, sizeof b), NULL);
	kv("", "registry", ms_text(reg, b, sizeof b), NULL);
	static const char *const steps[][2] = {{"committed", "committed_ms"},
	                                       {"signed", "signed_ms"},
	                                       {"published", "published_ms"}};
	for (size_t k = 0; k < 3; k++) {
		const json_t *v = json_object_get(d, steps[k][1]);
		kv("", steps[k][0], ms_text(v, b, sizeof b), after_text(reg, v, a, sizeof a));
	}
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "transfers"), i, tr) transfer_row(&t, tr, reg);
	if (t.nrow > 1) {
		printf("transfers\n");
		rc = table_print(&t, "  ");
	} else {
		printf("transfers            (none yet)\n");
	}
	table_clear(&t);
	json_decref(d);
	return rc;
}

static int
cmd_transfers(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES];
	json_t *d = NULL, *tr;
	struct table t = {.ncol = 11};
	static const char *const head[] = {"TIME",     "SECONDARY", "KEY",   "KIND",
	                                   "FROM",     "TO",        "BYTES", "RECORDS",
	                                   "DURATION", "RESULT",    "REASON"};
	size_t i;

	if (zone_path(x, path, sizeof path, "/transfers%s%s", x->limit ? "?limit=" : "",
	              x->limit ? x->limit : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "transfers"), i, tr) transfer_row(&t, tr, NULL);
	if (t.nrow > 1)
		rc = table_print(&t, "");
	else
		printf("no transfers logged\n");
	table_clear(&t);
	json_decref(d);
	return rc;
}

static int
cmd_rejected(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES];
	json_t *d = NULL, *r;
	struct table t = {.ncol = 6};
	static const char *const head[] = {"ID", "CREATED", "NAME", "TXID", "REASON", "ROW"};
	size_t i;

	if (zone_path(x, path, sizeof path, "/rejected%s%s", x->limit ? "?limit=" : "",
	              x->limit ? x->limit : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "rejected"), i, r)
	{
		char b[6][CELL_BYTES];
		const json_t *reason = json_object_get(r, "reason"),
		             *row = json_object_get(r, "row");
		const char *cells[] = {
		        val(json_object_get(r, "id"), b[0], CELL_BYTES),
		        ms_text(json_object_get(r, "created_ms"), b[1], CELL_BYTES),
		        val(json_object_get(r, "name"), b[2], CELL_BYTES),
		        val(json_object_get(r, "txid"), b[3], CELL_BYTES),
		        val(reason, b[4], CELL_BYTES),
		        val(row, b[5], CELL_BYTES),
		};
		table_add(&t, cells);
	}
	if (t.nrow > 1)
		rc = table_print(&t, "");
	else
		printf("no rejected rows\n");
	table_clear(&t);
	json_decref(d);
	return rc;
}

static int
print_change(json_t *d, const char *what)
{
	char b[CELL_BYTES];
	put_safe(stdout, val(json_object_get(d, "zone"), b, sizeof b));
	printf(": %s\n", what);
	json_decref(d);
	return 0;
}

static int
cmd_retry(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], b[2][CELL_BYTES], what[3 * CELL_BYTES];
	json_t *body = json_object(), *ids = json_array(), *d = NULL;
	int rc;

	if (body == NULL || ids == NULL)
		goto oom;
	for (int i = 1; i < n; i++) { /* checked by args_check() */
		uint64_t id = strtoull(args[i], NULL, 10);
		if (json_array_append_new(ids, json_integer((json_int_t)id)) != 0)
			goto oom;
	}
	if (n > 1 && json_object_set(body, "ids", ids) != 0)
		goto oom;
	if (zone_path(x, path, sizeof path, "/rejected/retry") != 0) {
		rc = too_long();
		goto out;
	}
	rc = ask(x, "POST", path, body, &d);
	if (rc || d == NULL)
		goto out;
	snprintf(what, sizeof what, "%s rejected rows retried, %s names marked changed",
	         val(json_object_get(d, "retried"), b[0], sizeof b[0]),
	         val(json_object_get(d, "names"), b[1], sizeof b[1]));
	rc = print_change(d, what);
	goto out;
oom:
	fprintf(stderr, "zonedistctl: out of memory\n");
	rc = EXIT_ANSWER;
out:
	json_decref(ids);
	json_decref(body);
	return rc;
}

/* A JSON body of text members; NULL values left out. */
static json_t *
text_body(const char *k1, const char *v1, const char *k2, const char *v2)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	if ((v1 && json_object_set_new(o, k1, json_string(v1)) != 0) ||
	    (v2 && json_object_set_new(o, k2, json_string(v2)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
cmd_hold(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES];
	json_t *body = text_body("by", x->by, "reason", x->reason), *d = NULL;

	if (body == NULL) {
		fprintf(stderr, "zonedistctl: hold: --by and --reason must be UTF-8 text\n");
		return EXIT_USAGE;
	}
	int rc = zone_path(x, path, sizeof path, "/hold") != 0 ? too_long()
	                                                       : ask(x, "POST", path, body, &d);
	json_decref(body);
	if (rc || d == NULL)
		return rc;
	return print_change(d, "held: no new version is published until it is released");
}

static int
cmd_release(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], b[CELL_BYTES], what[CELL_BYTES + 32];
	json_t *body = text_body("by", x->by, NULL, NULL), *d = NULL;

	if (body == NULL) {
		fprintf(stderr, "zonedistctl: release: --by must be UTF-8 text\n");
		return EXIT_USAGE;
	}
	int rc = zone_path(x, path, sizeof path, "/release") != 0 ? too_long()
	                                                          : ask(x, "POST", path, body, &d);
	json_decref(body);
	if (rc || d == NULL)
		return rc;
	snprintf(what, sizeof what, "released by %s",
	         val(json_object_get(d, "released_by"), b, sizeof b));
	return print_change(d, what);
}

static const char *
date_text(const json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v) || zd_time_utc((uint64_t)json_integer_value(v), 0, buf, len) == 0)
		return val(v, buf, len);
	return buf;
}

/* keys plan ZONE: the rollover steps ahead, each with its formula and why
 * it cannot be earlier (docs/KEYS.md). */
static int
cmd_keys_plan(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES];
	json_t *d = NULL, *st, *k;
	struct table t = {.ncol = 5};
	static const char *const head[] = {"TIME", "KEY", "STEP", "FORMULA", "WHY"};
	size_t i;
	(void)args;
	(void)n;

	if (zone_path(x, path, sizeof path, "/keys%s%s", x->days ? "?days=" : "",
	              x->days ? x->days : "") != 0)
		return too_long();
	int rc = ask(x, "GET", path, NULL, &d);
	if (rc || d == NULL)
		return rc;
	json_array_foreach(json_object_get(d, "keys"), i, k)
	{
		char b[3][CELL_BYTES];
		printf("%s %s active since %s\n", val(json_object_get(k, "role"), b[0], CELL_BYTES),
		       val(json_object_get(k, "tag"), b[1], CELL_BYTES),
		       date_text(json_object_get(k, "active"), b[2], CELL_BYTES));
	}
	const json_t *roll = json_object_get(d, "zsk_roll");
	const json_t *other = json_object_get(roll, "other");
	if (json_is_object(other)) {
		char b[3][CELL_BYTES];
		printf("ZSK %s %s since %s\n", val(json_object_get(other, "tag"), b[0], CELL_BYTES),
		       val(json_object_get(other, "state"), b[1], CELL_BYTES),
		       date_text(json_object_get(other, "since"), b[2], CELL_BYTES));
	}
	if (json_is_object(roll) && json_integer_value(json_object_get(roll, "next_at")) > 0) {
		char b[2][CELL_BYTES];
		printf("next ZSK rollover step: %s, due at %s\n",
		       val(json_object_get(roll, "next_step"), b[0], CELL_BYTES),
		       date_text(json_object_get(roll, "next_at"), b[1], CELL_BYTES));
	}
	const json_t *ar = json_object_get(d, "algorithm_roll");
	if (json_is_object(ar)) {
		char b[5][CELL_BYTES];
		json_int_t at = json_integer_value(json_object_get(ar, "next_at"));
		printf("algorithm rollover %s to %s: stage %s; next step %s, %s%s\n",
		       val(json_object_get(ar, "from"), b[0], CELL_BYTES),
		       val(json_object_get(ar, "to"), b[1], CELL_BYTES),
		       val(json_object_get(ar, "stage"), b[2], CELL_BYTES),
		       val(json_object_get(ar, "next_step"), b[3], CELL_BYTES),
		       at > 0 ? "due at " : "as soon as it can (docs/KEYS.md)",
		       at > 0 ? date_text(json_object_get(ar, "next_at"), b[4], CELL_BYTES) : "");
	}
	const json_t *ok = json_object_get(d, "offline_ksk");
	if (json_is_object(ok)) {
		char b[3][CELL_BYTES];
		printf("offline KSK: %s DNSKEY RRsets pre-signed at %s, fresh signatures until "
		       "%s%s\n",
		       val(json_object_get(ok, "keysets"), b[0], CELL_BYTES),
		       date_text(json_object_get(ok, "made_at"), b[1], CELL_BYTES),
		       date_text(json_object_get(ok, "until"), b[2], CELL_BYTES),
		       json_is_true(json_object_get(ok, "running_out"))
		               ? ": run the ceremony (zonedistctl ksk-ceremony)"
		               : "");
	}
	table_add(&t, head);
	json_array_foreach(json_object_get(d, "steps"), i, st)
	{
		char b[5][CELL_BYTES];
		char role[16];
		json_int_t gen = json_integer_value(json_object_get(st, "generation"));
		const char *r = val(json_object_get(st, "role"), role, sizeof role);
		if (gen < 0) /* the retired key of the roll in progress */
			snprintf(b[1], CELL_BYTES, "%s retired", r);
		else
			snprintf(b[1], CELL_BYTES, "%s #%" JSON_INTEGER_FORMAT, r, gen);
		const char *row[] = {date_text(json_object_get(st, "at"), b[0], CELL_BYTES), b[1],
		                     val(json_object_get(st, "event"), b[2], CELL_BYTES),
		                     val(json_object_get(st, "formula"), b[3], CELL_BYTES),
		                     val(json_object_get(st, "why"), b[4], CELL_BYTES)};
		table_add(&t, row);
	}
	if (t.nrow > 1)
		rc = table_print(&t, "");
	else
		printf("no rollover step in the coming %s days\n", x->days ? x->days : "365");
	if (json_is_true(json_object_get(d, "cut")))
		printf("(later steps left out: a shorter --days)\n");
	table_clear(&t);
	json_decref(d);
	return rc;
}

/* POST {"tag": TAG, "by", "reason"} to the zone's keys/what; *d the answer. */
static int
key_report(struct ctl *x, char **args, const char *cmd, const char *what, json_t **d)
{
	char path[PATH_MAX_BYTES];
	json_t *body = text_body("by", x->by, "reason", x->reason);

	if (body == NULL ||
	    json_object_set_new(body, "tag", json_integer(strtol(args[1], NULL, 10))) != 0) {
		json_decref(body);
		fprintf(stderr, "zonedistctl: %s: --by and --reason must be UTF-8 text\n", cmd);
		return EXIT_USAGE;
	}
	int rc = zone_path(x, path, sizeof path, "/keys/%s", what) != 0
	                 ? too_long()
	                 : ask(x, "POST", path, body, d);
	json_decref(body);
	return rc;
}

/* key-compromised ZONE TAG: the active ZSK is replaced as fast as caches
 * allow; prints when each step will happen. */
static int
cmd_key_compromised(struct ctl *x, char **args, int n)
{
	char b[4][CELL_BYTES];
	json_t *d = NULL;
	(void)n;

	int rc = key_report(x, args, "key-compromised", "compromised", &d);
	if (rc || d == NULL)
		return rc;
	const char *role = json_string_value(json_object_get(d, "role"));
	if (role != NULL && strcmp(role, "KSK") == 0) {
		char k[5][CELL_BYTES];
		printf("KSK %s reported compromised; its replacement:\n",
		       val(json_object_get(d, "tag"), k[0], CELL_BYTES));
		printf("  %s  new KSK published, both sign the DNSKEY RRset\n",
		       date_text(json_object_get(d, "publish_at"), k[1], CELL_BYTES));
		printf("  %s  CDS/CDNSKEY of the new KSK (Ipub later): submit its DS to the "
		       "parent\n",
		       date_text(json_object_get(d, "cds_at"), k[2], CELL_BYTES));
		printf("  %s  the parent's new DS expected (Dreg later; confirmed by polling or "
		       "ds-seen)\n",
		       date_text(json_object_get(d, "ds_expected_at"), k[3], CELL_BYTES));
		printf("  %s  KSK %s removed (IpubP after the DS is seen)\n",
		       date_text(json_object_get(d, "settle_at"), k[4], CELL_BYTES), k[0]);
		json_decref(d);
		return 0;
	}
	printf("ZSK %s reported compromised; its replacement:\n",
	       val(json_object_get(d, "tag"), b[0], CELL_BYTES));
	printf("  %s  new ZSK published\n",
	       date_text(json_object_get(d, "publish_at"), b[1], CELL_BYTES));
	printf("  %s  new ZSK signs the zone (Ipub later: its DNSKEY is in every cache)\n",
	       date_text(json_object_get(d, "activate_at"), b[2], CELL_BYTES));
	printf("  %s  ZSK %s removed (Iret later: its signatures are gone from caches)\n",
	       date_text(json_object_get(d, "remove_at"), b[3], CELL_BYTES), b[0]);
	json_decref(d);
	return 0;
}

/* ds-seen ZONE TAG: the parent serves the DS of the KSK the roll awaits;
 * prints when the old KSK goes. */
static int
cmd_ds_seen(struct ctl *x, char **args, int n)
{
	char b[2][CELL_BYTES];
	json_t *d = NULL;
	(void)n;

	int rc = key_report(x, args, "ds-seen", "ds-seen", &d);
	if (rc || d == NULL)
		return rc;
	printf("the parent's DS of KSK %s is confirmed; the old KSK is removed from\n  %s "
	       "(IpubP later: the old DS is gone from caches)\n",
	       val(json_object_get(d, "tag"), b[0], CELL_BYTES),
	       date_text(json_object_get(d, "settle_at"), b[1], CELL_BYTES));
	json_decref(d);
	return 0;
}

/* ds-gone ZONE: the parent serves no DS of the zone any more (unsigning,
 * RFC 8078); prints when the DNSSEC records go. */
static int
cmd_ds_gone(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], when[CELL_BYTES];
	json_t *d = NULL, *body = text_body("by", x->by, "reason", x->reason);
	(void)args;
	(void)n;

	if (body == NULL) {
		fprintf(stderr, "zonedistctl: ds-gone: --by and --reason must be UTF-8 text\n");
		return EXIT_USAGE;
	}
	int rc = zone_path(x, path, sizeof path, "/keys/%s", "ds-gone") != 0
	                 ? too_long()
	                 : ask(x, "POST", path, body, &d);
	json_decref(body);
	if (rc || d == NULL)
		return rc;
	printf("the parent's DS is confirmed gone; the DNSSEC records are removed from\n  %s "
	       "(IpubP later: the DS is gone from caches)\n",
	       date_text(json_object_get(d, "unsigned_at"), when, CELL_BYTES));
	json_decref(d);
	return 0;
}

/* ksk-ceremony ZONE: an offline KSK's ceremony, with its token connected;
 * waits (up to two minutes) for the batch thread to make it and prints what
 * it pre-signed and until when. */
static int
cmd_ksk_ceremony(struct ctl *x, char **args, int n)
{
	char path[PATH_MAX_BYTES], kpath[PATH_MAX_BYTES], when[CELL_BYTES];
	json_t *d = NULL, *body = json_object();
	(void)args;
	(void)n;

	if (body == NULL || zone_path(x, path, sizeof path, "/keys/%s", "ceremony") != 0 ||
	    zone_path(x, kpath, sizeof kpath, "/keys") != 0) {
		json_decref(body);
		return too_long();
	}
	int json = x->json; /* --json: the offline_ksk object once it is made */
	x->json = 0;
	int rc = ask(x, "POST", path, body, &d);
	json_decref(body);
	x->json = json;
	if (rc || d == NULL)
		return rc;
	json_int_t before = json_integer_value(json_object_get(d, "ceremonies"));
	json_decref(d);
	for (int tries = 0; tries < 1200; tries++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		d = NULL;
		x->json = 0;
		rc = ask(x, "GET", kpath, NULL, &d);
		x->json = json;
		if (rc != 0 || d == NULL)
			return rc;
		const json_t *o = json_object_get(d, "offline_ksk");
		if (json_integer_value(json_object_get(o, "ceremonies")) > before) {
			const char *why = json_string_value(json_object_get(o, "last_error"));
			if (why != NULL) {
				fprintf(stderr, "zonedistctl: ksk-ceremony: %s\n", why);
				json_decref(d);
				return 1;
			}
			if (json) {
				char *t = json_dumps(o, JSON_COMPACT);
				printf("%s\n", t ? t : "{}");
				free(t);
				json_decref(d);
				return 0;
			}
			printf("KSK ceremony made: %" JSON_INTEGER_FORMAT
			       " DNSKEY RRsets pre-signed in %" JSON_INTEGER_FORMAT
			       " slots; fresh signatures until\n  %s\nthe KSK token may be "
			       "disconnected\n",
			       json_integer_value(json_object_get(o, "keysets")),
			       json_integer_value(json_object_get(o, "slots")),
			       date_text(json_object_get(o, "until"), when, CELL_BYTES));
			json_decref(d);
			return 0;
		}
		json_decref(d);
	}
	fprintf(stderr, "zonedistctl: ksk-ceremony: not made within two minutes\n");
	return 1;
}

static const struct command commands[] = {
        {"status", 0, 0, 0, 0, cmd_status, 0, "", "every zone's state and its secondaries"},
        {"zones", 0, 0, 0, 0, cmd_zones, 0, "", "the zones and their serials"},
        {"zone", 1, 1, OPT_SERIAL, 0, cmd_zone, 0, "ZONE [--serial S]",
         "the zone as a master file (streamed)"},
        {"digest", 1, 1, OPT_SERIAL, 0, cmd_digest, 0, "ZONE [--serial S]",
         "the ZONEMD digest of a serial"},
        {"diff", 2, 3, 0, 0, cmd_diff, 0, "ZONE S1 [S2]",
         "records removed (-) and added (+) from S1 to S2 (default: published)"},
        {"history", 2, 2, OPT_LIMIT, 0, cmd_history, 0, "ZONE NAME [--limit L]",
         "the versions that changed a name"},
        {"trace", 2, 2, 0, 0, cmd_trace, 0, "ZONE TXID",
         "the serial and transfers that carried a registry transaction"},
        {"transfers", 1, 1, OPT_LIMIT, 0, cmd_transfers, 0, "ZONE [--limit L]",
         "the newest transfers of the zone"},
        {"rejected", 1, 1, OPT_LIMIT, 0, cmd_rejected, 0, "ZONE [--limit L]",
         "registry rows that were no valid record"},
        {"retry", 1, -1, 0, 0, cmd_retry, 1, "ZONE [ID...]",
         "mark rejected rows' names changed again (all without IDs); token"},
        {"hold", 1, 1, OPT_BY | OPT_REASON, OPT_BY, cmd_hold, 1, "ZONE --by WHO [--reason WHY]",
         "publish no new version until released; token"},
        {"release", 1, 1, OPT_BY, OPT_BY, cmd_release, 1, "ZONE --by WHO",
         "end a hold (operator or sanity limits); token"},
        {"keys", 1, 1, OPT_DAYS, 0, cmd_keys_plan, 0, "plan ZONE [--days N]",
         "the key rollover schedule, each step's earliest time and why"},
        {"key-compromised", 2, 2, OPT_BY | OPT_REASON, OPT_BY, cmd_key_compromised, 1,
         "ZONE TAG --by WHO [--reason WHY]",
         "replace the active ZSK or KSK TAG as fast as caches allow; token"},
        {"ds-seen", 2, 2, OPT_BY | OPT_REASON, OPT_BY, cmd_ds_seen, 1,
         "ZONE TAG --by WHO [--reason WHY]",
         "the parent serves the DS of the new KSK TAG (a KSK rollover); token"},
        {"ksk-ceremony", 1, 1, 0, 0, cmd_ksk_ceremony, 1, "ZONE",
         "an offline KSK's ceremony: pre-sign the coming period (KSK token connected); "
         "token"},
        {"ds-gone", 1, 1, OPT_BY | OPT_REASON, OPT_BY, cmd_ds_gone, 1,
         "ZONE --by WHO [--reason WHY]",
         "the parent serves no DS of the zone any more (dnssec unsign); token"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: zonedistctl [--api URL] [--token-file FILE] [--json] [--timeout MS] "
	           "COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char left[64];
		snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].synopsis);
		fprintf(f, "  %-38s %s\n", left, commands[i].what);
	}
	fprintf(f, "\noptions:\n"
	           "  --api URL          http://HOST:PORT or unix:/PATH (default: $ZONEDIST_API, "
	           "else " DEFAULT_API ")\n"
	           "  --token-file FILE  the API token, for hold, release and retry (default: "
	           "$ZONEDIST_TOKEN_FILE)\n"
	           "  --json             print zonedistd's JSON answer as it is\n"
	           "  --timeout MS       wait at most MS for each read (default 30000)\n"
	           "  --days N           keys plan: the coming N days (default 365, at most 3650)\n"
	           "\nexit: 0 done, 1 zonedistd answered an error, 2 zonedistd cannot be "
	           "reached, 3 usage\n");
}

__attribute__((format(printf, 1, 2))) static int
usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("zonedistctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/* A command used wrongly: its own synopsis is the usage text. */
static int
command_usage_error(const struct command *c, const char *what)
{
	fprintf(stderr, "zonedistctl: %s: %s\nusage: zonedistctl [OPTIONS] %s%s%s\n", c->name, what,
	        c->name, c->synopsis[0] ? " " : "", c->synopsis);
	fprintf(stderr, "(zonedistctl --help lists every command and option)\n");
	return EXIT_USAGE;
}

/* The token file's content, white space around it ignored (as zonedistd
 * reads it).  No file named: no token (zonedistd answers 401). */
static int
token_load(struct ctl *x)
{
	const char *path = x->token_file ? x->token_file : getenv("ZONEDIST_TOKEN_FILE");
	char why[512];

	if (path == NULL || path[0] == '\0')
		return 0;
	zd_err e = zd_token_read(path, 1, &x->token, why, sizeof why);
	if (e == ZD_ENOMEM) {
		fprintf(stderr, "zonedistctl: out of memory\n");
		return EXIT_ANSWER;
	}
	if (e != ZD_OK) {
		fprintf(stderr, "zonedistctl: token file %s\n", why);
		return EXIT_USAGE;
	}
	return 0;
}

/* The positional arguments that are numbers, checked before asking. */
static int
args_check(const struct command *c, char **args, int n)
{
	uint64_t v;
	if (strcmp(c->name, "diff") == 0)
		for (int i = 1; i < n; i++)
			if (zd_parse_u64(args[i], 0, UINT32_MAX, &v) != ZD_OK)
				return command_usage_error(c, "a serial is 0..4294967295");
	if (strcmp(c->name, "trace") == 0 && zd_parse_u64(args[1], 0, INT64_MAX, &v) != ZD_OK)
		return command_usage_error(c, "TXID is a registry transaction id (a number)");
	if (strcmp(c->name, "retry") == 0)
		for (int i = 1; i < n; i++)
			if (zd_parse_u64(args[i], 1, INT64_MAX, &v) != ZD_OK)
				return command_usage_error(
				        c, "an ID is a rejected row's id (a number)");
	if ((strcmp(c->name, "key-compromised") == 0 || strcmp(c->name, "ds-seen") == 0) &&
	    zd_parse_u64(args[1], 0, 65535, &v) != ZD_OK)
		return command_usage_error(c, "TAG is a key tag (0..65535)");
	if (strcmp(c->name, "history") == 0 && args[1][0] == '\0')
		return command_usage_error(c, "the name is empty");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"api", required_argument, NULL, 'a'},
	        {"token-file", required_argument, NULL, 't'},
	        {"json", no_argument, NULL, 'j'},
	        {"timeout", required_argument, NULL, 'T'},
	        {"serial", required_argument, NULL, 's'},
	        {"limit", required_argument, NULL, 'l'},
	        {"by", required_argument, NULL, 'b'},
	        {"reason", required_argument, NULL, 'r'},
	        {"days", required_argument, NULL, 'd'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct ctl x = {0};
	const struct command *cmd = NULL;
	char why[300];
	uint32_t u;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			x.api_url = optarg;
			break;
		case 't':
			x.token_file = optarg;
			break;
		case 'j':
			x.json = 1;
			break;
		case 'T':
			if (zd_parse_u32(optarg, 1, 86400000, &x.timeout_ms) != ZD_OK)
				return usage_error("--timeout: '%s' is not 1..86400000 ms", optarg);
			break;
		case 's':
			if (zd_parse_u32(optarg, 0, UINT32_MAX, &u) != ZD_OK)
				return usage_error("--serial: '%s' is not a serial (0..4294967295)",
				                   optarg);
			x.serial = optarg;
			x.given |= OPT_SERIAL;
			break;
		case 'l':
			if (zd_parse_u32(optarg, 1, UINT32_MAX, &u) != ZD_OK)
				return usage_error("--limit: '%s' is not a positive number",
				                   optarg);
			x.limit = optarg;
			x.given |= OPT_LIMIT;
			break;
		case 'b':
			if (optarg[0] == '\0')
				return usage_error("--by: say who");
			x.by = optarg;
			x.given |= OPT_BY;
			break;
		case 'r':
			x.reason = optarg;
			x.given |= OPT_REASON;
			break;
		case 'd':
			if (zd_parse_u32(optarg, 1, 3650, &u) != ZD_OK)
				return usage_error("--days: '%s' is not 1..3650", optarg);
			x.days = optarg;
			x.given |= OPT_DAYS;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no command given");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL)
		return usage_error("'%s' is no command", argv[optind]);
	char **args = argv + optind + 1;
	int n = argc - optind - 1;
	if (cmd->run == cmd_keys_plan) { /* "keys plan ZONE" */
		if (n < 1 || strcmp(args[0], "plan") != 0)
			return command_usage_error(cmd, "the keys command is: keys plan ZONE");
		args++;
		n--;
	}
	if (n < cmd->min_args)
		return command_usage_error(cmd, "arguments missing");
	if (cmd->max_args >= 0 && n > cmd->max_args)
		return command_usage_error(cmd, "too many arguments");
	unsigned extra = x.given & ~cmd->allowed;
	if (extra)
		return command_usage_error(cmd, extra & OPT_SERIAL  ? "no --serial here"
		                                : extra & OPT_LIMIT ? "no --limit here"
		                                : extra & OPT_BY    ? "no --by here"
		                                : extra & OPT_DAYS  ? "no --days here"
		                                                    : "no --reason here");
	if ((x.given & cmd->required) != cmd->required)
		return command_usage_error(cmd, "--by is required");
	if ((rc = args_check(cmd, args, n)) != 0)
		return rc;
	if (n > 0) {
		if (args[0][0] == '\0')
			return usage_error("the zone name is empty");
		if (api_client_escape(args[0], x.zone_esc, sizeof x.zone_esc) != ZD_OK)
			return usage_error("the zone name is too long");
	}
	const char *url = x.api_url ? x.api_url : getenv("ZONEDIST_API");
	if (url == NULL || url[0] == '\0')
		url = DEFAULT_API;
	x.api.timeout_ms = x.timeout_ms ? x.timeout_ms : 30000;
	x.api.max_body = BODY_MAX_BYTES;
	if (api_client_parse(url, &x.api, why, sizeof why) != ZD_OK)
		return usage_error("--api: %s", why);
	if (cmd->post && (rc = token_load(&x)) != 0)
		return rc;
	/* a server that closes early must not kill us by SIGPIPE; stdout's
	 * EPIPE is turned back into SIGPIPE by cmd_zone and below */
	signal(SIGPIPE, SIG_IGN);
	rc = cmd->run(&x, args, n);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno == EPIPE) {
			signal(SIGPIPE, SIG_DFL);
			raise(SIGPIPE);
		}
		fprintf(stderr, "zonedistctl: writing the output: %s\n", strerror(errno));
		rc = rc ? rc : EXIT_ANSWER;
	}
	free(x.token);
	return rc;
}
