/* server/notify.c -- NOTIFY out (RFC 1996) for the transfer server.
 *
 * One episode per zone and peer at a time: send, wait notify_timeout_ms,
 * resend with the wait doubled (capped at XFR_NOTIFY_MAX_MS) up to
 * notify_retries times, until an answer with our id comes back from the
 * peer's address (and, with a key, verifies).  A publish during an episode
 * is picked up by the next resend, which carries the newest SOA; an answer
 * to an older serial starts a new episode at once, so every peer learns of
 * the newest serial.  Messages go out from one socket per address family,
 * bound to the first listen address of that family when it is not a
 * wildcard (secondaries check the source of a NOTIFY against their
 * primaries).  Threads: the loop's thread only. */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "server/store.h"
#include "server/xfr_priv.h"

#define NOTIFY_BATCH 64 /* datagrams per read callback */
#define TYPE_SOA     6
#define CLASS_IN     1

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void notify_timer_cb(evutil_socket_t fd, short what, void *arg);
static void notify_read_cb(evutil_socket_t fd, short what, void *arg);

zd_err
notify_zone_init(struct xfr_zone *z)
{
	struct xfr_server *x = z->x;
	const struct zd_zone_config *zc = z->zc;
	struct notify_peer *peers;

	if (zc->n_notify == 0)
		return ZD_OK;
	if ((peers = calloc(zc->n_notify, sizeof *peers)) == NULL)
		return ZD_ENOMEM;
	z->peers = peers;
	for (size_t i = 0; i < zc->n_notify; i++) {
		struct notify_peer *p = &peers[i];
		p->z = z;
		p->peer = &zc->notify[i];
		zd_buf_init(&p->wire, XFR_UDP_MIN);
		zd_sockaddr_str((const struct sockaddr *)&p->peer->addr, p->addr, sizeof p->addr);
		z->n_peers++;
		if (p->peer->key != NULL && (p->key = xfr_key_find(x, p->peer->key)) == NULL) {
			zd_log(ZD_LOG_ERROR, "xfr", zc->name, "notify %s names unknown key %s",
			       p->peer->text, p->peer->key);
			notify_zone_clear(z);
			return ZD_EMALFORMED;
		}
		if ((p->timer = evtimer_new(x->base, notify_timer_cb, p)) == NULL) {
			notify_zone_clear(z);
			return ZD_ENOMEM;
		}
	}
	return ZD_OK;
}

void
notify_zone_clear(struct xfr_zone *z)
{
	for (size_t i = 0; i < z->n_peers; i++) {
		if (z->peers[i].timer != NULL)
			event_free(z->peers[i].timer);
		zd_buf_clear(&z->peers[i].wire);
	}
	free(z->peers);
	z->peers = NULL;
	z->n_peers = 0;
}

void
notify_server_clear(struct xfr_server *x)
{
	for (int i = 0; i < 2; i++) {
		if (x->notify_ev[i] != NULL)
			event_free(x->notify_ev[i]);
		x->notify_ev[i] = NULL;
		if (x->notify_fd[i] >= 0)
			close(x->notify_fd[i]);
		x->notify_fd[i] = -1;
	}
}

static int
sa_is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int
sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	return 0;
}

/* The socket NOTIFYs to this family go out from; -1 when it cannot be made. */
static int
notify_socket(struct xfr_server *x, int family)
{
	int i = family == AF_INET6;
	if (x->notify_fd[i] >= 0)
		return x->notify_fd[i];
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	for (size_t j = 0; j < x->n_listeners; j++) {
		const struct xfr_listener *l = &x->listeners[j];
		if (l->addr.ss_family != family || sa_is_wildcard(&l->addr))
			continue;
		struct sockaddr_storage src = l->addr;
		if (family == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&src, l->addrlen) != 0)
			zd_log(ZD_LOG_WARNING, "xfr", NULL,
			       "NOTIFY source address: cannot bind: %s; the kernel picks one",
			       strerror(errno));
		break;
	}
	struct event *ev = event_new(x->base, fd, EV_READ | EV_PERSIST, notify_read_cb, x);
	if (ev == NULL || event_add(ev, NULL) != 0) {
		if (ev != NULL)
			event_free(ev);
		close(fd);
		return -1;
	}
	x->notify_fd[i] = fd;
	x->notify_ev[i] = ev;
	return fd;
}

static uint32_t
published_serial(struct xfr_zone *z, uint64_t *version_out)
{
	uint32_t serial = 0;
	uint64_t v = store_published_get(z->s);
	if (v != 0 && store_serial_find(z->s, v, &serial) != ZD_OK)
		v = 0;
	*version_out = v;
	return serial;
}

/* (Re)build p's message with the newest published SOA, signed when p has
 * a key; the id stays that of the episode. */
static zd_err
notify_build(struct notify_peer *p)
{
	struct xfr_zone *z = p->z;
	struct xfr_server *x = z->x;
	struct xfr_msg *m = &x->msg;
	uint32_t serial;
	zd_err e;

	uint64_t v = store_published_get(z->s);
	if (v == 0)
		return ZD_ENOTFOUND;
	if ((e = xfr_zone_soa_load(z, v, &x->rr, &serial)) != ZD_OK)
		return e;
	size_t limit = XFR_UDP_MIN - (p->key ? tsig_space_get(p->key) : 0);
	/* RFC 1996 s3.7: QUERY section holds the SOA question, ANSWER may
	 * hold the new SOA.  AA set as in s3.1's example. */
	xfr_msg_begin(m, p->id, (uint16_t)(DNS_OPCODE_NOTIFY << 11 | DNS_AA), limit);
	if ((e = xfr_msg_question_put(m, z->apex, z->apex_len, TYPE_SOA, CLASS_IN)) != ZD_OK ||
	    (e = xfr_msg_rr_put(m, XFR_SEC_ANSWER, x->rr.data, x->rr.len)) != ZD_OK)
		return e;
	xfr_msg_finish(m);
	if (p->key != NULL) {
		tsig_ctx_init(&p->tctx, p->key);
		if ((e = tsig_sign(&p->tctx, &m->b, zd_wallclock_s())) != ZD_OK)
			return e;
	}
	zd_buf_reset(&p->wire);
	if ((e = zd_buf_append(&p->wire, m->b.data, m->b.len)) != ZD_OK)
		return e;
	p->sent_serial = serial;
	return ZD_OK;
}

static void
notify_send(struct notify_peer *p)
{
	struct xfr_server *x = p->z->x;
	int fd = notify_socket(x, p->peer->addr.ss_family);
	if (fd < 0 || sendto(fd, p->wire.data, p->wire.len, 0,
	                     (const struct sockaddr *)&p->peer->addr, p->peer->addrlen) < 0)
		zd_log(ZD_LOG_WARNING, "xfr", p->z->zc->name, "NOTIFY %s serial %u to %s: %s",
		       p->z->zc->name, p->sent_serial, p->addr,
		       fd < 0 ? "no socket" : strerror(errno));
	else
		atomic_fetch_add_explicit(&x->n_notify_sent, 1, memory_order_relaxed);
	p->attempts++;
	struct timeval tv = {p->wait_ms / 1000, (p->wait_ms % 1000) * 1000};
	evtimer_add(p->timer, &tv);
}

static void
notify_start(struct notify_peer *p)
{
	struct xfr_server *x = p->z->x;
	uint16_t id;
	zd_err e;

	if (RAND_bytes((unsigned char *)&id, sizeof id) != 1)
		id = (uint16_t)(zd_now_ms() ^ (uintptr_t)p);
	p->id = id;
	p->attempts = 0;
	p->wait_ms = x->cfg->limits.notify_timeout_ms;
	if (p->wait_ms == 0)
		p->wait_ms = 1000;
	if ((e = notify_build(p)) != ZD_OK) {
		zd_log(ZD_LOG_WARNING, "xfr", p->z->zc->name, "NOTIFY %s to %s not sent: %s",
		       p->z->zc->name, p->addr, zd_strerror(e));
		p->active = 0;
		return;
	}
	p->active = 1;
	zd_log(ZD_LOG_INFO, "xfr", p->z->zc->name, "NOTIFY %s serial %u to %s", p->z->zc->name,
	       p->sent_serial, p->addr);
	notify_send(p);
}

void
notify_zone_published(struct xfr_zone *z)
{
	/* Every publish is told at once, also to a peer whose NOTIFY of an
	 * older serial is still unanswered (in backoff, say, because it was
	 * down): waiting for that peer's next resend would add the backoff to
	 * the new serial's latency.  The new NOTIFY has a new id; an answer to
	 * the old one then matches nothing and is ignored. */
	for (size_t i = 0; i < z->n_peers; i++) {
		if (z->peers[i].active)
			evtimer_del(z->peers[i].timer);
		notify_start(&z->peers[i]);
	}
}

static void
notify_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct notify_peer *p = arg;
	struct xfr_server *x = p->z->x;
	uint64_t v;
	(void)fd;
	(void)what;

	if (!p->active)
		return;
	if (p->attempts > x->cfg->limits.notify_retries) {
		zd_log(ZD_LOG_WARNING, "xfr", p->z->zc->name,
		       "NOTIFY %s serial %u to %s: no answer after %u attempts, giving up",
		       p->z->zc->name, p->sent_serial, p->addr, p->attempts);
		p->active = 0;
		atomic_fetch_add_explicit(&x->n_notify_failed, 1, memory_order_relaxed);
		return;
	}
	uint32_t serial = published_serial(p->z, &v);
	if (v != 0 && serial != p->sent_serial) {
		if (notify_build(p) != ZD_OK) {
			p->active = 0;
			return;
		}
		zd_log(ZD_LOG_INFO, "xfr", p->z->zc->name, "NOTIFY %s serial %u to %s",
		       p->z->zc->name, p->sent_serial, p->addr);
	} else {
		zd_log(ZD_LOG_DEBUG, "xfr", p->z->zc->name,
		       "NOTIFY %s serial %u to %s (attempt %u)", p->z->zc->name, p->sent_serial,
		       p->addr, p->attempts + 1);
	}
	p->wait_ms = p->wait_ms > XFR_NOTIFY_MAX_MS / 2 ? XFR_NOTIFY_MAX_MS : p->wait_ms * 2;
	notify_send(p);
}

static struct notify_peer *
peer_find(struct xfr_server *x, const struct sockaddr_storage *from, uint16_t id)
{
	for (size_t i = 0; i < x->n_zones; i++)
		for (size_t j = 0; j < x->zones[i]->n_peers; j++) {
			struct notify_peer *p = &x->zones[i]->peers[j];
			if (p->active && p->id == id && sa_equal(from, &p->peer->addr))
				return p;
		}
	return NULL;
}

/* An answer to p's NOTIFY; 0 when it must be ignored. */
static int
answer_accept(struct notify_peer *p, const uint8_t *w, size_t n, uint16_t rcode)
{
	struct xfr_server *x = p->z->x;
	struct tsig_rr t;
	uint16_t terr;

	if (p->key == NULL)
		return 1;
	zd_err e = tsig_rr_parse(w, n, &t);
	if (e == ZD_ENOTFOUND) {
		/* Error answers may come unsigned (RFC 8945 s5.3.2); a plain
		 * NOERROR to a signed request may not. */
		if (rcode != DNS_NOERROR)
			return 1;
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, p->z->zc->name,
		                "unsigned answer to signed NOTIFY from %s ignored", p->addr);
		return 0;
	}
	if (e != ZD_OK) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, p->z->zc->name,
		                "answer to NOTIFY from %s with a malformed TSIG ignored", p->addr);
		return 0;
	}
	if (t.error != TSIG_NOERROR) {
		zd_log(ZD_LOG_WARNING, "xfr", p->z->zc->name,
		       "NOTIFY %s to %s: peer rejects key %s (TSIG error %u)", p->z->zc->name,
		       p->addr, tsig_key_name_get(p->key), t.error);
		return 1;
	}
	struct tsig_ctx c = p->tctx;
	if (tsig_verify(&c, w, n, &t, zd_wallclock_s(), &terr) != ZD_OK || terr != TSIG_NOERROR) {
		xfr_log_limited(&x->rl_peer, ZD_LOG_INFO, p->z->zc->name,
		                "answer to NOTIFY from %s ignored: TSIG does not verify", p->addr);
		return 0;
	}
	return 1;
}

static void
notify_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfr_server *x = arg;
	(void)what;

	for (int i = 0; i < NOTIFY_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		ssize_t n = recvfrom(fd, x->udp_buf, XFR_MSG_MAX, 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (n < 12)
			continue;
		uint16_t flags = get16(x->udp_buf + 2);
		if (!(flags & DNS_QR) || DNS_OPCODE(flags) != DNS_OPCODE_NOTIFY)
			continue;
		struct notify_peer *p = peer_find(x, &from, get16(x->udp_buf));
		if (p == NULL) {
			char a[XFR_ADDRSTR];
			zd_sockaddr_str((struct sockaddr *)&from, a, sizeof a);
			xfr_log_limited(&x->rl_peer, ZD_LOG_DEBUG, NULL,
			                "NOTIFY answer from %s matches nothing outstanding", a);
			continue;
		}
		uint16_t rcode = flags & 0xFu;
		if (!answer_accept(p, x->udp_buf, (size_t)n, rcode))
			continue;
		p->active = 0;
		evtimer_del(p->timer);
		atomic_fetch_add_explicit(&x->n_notify_acked, 1, memory_order_relaxed);
		if (rcode != DNS_NOERROR) {
			zd_log(ZD_LOG_WARNING, "xfr", p->z->zc->name,
			       "NOTIFY %s serial %u to %s answered with rcode %u; not resent",
			       p->z->zc->name, p->sent_serial, p->addr, rcode);
			continue;
		}
		zd_log(ZD_LOG_DEBUG, "xfr", p->z->zc->name, "NOTIFY %s serial %u to %s answered",
		       p->z->zc->name, p->sent_serial, p->addr);
		uint64_t v;
		uint32_t serial = published_serial(p->z, &v);
		if (v != 0 && serial != p->sent_serial)
			notify_start(p); /* published meanwhile: tell it the newest */
	}
}
