#include "integrity-check/api_client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/zd_parse.h"

#define LINE_MAX_BYTES 70000
#define RELAY_HIGH     (256 * 1024) /* bytes queued towards one side before reading stops */

/* libevent 2.1's evhttp dials its connections itself, by host name: a
 * socket handed in with evhttp_connection_base_bufferevent_new() is closed
 * and dialled again (unix sockets arrive with libevent 2.2).  For a unix
 * socket, evhttp therefore talks to a one-shot listener on 127.0.0.1 in the
 * same event base, which copies bytes to and from the unix socket that this
 * file connected itself.  The listener takes only the connection whose peer
 * is evhttp's own socket: no other local process can use it to reach the
 * API socket past the socket file's permissions. */
struct relay {
	struct evconnlistener *lis;
	struct evhttp_connection *evcon;
	evutil_socket_t unix_fd;     /* -1 once up owns it */
	struct bufferevent *up;      /* the unix socket to zonedistd */
	struct bufferevent *down;    /* the loopback connection evhttp made */
	struct bufferevent *closing; /* freed once its output is written */
};

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
	struct relay relay;
};

zd_err
api_client_parse(const char *url, struct api_client *out, char *why, size_t whylen)
{
	const char *hp = url;
	char host[256];
	uint32_t port = 0;

	if (strncmp(url, "unix:", 5) == 0) {
		size_t n = strlen(url + 5);
		if (n == 0 || n >= sizeof out->unix_path) {
			snprintf(why, whylen, "'%s': the socket path must be 1..%zu bytes", url,
			         sizeof out->unix_path - 1);
			return ZD_EMALFORMED;
		}
		memcpy(out->unix_path, url + 5, n + 1);
		out->host[0] = '\0';
		out->port = 0;
		goto defaults;
	}
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
		snprintf(why, whylen, "'%s' is not http://HOST:PORT or unix:/PATH", url);
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
	out->unix_path[0] = '\0';
defaults:
	if (out->timeout_ms == 0)
		out->timeout_ms = 30000;
	if (out->max_body == 0)
		out->max_body = 1u << 20;
	if (out->max_stream == 0)
		out->max_stream = (size_t)4 << 30;
	return ZD_OK;
}

const char *
api_client_endpoint_get(const struct api_client *c, char *buf, size_t len)
{
	if (c->unix_path[0])
		snprintf(buf, len, "unix:%s", c->unix_path);
	else if (strchr(c->host, ':'))
		snprintf(buf, len, "[%s]:%u", c->host, c->port);
	else
		snprintf(buf, len, "%s:%u", c->host, c->port);
	return buf;
}

zd_err
api_client_escape(const char *text, char *out, size_t outlen)
{
	if (strcmp(text, ".") == 0) { /* a "." path segment means "here" */
		if (outlen < 4)
			return ZD_ELIMIT;
		memcpy(out, "%2E", 4);
		return ZD_OK;
	}
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

/* --- the unix socket relay ---------------------------------------------- */

static struct bufferevent *
relay_other(struct relay *r, struct bufferevent *bev)
{
	return bev == r->up ? r->down : r->up;
}

static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other = relay_other(r, bev);
	struct evbuffer *in = bufferevent_get_input(bev);

	if (other == NULL || other == r->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	evbuffer_add_buffer(bufferevent_get_output(other), in);
	if (evbuffer_get_length(bufferevent_get_output(other)) >= RELAY_HIGH) {
		/* resumed by relay_written() once other has written half */
		bufferevent_setwatermark(other, EV_WRITE, RELAY_HIGH / 2, 0);
		bufferevent_disable(bev, EV_READ);
	}
}

static void
relay_written(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other = relay_other(r, bev);

	if (bev == r->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			if (bev == r->up)
				r->up = NULL;
			else
				r->down = NULL;
			r->closing = NULL;
			bufferevent_free(bev);
		}
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (other != NULL)
		bufferevent_enable(other, EV_READ);
}

/* One side closed: what it sent still goes to the other side, which is
 * closed once it has written it (evhttp then sees the end of the reply). */
static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other = relay_other(r, bev);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (other != NULL && other != r->closing)
		evbuffer_add_buffer(bufferevent_get_output(other), bufferevent_get_input(bev));
	if (bev == r->up)
		r->up = NULL;
	else
		r->down = NULL;
	if (r->closing == bev)
		r->closing = NULL;
	bufferevent_free(bev);
	if (other == NULL || other == r->closing)
		return;
	bufferevent_disable(other, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		if (other == r->up)
			r->up = NULL;
		else
			r->down = NULL;
		bufferevent_free(other);
	} else {
		r->closing = other;
		bufferevent_setwatermark(other, EV_WRITE, 0, 0);
		bufferevent_enable(other, EV_WRITE);
	}
}

static int
same_inet_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in *x = (const struct sockaddr_in *)a;
	const struct sockaddr_in *y = (const struct sockaddr_in *)b;
	return a->sa_family == AF_INET && b->sa_family == AF_INET && x->sin_port == y->sin_port &&
	       x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static void
relay_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *peer, int peerlen,
             void *arg)
{
	struct relay *r = arg;
	struct sockaddr_storage own;
	socklen_t ownlen = sizeof own;
	struct bufferevent *ebev = evhttp_connection_get_bufferevent(r->evcon);
	evutil_socket_t efd = ebev ? bufferevent_getfd(ebev) : -1;

	if (r->up != NULL || r->unix_fd < 0 || efd < 0 ||
	    peerlen < (int)sizeof(struct sockaddr_in) ||
	    getsockname(efd, (struct sockaddr *)&own, &ownlen) != 0 ||
	    !same_inet_addr((struct sockaddr *)&own, peer)) {
		evutil_closesocket(fd); /* not evhttp's connection */
		return;
	}
	evconnlistener_disable(lis);
	struct event_base *base = evconnlistener_get_base(lis);
	r->down = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->down == NULL) {
		evutil_closesocket(fd);
		return; /* evhttp sees no reply and reports it */
	}
	r->up = bufferevent_socket_new(base, r->unix_fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->up == NULL) {
		bufferevent_free(r->down);
		r->down = NULL;
		return;
	}
	r->unix_fd = -1; /* r->up owns it */
	bufferevent_setcb(r->up, relay_read, relay_written, relay_event, r);
	bufferevent_setcb(r->down, relay_read, relay_written, relay_event, r);
	bufferevent_enable(r->up, EV_READ | EV_WRITE);
	bufferevent_enable(r->down, EV_READ | EV_WRITE);
}

/* Connect to the unix socket (blocking, at most timeout_ms), then listen
 * for evhttp on 127.0.0.1; *port is where. */
static zd_err
relay_open(struct call *k, uint16_t *port)
{
	const struct api_client *c = k->c;
	struct relay *r = &k->relay;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;

	memcpy(sun.sun_path, c->unix_path, strlen(c->unix_path) + 1);
	r->unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->unix_fd < 0) {
		snprintf(k->why, k->whylen, "socket(AF_UNIX): %s", strerror(errno));
		return ZD_EIO;
	}
	(void)setsockopt(r->unix_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(r->unix_fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		snprintf(k->why, k->whylen, "cannot connect to zonedistd's API at unix:%s (%s)",
		         c->unix_path, strerror(errno));
		return ZD_EIO;
	}
	if (evutil_make_socket_nonblocking(r->unix_fd) != 0) {
		snprintf(k->why, k->whylen, "cannot make the API socket non-blocking");
		return ZD_EIO;
	}
	r->lis = evconnlistener_new_bind(k->base, relay_accept, r,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4,
	                                 (struct sockaddr *)&sin, sizeof sin);
	if (r->lis == NULL ||
	    getsockname(evconnlistener_get_fd(r->lis), (struct sockaddr *)&sin, &sl) != 0) {
		snprintf(k->why, k->whylen, "cannot listen on 127.0.0.1 to relay to unix:%s (%s)",
		         c->unix_path, strerror(errno));
		return ZD_EIO;
	}
	*port = ntohs(sin.sin_port);
	return ZD_OK;
}

static void
relay_clear(struct relay *r)
{
	if (r->lis)
		evconnlistener_free(r->lis);
	if (r->up)
		bufferevent_free(r->up);
	if (r->down)
		bufferevent_free(r->down);
	if (r->unix_fd >= 0)
		evutil_closesocket(r->unix_fd);
	r->lis = NULL;
	r->up = r->down = r->closing = NULL;
	r->unix_fd = -1;
}

/* --- requests ------------------------------------------------------------ */

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
		else if (evbuffer_get_length(k->body) + evbuffer_get_length(in) > k->c->max_body) {
			if (k->fn_err == ZD_OK) {
				snprintf(k->why, k->whylen, "the reply is larger than %zu bytes",
				         k->c->max_body);
				k->fn_err = ZD_ELIMIT;
			}
		} else
			evbuffer_add_buffer(k->body, in);
	}
	event_base_loopexit(k->base, NULL);
}

static zd_err
call_run(const struct api_client *c, const struct api_request *rq, struct call *k)
{
	struct evhttp_connection *evcon = NULL;
	struct evhttp_request *req = NULL;
	struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
	zd_err e = ZD_ENOMEM;
	char hosthdr[300], where[160], auth[4200];
	const char *host = c->host;
	uint16_t port = c->port;
	int post = rq->method != NULL && strcmp(rq->method, "POST") == 0;

	k->c = c;
	k->relay.unix_fd = -1;
	api_client_endpoint_get(c, where, sizeof where);
	k->base = event_base_new();
	k->body = evbuffer_new();
	if (k->base == NULL || k->body == NULL)
		goto out;
	if (c->unix_path[0]) {
		if ((e = relay_open(k, &port)) != ZD_OK)
			goto out;
		host = "127.0.0.1";
		e = ZD_ENOMEM;
	}
	evcon = evhttp_connection_base_new(k->base, NULL, host, port);
	if (evcon == NULL)
		goto out;
	k->relay.evcon = evcon;
	evhttp_connection_set_timeout_tv(evcon, &tv);
	evhttp_connection_set_retries(evcon, 0);
	evhttp_connection_set_max_headers_size(evcon, 64 * 1024);
	evhttp_connection_set_max_body_size(
	        evcon, (ev_ssize_t)(k->fn ? c->max_stream + 65536 : c->max_body));
	req = evhttp_request_new(on_done, k);
	if (req == NULL)
		goto out;
	evhttp_request_set_chunked_cb(req, on_chunk);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (c->unix_path[0])
		snprintf(hosthdr, sizeof hosthdr, "localhost");
	else
		snprintf(hosthdr, sizeof hosthdr, "%s", where);
	evhttp_add_header(h, "Host", hosthdr);
	evhttp_add_header(h, "Connection", "close");
	if (rq->token != NULL) {
		snprintf(auth, sizeof auth, "Bearer %s", rq->token);
		if (strlen(rq->token) > sizeof auth - 8 ||
		    evhttp_add_header(h, "Authorization", auth)) {
			evhttp_request_free(req);
			snprintf(k->why, k->whylen, "the token cannot be sent in a header");
			e = ZD_EMALFORMED;
			goto out;
		}
	}
	if (post) {
		evhttp_add_header(h, "Content-Type", "application/json");
		if (rq->body && evbuffer_add(evhttp_request_get_output_buffer(req), rq->body,
		                             rq->body_len) != 0) {
			evhttp_request_free(req);
			goto out;
		}
	}
	if (evhttp_make_request(evcon, req, post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, rq->path) !=
	    0) {
		req = NULL; /* freed by evhttp */
		snprintf(k->why, k->whylen, "cannot send the request to %s", where);
		e = ZD_EIO;
		goto out;
	}
	event_base_dispatch(k->base);
	if (!k->done || k->failed) {
		if (k->fn_err == ZD_OK)
			snprintf(
			        k->why, k->whylen,
			        "zonedistd's API at %s did not answer (down, or slower than %u ms)",
			        where, c->timeout_ms);
		e = k->fn_err != ZD_OK ? k->fn_err : ZD_EIO;
		goto out;
	}
	e = k->fn_err;
out:
	if (evcon)
		evhttp_connection_free(evcon);
	relay_clear(&k->relay);
	if (k->base)
		event_base_free(k->base);
	return e;
}

zd_err
api_client_request(const struct api_client *c, const struct api_request *rq, struct api_reply *out,
                   char *why, size_t whylen)
{
	struct call k = {.why = why, .whylen = whylen, .fn = rq->fn, .arg = rq->arg};
	zd_err e = call_run(c, rq, &k);

	if (e == ZD_OK) {
		size_t n = evbuffer_get_length(k.body);
		char *b = malloc(n + 1);
		if (b == NULL) {
			e = ZD_ENOMEM;
		} else {
			evbuffer_remove(k.body, b, n);
			b[n] = '\0';
			out->body = b;
			out->len = n;
			out->status = k.status;
		}
	}
	if (k.body)
		evbuffer_free(k.body);
	return e;
}

void
api_reply_clear(struct api_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 0;
}

zd_err
api_client_get(const struct api_client *c, const char *path, int *status, char **body, size_t *len,
               char *why, size_t whylen)
{
	struct api_request rq = {.method = "GET", .path = path};
	struct api_reply r = {0};
	zd_err e = api_client_request(c, &rq, &r, why, whylen);

	if (e == ZD_OK) {
		*status = r.status;
		*body = r.body;
		*len = r.len;
	}
	return e;
}

zd_err
api_client_get_lines(const struct api_client *c, const char *path, int *status, api_line_fn fn,
                     void *arg, char *why, size_t whylen)
{
	struct api_request rq = {.method = "GET", .path = path, .fn = fn, .arg = arg};
	struct api_reply r = {0};
	zd_err e = api_client_request(c, &rq, &r, why, whylen);

	if (e == ZD_OK) {
		*status = r.status;
		api_reply_clear(&r);
	}
	return e;
}
