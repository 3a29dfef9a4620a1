/* integrity-check/api_client.h -- a client of zonedistd's HTTP API
 * (server/api.h, docs/API.md) with libevent's evhttp, over TCP or a unix
 * socket.  Used by zonedist-check and zonedistctl (ctl/).
 *
 * Threads: any; each call runs its own event base.  Limits: a reply waits
 * at most timeout_ms between reads; a buffered body is at most max_body
 * bytes, a streamed body at most max_stream bytes (ZD_ELIMIT).  Lines of a
 * streamed body are at most 70000 bytes (a record's presentation form). */
#ifndef ZD_API_CLIENT_H
#define ZD_API_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zd_err.h"

struct api_client {
	char host[256];
	uint16_t port;
	char unix_path[108]; /* non-empty: connect to this unix socket, not host:port */
	uint32_t timeout_ms;
	size_t max_body;
	size_t max_stream;
};

/* "http://HOST:PORT" (also "HOST:PORT" and "HOST@PORT") or "unix:/PATH".
 * Zero limits in *out get their defaults (30 s, 1 MiB, 4 GiB).  On failure
 * why says what is wrong and *out is unchanged. */
zd_err api_client_parse(const char *url, struct api_client *out, char *why, size_t whylen);

/* Where c connects, for messages: "HOST:PORT" or "unix:/PATH", in buf. */
const char *api_client_endpoint_get(const struct api_client *c, char *buf, size_t len);

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

/* One request, every option.  Borrowed; the strings are the caller's. */
struct api_request {
	const char *method; /* "GET" or "POST" */
	const char *path;   /* escaped, with its query string */
	const char *token;  /* NULL, or sent as "Authorization: Bearer TOKEN" */
	const char *body;   /* POST: a JSON document of body_len bytes, or NULL */
	size_t body_len;
	api_line_fn fn; /* non-NULL: a 200 reply's body goes to fn line by line */
	void *arg;
};

struct api_reply {
	int status;
	char *body; /* owned (api_reply_clear()); NUL terminated; empty when fn took it */
	size_t len;
};

/* On ZD_OK *out holds the reply (any HTTP status); the caller clears it.
 * On failure *out is untouched and why says what happened: ZD_EIO when
 * zonedistd cannot be reached, closes early or does not answer in time,
 * ZD_ELIMIT when the reply is larger than the limits, fn's own error. */
zd_err api_client_request(const struct api_client *c, const struct api_request *rq,
                          struct api_reply *out, char *why, size_t whylen);
void api_reply_clear(struct api_reply *r);

/* Percent-encode text for a URL path segment or query value into out
 * (outlen bytes); "." (the root zone) becomes "%2E". */
zd_err api_client_escape(const char *text, char *out, size_t outlen);

#endif
