#include "integrity-check/api_client.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_parse.h"

#define LINE_MAX_BYTES 70000

struct call {
	struct event_base *base;
	const struct api_client *c;
	int status;
	int done;
	int failed; /* no reply */
	zd_err fn_err;
	api_line_fn fn;
	void *arg;
	struct evbuffer *body;
	size_t streamed;
	char *why;
	size_t whylen;
};

zd_err
api_client_parse(const char *url, struct api_client *out, char *why, size_t whylen)
{
	const char *hp = url;
	char host[256];
	uint32_t port = 0;

	if (strncmp(hp, "http://", 7) == 0)
		hp += 7;
	const char *sep = strrchr(hp, ':');
	const char *at = strrchr(hp, '@');
	if (at && (!sep || at > sep))
		sep = at;
	size_t hl = sep ? (size_t)(sep - hp) : 0;
	char portbuf[8];
	const char *ps = sep ? sep + 1 : "";
	size_t pl = strcspn(ps, "/");
	if (sep == NULL || hl == 0 || hl >= sizeof host || pl == 0 || pl >= sizeof portbuf) {
		snprintf(why, whylen, "'%s' is not http://HOST:PORT", url);
		return ZD_EMALFORMED;
	}
	memcpy(host, hp, hl);
	host[hl] = '\0';
	memcpy(portbuf, ps, pl);
	portbuf[pl] = '\0';
	if (zd_parse_u32(portbuf, 1, 65535, &port) != ZD_OK) {
		snprintf(why, whylen, "'%s': the port must be 1..65535", url);
		return ZD_EMALFORMED;
	}
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') { /* [v6] */
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memcpy(out->host, host, strlen(host) + 1);
	out->port = (uint16_t)port;
	if (out->timeout_ms == 0)
		out->timeout_ms = 30000;
	if (out->max_body == 0)
		out->max_body = 1u << 20;
	if (out->max_stream == 0)
		out->max_stream = (size_t)4 << 30;
	return ZD_OK;
}

zd_err
api_client_escape(const char *text, char *out, size_t outlen)
{
	char *e = evhttp_uriencode(text, -1, 0);
	zd_err r = ZD_ELIMIT;
	if (e == NULL)
		return ZD_ENOMEM;
	if (strlen(e) < outlen) {
		memcpy(out, e, strlen(e) + 1);
		r = ZD_OK;
	}
	free(e);
	return r;
}

/* Hand every complete line of buf to the caller's fn. */
static void
drain_lines(struct call *k, struct evbuffer *buf, int final)
{
	for (;;) {
		if (k->fn_err != ZD_OK) {
			evbuffer_drain(buf, evbuffer_get_length(buf));
			return;
		}
		size_t n = 0;
		char *line = evbuffer_readln(buf, &n, EVBUFFER_EOL_LF);
		if (line == NULL) {
			size_t left = evbuffer_get_length(buf);
			if (left > LINE_MAX_BYTES) {
				snprintf(k->why, k->whylen, "a line longer than %d bytes",
				         LINE_MAX_BYTES);
				k->fn_err = ZD_EMALFORMED;
			} else if (final && left > 0) { /* the last line had no newline */
				char *rest = malloc(left + 1);
				if (rest == NULL) {
					k->fn_err = ZD_ENOMEM;
					return;
				}
				evbuffer_remove(buf, rest, left);
				rest[left] = '\0';
				k->fn_err = k->fn(k->arg, rest, left);
				free(rest);
			}
			return;
		}
		k->fn_err = k->fn(k->arg, line, n);
		free(line);
	}
}

static void
on_chunk(struct evhttp_request *req, void *arg)
{
	struct call *k = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	k->status = evhttp_request_get_response_code(req);
	if (k->fn == NULL || k->status != 200) {
		/* evhttp drains its buffer after this callback: keep the bytes */
		if (evbuffer_get_length(k->body) + evbuffer_get_length(in) > k->c->max_body &&
		    k->fn_err == ZD_OK) {
			snprintf(k->why, k->whylen, "the reply is larger than %zu bytes",
			         k->c->max_body);
			k->fn_err = ZD_ELIMIT;
		}
		if (k->fn_err == ZD_OK)
			evbuffer_add_buffer(k->body, in);
		return;
	}
	k->streamed += evbuffer_get_length(in);
	if (k->streamed > k->c->max_stream && k->fn_err == ZD_OK) {
		snprintf(k->why, k->whylen, "the reply is larger than %zu bytes", k->c->max_stream);
		k->fn_err = ZD_ELIMIT;
	}
	drain_lines(k, in, 0);
}

static void
on_done(struct evhttp_request *req, void *arg)
{
	struct call *k = arg;
	k->done = 1;
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		k->failed = 1;
	} else {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		k->status = evhttp_request_get_response_code(req);
		if (k->fn != NULL && k->status == 200)
			drain_lines(k, in, 1);
		else
			evbuffer_add_buffer(k->body, in);
	}
	event_base_loopexit(k->base, NULL);
}

static zd_err
call_run(const struct api_client *c, const char *path, struct call *k)
{
	struct evhttp_connection *evcon = NULL;
	struct evhttp_request *req = NULL;
	struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
	zd_err e = ZD_ENOMEM;
	char hosthdr[300];

	k->c = c;
	k->base = event_base_new();
	k->body = evbuffer_new();
	if (k->base == NULL || k->body == NULL)
		goto out;
	evcon = evhttp_connection_base_new(k->base, NULL, c->host, c->port);
	if (evcon == NULL)
		goto out;
	evhttp_connection_set_timeout_tv(evcon, &tv);
	evhttp_connection_set_retries(evcon, 0);
	evhttp_connection_set_max_headers_size(evcon, 64 * 1024);
	evhttp_connection_set_max_body_size(
	        evcon, (ev_ssize_t)(k->fn ? c->max_stream + 65536 : c->max_body));
	req = evhttp_request_new(on_done, k);
	if (req == NULL)
		goto out;
	evhttp_request_set_chunked_cb(req, on_chunk);
	snprintf(hosthdr, sizeof hosthdr, "%s:%u", c->host, c->port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hosthdr);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (evhttp_make_request(evcon, req, EVHTTP_REQ_GET, path) != 0) {
		req = NULL; /* freed by evhttp */
		snprintf(k->why, k->whylen, "cannot send the request to %s:%u", c->host, c->port);
		e = ZD_EIO;
		goto out;
	}
	event_base_dispatch(k->base);
	if (!k->done || k->failed) {
		if (k->fn_err == ZD_OK)
			snprintf(k->why, k->whylen,
			         "zonedistd's API at %s:%u did not answer (down, or slower than %u "
			         "ms)",
			         c->host, c->port, c->timeout_ms);
		e = k->fn_err != ZD_OK ? k->fn_err : ZD_EIO;
		goto out;
	}
	e = k->fn_err;
out:
	if (evcon)
		evhttp_connection_free(evcon);
	if (k->base)
		event_base_free(k->base);
	return e;
}

zd_err
api_client_get(const struct api_client *c, const char *path, int *status, char **body, size_t *len,
               char *why, size_t whylen)
{
	struct call k = {.why = why, .whylen = whylen};
	zd_err e = call_run(c, path, &k);

	if (e == ZD_OK) {
		size_t n = evbuffer_get_length(k.body);
		char *b = malloc(n + 1);
		if (b == NULL) {
			e = ZD_ENOMEM;
		} else {
			evbuffer_remove(k.body, b, n);
			b[n] = '\0';
			*body = b;
			*len = n;
			*status = k.status;
		}
	}
	if (k.body)
		evbuffer_free(k.body);
	return e;
}

zd_err
api_client_get_lines(const struct api_client *c, const char *path, int *status, api_line_fn fn,
                     void *arg, char *why, size_t whylen)
{
	struct call k = {.why = why, .whylen = whylen, .fn = fn, .arg = arg};
	zd_err e = call_run(c, path, &k);

	if (e == ZD_OK)
		*status = k.status;
	if (k.body)
		evbuffer_free(k.body);
	return e;
}
