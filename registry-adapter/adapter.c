/* registry-adapter/adapter.c -- LISTEN/NOTIFY, batches and full loads over
 * libpq (see adapter.h).
 *
 * Every statement is parameterized; registry bytes never become SQL text.
 * The only SQL built here carries numbers this file formatted itself (FETCH
 * counts) and array literals of ids this file parsed, or of names escaped by
 * text_array_append() and passed as a parameter. */
#include "registry-adapter/adapter.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zd_buf.h"
#include "common/zd_config.h"
#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "registry-adapter/owners.h"
#include "registry-adapter/row.h"

#define SUBSYS "adapter"

#define ERROR_MAX         1024         /* bytes of ra_error_get() text */
#define REJECT_ROW_MAX    4096         /* bytes of a rejected row kept in zonedist.rejected */
#define LOG_ROW_MAX       200          /* bytes of a rejected row in a log line */
#define ID_CHUNK          10000        /* ids per DELETE statement */
#define CHANGE_FETCH      100000u      /* change rows per FETCH in a full load */
#define DEFERRED_MAX      (256u << 20) /* bytes of rejected rows held during COPY */
#define ARRAY_LITERAL_MAX (64u << 20)  /* bytes of one array parameter */

struct ra {
	char *conninfo;
	PGconn *conn;   /* NULL when never connected or closed */
	int broken;     /* a call saw the connection fail; ra_connect() replaces it */
	int batch_open; /* one batch per connection */
	char error[ERROR_MAX];
	struct zd_ratelimit reject_log; /* registry rows can be many: bounded logging */
};

struct name_entry {
	ldns_rdf *name;    /* canonical; owned */
	ldns_rr_list *rrs; /* the wanted records; owned, deep-freed */
	int64_t txid;      /* txid of the name's first change row */
	size_t unparsed;   /* rows of this name that are no valid record */
};

struct ra_batch {
	struct ra *ra; /* borrowed; ra->batch_open while b lives */
	char *zone;    /* normalized text; owned */
	ldns_rdf *apex;
	int full;      /* made by ra_full_begin() */
	int failed;    /* ra_full_next() failed: only ra_batch_abort() is left */
	int handed_up; /* full load: every name is handed up */
	int copy_done; /* full load: every row is read */
	int64_t *change_ids;
	size_t n_changes, cap_changes;
	int64_t *txids; /* distinct, ascending */
	size_t n_txids;
	struct name_entry *names; /* canonical order */
	size_t n_names;
	size_t n_rejected;
	ldns_rr_list *pending;    /* full load: the records of one owner, being checked */
	struct ra_owners *owners; /* full load: every record read, by owner, until handed up */
	size_t next_owner;        /* full load: the first name not handed up yet */
	struct zd_buf deferred;   /* full load: rows rejected while COPY ran (deferred_add()) */
	uint64_t first_ms;        /* full load: until the first row (the query starts) */
	uint64_t fetch_ms;        /* full load: waiting for rows, the first included */
	uint64_t check_ms;        /* full load: parsing, grouping and checking the rows */
};

/* ---- errors and statements --------------------------------------------- */

/* Error text on one line: libpq's messages end in newlines and may have
 * DETAIL lines. */
static void
error_set(struct ra *ra, const char *what, const char *sqlstate, const char *msg)
{
	size_t n;

	if (msg == NULL || *msg == '\0')
		msg = "unknown error";
	snprintf(ra->error, sizeof ra->error, "%s: %s%s%s", what, sqlstate ? "SQLSTATE " : "",
	         sqlstate ? sqlstate : "", sqlstate ? " " : "");
	n = strlen(ra->error);
	for (const char *p = msg; *p && n + 1 < sizeof ra->error; p++)
		ra->error[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
	while (n > 0 && ra->error[n - 1] == ' ')
		n--;
	ra->error[n] = '\0';
}

/* A limit's message, formatted. */
static void error_limit(struct ra *ra, const char *what, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void
error_limit(struct ra *ra, const char *what, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	error_set(ra, what, NULL, msg);
}

static void
conn_check(struct ra *ra)
{
	if (ra->conn == NULL || PQstatus(ra->conn) != CONNECTION_OK)
		ra->broken = 1;
}

static int
connected(const struct ra *ra)
{
	return ra->conn != NULL && !ra->broken && PQstatus(ra->conn) == CONNECTION_OK;
}

/* Run one statement with text parameters (NULL pointer = SQL NULL).  On ZD_OK
 * *out (when not NULL) is the result, which the caller clears. */
static zd_err
exec(struct ra *ra, const char *what, const char *sql, int n, const char *const *params,
     ExecStatusType expect, PGresult **out)
{
	PGresult *res;

	if (!connected(ra)) {
		ra->broken = 1;
		error_set(ra, what, NULL, "not connected to the registry database");
		return ZD_EDB;
	}
	res = PQexecParams(ra->conn, sql, n, NULL, params, NULL, NULL, 0);
	if (res == NULL) {
		error_set(ra, what, NULL, PQerrorMessage(ra->conn));
		conn_check(ra);
		return ZD_EDB;
	}
	if (PQresultStatus(res) != expect) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		error_set(ra, what, PQresultErrorField(res, PG_DIAG_SQLSTATE),
		          primary ? primary : PQresultErrorMessage(res));
		PQclear(res);
		conn_check(ra);
		return ZD_EDB;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return ZD_OK;
}

/* End a failed transaction; keeps the error text of what failed. */
static void
rollback(struct ra *ra)
{
	PGresult *res;

	if (!connected(ra) || PQtransactionStatus(ra->conn) == PQTRANS_IDLE)
		return;
	res = PQexec(ra->conn, "ROLLBACK");
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		ra->broken = 1; /* a connection that cannot roll back is of no use */
	PQclear(res);
	conn_check(ra);
}

/* Columns this file asked for by name; a registry function with other
 * columns fails in SQL first, so a mismatch here is a broken reply. */
static zd_err
result_shape(struct ra *ra, const char *what, const PGresult *res, int fields)
{
	if (PQnfields(res) != fields) {
		error_set(ra, what, NULL, "unexpected number of columns in the reply");
		return ZD_EDB;
	}
	return ZD_OK;
}

static zd_err
value_i64(struct ra *ra, const char *what, const PGresult *res, int row, int col, int64_t *out)
{
	uint64_t v;

	if (PQgetisnull(res, row, col) ||
	    zd_parse_u64(PQgetvalue(res, row, col), 0, INT64_MAX, &v) != ZD_OK) {
		error_set(ra, what, NULL, "unexpected NULL or non-numeric id/txid in the reply");
		return ZD_EDB;
	}
	*out = (int64_t)v;
	return ZD_OK;
}

/* ---- array literals ----------------------------------------------------- */

/* "{1,2,3}" from ids[0..n). */
static zd_err
id_array_build(const int64_t *ids, size_t n, struct zd_buf *out)
{
	zd_err e = zd_buf_append_u8(out, '{');

	for (size_t i = 0; e == ZD_OK && i < n; i++)
		e = zd_buf_printf(out, "%s%" PRId64, i ? "," : "", ids[i]);
	if (e == ZD_OK)
		e = zd_buf_printf(out, "}");
	return e;
}

/* One element of a text[] literal: always double-quoted, with '"' and '\'
 * backslash-escaped, so commas, braces, white space and the word NULL stay
 * data (PostgreSQL manual, "Array Value Input"). */
static zd_err
text_array_append(struct zd_buf *out, const char *s, int first)
{
	zd_err e = first ? ZD_OK : zd_buf_append_u8(out, ',');

	if (e == ZD_OK)
		e = zd_buf_append_u8(out, '"');
	for (const char *p = s; e == ZD_OK && *p; p++) {
		if (*p == '"' || *p == '\\')
			e = zd_buf_append_u8(out, '\\');
		if (e == ZD_OK)
			e = zd_buf_append_u8(out, (uint8_t)*p);
	}
	if (e == ZD_OK)
		e = zd_buf_append_u8(out, '"');
	return e;
}

/* ---- rejected rows ------------------------------------------------------ */

/* Printable ASCII copy for a log line; others become '?'. */
static void
log_text(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p && n + 4 < cap; p++)
		dst[n++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
	if (src[n] != '\0' && n + 4 >= cap) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

/* Cut s (NUL-terminated, s_len bytes) to at most max bytes without splitting
 * a UTF-8 sequence, so PostgreSQL takes the text back. */
static size_t
utf8_cut(const char *s, size_t s_len, size_t max)
{
	size_t n = s_len;

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* Record one rejected row in zonedist.rejected (inside the batch's
 * transaction) and log it, rate-limited.  txid < 0: none. */
static zd_err
reject(struct ra_batch *b, const char *name, const char *reason, const char *row, int64_t txid)
{
	char txid_s[24], row_log[LOG_ROW_MAX], *row_db = NULL;
	const char *params[5];
	size_t row_len = strlen(row), cut;
	uint32_t suppressed = 0;
	zd_err e;

	cut = utf8_cut(row, row_len, REJECT_ROW_MAX);
	row_db = malloc(cut + 4);
	if (row_db == NULL)
		return ZD_ENOMEM;
	memcpy(row_db, row, cut);
	memcpy(row_db + cut, cut < row_len ? "..." : "", cut < row_len ? 4 : 1);
	snprintf(txid_s, sizeof txid_s, "%" PRId64, txid);
	params[0] = b->zone;
	params[1] = name != NULL ? name : "";
	params[2] = reason;
	params[3] = row_db;
	params[4] = txid >= 0 ? txid_s : NULL;
	e = exec(b->ra, "insert into zonedist.rejected",
	         "INSERT INTO zonedist.rejected (zone, name, reason, row_data, txid) "
	         "VALUES ($1, $2, $3, $4, $5::bigint)",
	         5, params, PGRES_COMMAND_OK, NULL);
	free(row_db);
	if (e != ZD_OK)
		return e;
	b->n_rejected++;
	if (zd_ratelimit_ok(&b->ra->reject_log, zd_now_ms(), &suppressed)) {
		char more[64] = "";
		if (suppressed > 0)
			snprintf(more, sizeof more, " (%" PRIu32 " more rejects were not logged)",
			         suppressed);
		log_text(row_log, sizeof row_log, row);
		zd_log(ZD_LOG_WARNING, SUBSYS, b->zone,
		       "registry row rejected (%s), recorded in zonedist.rejected: %s%s", reason,
		       row_log, more);
	}
	return ZD_OK;
}

/* Append at most max bytes of s, cut at a UTF-8 character boundary. */
static zd_err
append_cut(struct zd_buf *out, const char *s, size_t max)
{
	return zd_buf_append(out, s, utf8_cut(s, strlen(s), max));
}

/* Bytes of each zone_rrs() field (owner, type, ttl, rdata) a reject keeps. */
static const size_t field_max[4] = {RA_ROW_OWNER_MAX, RA_ROW_TYPE_MAX, RA_ROW_TTL_MAX,
                                    REJECT_ROW_MAX};

/* A zone_rrs row as text for zonedist.rejected: "owner ttl type rdata". */
static zd_err
reject_fields(struct ra_batch *b, const char *const f[4], const char *reason, int64_t txid)
{
	static const int order[4] = {0, 2, 1, 3}; /* owner ttl type rdata */
	char *owner = NULL;
	struct zd_buf text;
	zd_err e = ZD_OK;

	zd_buf_init(&text, RA_ROW_OWNER_MAX + RA_ROW_TYPE_MAX + RA_ROW_TTL_MAX + REJECT_ROW_MAX +
	                           8); /* bytes */
	for (int k = 0; e == ZD_OK && k < 4; k++) {
		int c = order[k];
		if (k > 0)
			e = zd_buf_append_u8(&text, ' ');
		if (e == ZD_OK)
			e = append_cut(&text, f[c] != NULL ? f[c] : "NULL", field_max[c]);
	}
	if (e == ZD_OK)
		e = zd_buf_append_u8(&text, '\0');
	if (e == ZD_OK && f[0] != NULL) {
		size_t n = utf8_cut(f[0], strlen(f[0]), RA_ROW_OWNER_MAX);
		owner = strndup(f[0], n);
		if (owner == NULL)
			e = ZD_ENOMEM;
	}
	if (e == ZD_OK)
		e = reject(b, owner, reason, (const char *)text.data, txid);
	free(owner);
	zd_buf_clear(&text);
	return e;
}

/* reject_fields() of a zone_rrs() row of res. */
static zd_err
reject_row(struct ra_batch *b, const PGresult *res, int row, const char *reason, int64_t txid)
{
	const char *f[4];

	for (int c = 0; c < 4; c++)
		f[c] = PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
	return reject_fields(b, f, reason, txid);
}

/* A change row whose name is no owner of the zone. */
static zd_err
reject_change(struct ra_batch *b, int64_t id, const char *name, const char *why, int64_t txid)
{
	struct zd_buf reason, row;
	char *short_name = NULL;
	zd_err e;

	zd_buf_init(&reason, 256);                /* bytes */
	zd_buf_init(&row, RA_ROW_OWNER_MAX + 64); /* bytes */
	e = zd_buf_printf(&reason, "change row name: %s", why);
	if (e == ZD_OK)
		e = zd_buf_printf(&row, "zonedist.change id %" PRId64 " name ", id);
	if (e == ZD_OK)
		e = append_cut(&row, name != NULL ? name : "NULL", RA_ROW_OWNER_MAX);
	if (e == ZD_OK)
		e = zd_buf_append_u8(&row, '\0');
	if (e == ZD_OK && name != NULL) {
		short_name = strndup(name, utf8_cut(name, strlen(name), RA_ROW_OWNER_MAX));
		if (short_name == NULL)
			e = ZD_ENOMEM;
	}
	if (e == ZD_OK)
		e = reject(b, short_name, (const char *)reason.data, (const char *)row.data, txid);
	free(short_name);
	zd_buf_clear(&reason);
	zd_buf_clear(&row);
	return e;
}

/* ra_rrs_check() rejects, as presentation text. */
static zd_err
reject_rrs(struct ra_batch *b, struct ra_reject *rej, size_t n, int64_t txid)
{
	zd_err e = ZD_OK;

	for (size_t i = 0; e == ZD_OK && i < n; i++) {
		char *row = ldns_rr2str(rej[i].rr);
		char *name = ldns_rdf2str(ldns_rr_owner(rej[i].rr));
		if (row == NULL || name == NULL) {
			e = ZD_ENOMEM;
		} else {
			size_t len = strlen(row);
			while (len > 0 && (row[len - 1] == '\n' || row[len - 1] == '\r'))
				row[--len] = '\0';
			for (size_t k = 0; k < len; k++)
				row[k] = row[k] == '\t' ? ' ' : row[k];
			e = reject(b, name, rej[i].reason, row, txid);
		}
		free(row);
		free(name);
	}
	return e;
}

static int64_t
first_txid(const struct ra_batch *b)
{
	return b->n_changes > 0 && b->n_txids > 0 ? b->txids[0] : -1;
}

/* Server notices and warnings (RAISE NOTICE in a registry function, a
 * terminating backend) go to the log, one line each, not to stderr. */
static void
notice_receive(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char text[512];

	(void)arg;
	log_text(text, sizeof text, primary != NULL ? primary : PQresultErrorMessage(res));
	int serious = severity != NULL &&
	              (strcmp(severity, "WARNING") == 0 || strcmp(severity, "ERROR") == 0 ||
	               strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);

	zd_log(serious ? ZD_LOG_WARNING : ZD_LOG_INFO, SUBSYS, NULL, "PostgreSQL %s: %s",
	       severity != NULL ? severity : "notice", text);
}

/* ---- struct ra ---------------------------------------------------------- */

zd_err
ra_new(const char *conninfo, struct ra **out)
{
	struct ra *ra;

	if (conninfo == NULL || out == NULL)
		return ZD_EBUG;
	ra = calloc(1, sizeof *ra);
	if (ra == NULL)
		return ZD_ENOMEM;
	ra->conninfo = strdup(conninfo);
	if (ra->conninfo == NULL) {
		free(ra);
		return ZD_ENOMEM;
	}
	zd_ratelimit_init(&ra->reject_log, 10000, 20); /* 20 lines per 10 s */
	*out = ra;
	return ZD_OK;
}

void
ra_free(struct ra *ra)
{
	if (ra == NULL)
		return;
	zd_check_failed(!ra->batch_open);
	if (ra->conn != NULL)
		PQfinish(ra->conn);
	free(ra->conninfo);
	free(ra);
}

zd_err
ra_connect(struct ra *ra)
{
	/* Earlier keywords are defaults: the expanded conninfo (dbname, last)
	 * overrides each of them. */
	static const char *const keywords[] = {
	        "connect_timeout",  "application_name", "client_encoding",
	        "keepalives",       "keepalives_idle",  "keepalives_interval",
	        "keepalives_count", "dbname",           NULL,
	};
	const char *values[] = {"5", "zonedistd", "UTF8", "1", "30", "10", "3", NULL, NULL};
	zd_err e;

	if (ra == NULL || ra->batch_open)
		return ZD_EBUG;
	ra->error[0] = '\0';
	if (connected(ra))
		return ZD_OK;
	if (ra->conn != NULL) {
		PQfinish(ra->conn);
		ra->conn = NULL;
	}
	ra->broken = 0;
	values[7] = ra->conninfo;
	ra->conn = PQconnectdbParams(keywords, values, 1);
	if (ra->conn == NULL) {
		ra->broken = 1;
		error_set(ra, "connect", NULL, "out of memory");
		return ZD_ENOMEM;
	}
	if (PQstatus(ra->conn) != CONNECTION_OK) {
		error_set(ra, "connect", NULL, PQerrorMessage(ra->conn));
		PQfinish(ra->conn);
		ra->conn = NULL;
		ra->broken = 1;
		return ZD_EDB;
	}
	PQsetNoticeReceiver(ra->conn, notice_receive, NULL);
	e = exec(ra, "listen", "LISTEN " RA_CHANNEL, 0, NULL, PGRES_COMMAND_OK, NULL);
	if (e != ZD_OK) {
		PQfinish(ra->conn);
		ra->conn = NULL;
		ra->broken = 1;
		return e;
	}
	ra->error[0] = '\0';
	return ZD_OK;
}

int
ra_is_connected(const struct ra *ra)
{
	return ra != NULL && connected(ra);
}

const char *
ra_error_get(const struct ra *ra)
{
	return ra != NULL ? ra->error : "";
}

/* Consume every queued notification; 1 if there was one. */
static int
notifies_drain(struct ra *ra)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(ra->conn)) != NULL) {
		any = 1;
		PQfreemem(n);
	}
	return any;
}

zd_err
ra_wait(struct ra *ra, uint32_t timeout_ms, int *notified)
{
	uint64_t deadline;
	int any;

	if (ra == NULL || notified == NULL || ra->batch_open)
		return ZD_EBUG;
	ra->error[0] = '\0';
	if (!connected(ra)) {
		ra->broken = 1;
		error_set(ra, "wait", NULL, "not connected to the registry database");
		return ZD_EDB;
	}
	deadline = zd_now_ms() + timeout_ms;
	any = notifies_drain(ra);
	while (!any) {
		struct pollfd pfd = {.fd = PQsocket(ra->conn), .events = POLLIN};
		uint64_t now = zd_now_ms();
		int left, r;

		if (pfd.fd < 0) {
			ra->broken = 1;
			error_set(ra, "wait", NULL, "connection has no socket");
			return ZD_EDB;
		}
		if (now >= deadline)
			break;
		left = deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
		r = poll(&pfd, 1, left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			error_set(ra, "wait: poll", NULL, strerror(errno));
			return ZD_EDB;
		}
		if (r == 0)
			break;
		if (!PQconsumeInput(ra->conn)) {
			error_set(ra, "wait", NULL, PQerrorMessage(ra->conn));
			ra->broken = 1;
			return ZD_EDB;
		}
		any = notifies_drain(ra);
		conn_check(ra);
		if (ra->broken) {
			error_set(ra, "wait", NULL, PQerrorMessage(ra->conn));
			return ZD_EDB;
		}
	}
	*notified = any;
	return ZD_OK;
}

/* ---- batches ------------------------------------------------------------ */

static void
batch_free(struct ra_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n_names; i++) {
		ldns_rdf_deep_free(b->names[i].name);
		ldns_rr_list_deep_free(b->names[i].rrs);
	}
	free(b->names);
	free(b->change_ids);
	free(b->txids);
	ldns_rr_list_deep_free(b->pending);
	ra_owners_free(b->owners);
	zd_buf_clear(&b->deferred);
	ldns_rdf_deep_free(b->apex);
	free(b->zone);
	if (b->ra != NULL)
		b->ra->batch_open = 0;
	free(b);
}

/* A batch shell for zone: normalized name, apex, nothing taken yet. */
static zd_err
batch_new(struct ra *ra, const char *zone, struct ra_batch **out)
{
	struct ra_batch *b;
	ldns_status st;

	if (zone[0] == '\0') {
		error_set(ra, "zone name", NULL, "empty");
		return ZD_EMALFORMED;
	}
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return ZD_ENOMEM;
	b->zone = zd_name_normalize(zone);
	if (b->zone == NULL) {
		free(b);
		return ZD_ENOMEM;
	}
	st = ldns_str2rdf_dname(&b->apex, b->zone);
	if (st != LDNS_STATUS_OK || b->apex == NULL) {
		error_set(ra, "zone name", NULL, ldns_get_errorstr_by_id(st));
		batch_free(b);
		return st == LDNS_STATUS_MEM_ERR ? ZD_ENOMEM : ZD_EMALFORMED;
	}
	ldns_dname2canonical(b->apex);
	b->ra = ra;
	ra->batch_open = 1;
	*out = b;
	return ZD_OK;
}

static int
i64_cmp(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
	return a < b ? -1 : a > b;
}

static zd_err
change_append(struct ra_batch *b, int64_t id, size_t cap)
{
	if (b->n_changes == b->cap_changes) {
		size_t n = b->cap_changes ? b->cap_changes * 2 : 1024;
		int64_t *p;

		if (n > cap)
			n = cap;
		if (n <= b->n_changes)
			return ZD_ELIMIT;
		p = realloc(b->change_ids, n * sizeof *p);
		if (p == NULL)
			return ZD_ENOMEM;
		b->change_ids = p;
		b->cap_changes = n;
	}
	b->change_ids[b->n_changes++] = id;
	return ZD_OK;
}

/* Sort and de-duplicate txids[0..n) into b->txids (takes txids). */
static void
txids_set(struct ra_batch *b, int64_t *txids, size_t n)
{
	size_t k = 0;

	if (n > 0) {
		qsort(txids, n, sizeof *txids, i64_cmp);
		for (size_t i = 0; i < n; i++) {
			if (k == 0 || txids[k - 1] != txids[i])
				txids[k++] = txids[i];
		}
	}
	b->txids = txids;
	b->n_txids = k;
}

struct change_name {
	ldns_rdf *name;   /* owned until moved into a name_entry */
	const char *text; /* borrowed from the change result */
	int64_t txid;
	size_t order; /* change row index: the first row of a name gives its txid */
};

static int
change_name_cmp(const void *pa, const void *pb)
{
	const struct change_name *a = pa, *b = pb;
	int c = ldns_dname_compare(a->name, b->name);

	if (c != 0)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int
text_cmp(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static int
name_entry_key_cmp(const void *key, const void *elem)
{
	return ldns_dname_compare((const ldns_rdf *)key, ((const struct name_entry *)elem)->name);
}

static struct name_entry *
name_find(struct ra_batch *b, const ldns_rdf *name)
{
	if (b->n_names == 0)
		return NULL;
	return bsearch(name, b->names, b->n_names, sizeof *b->names, name_entry_key_cmp);
}

/* Take the change rows (already selected into res: id, name, txid) into b:
 * ids, distinct txids, and the distinct names that are valid owners.  Change
 * rows naming the apex, a name outside the zone or no name at all are
 * recorded in zonedist.rejected and only consumed.  On ZD_OK *names_literal
 * holds the text[] literal of the names to ask zone_rrs() for. */
static zd_err
changes_take(struct ra_batch *b, const PGresult *res, struct zd_buf *names_literal)
{
	size_t n = (size_t)PQntuples(res), n_cn = 0, n_texts = 0;
	struct change_name *cn = NULL;
	const char **texts = NULL;
	int64_t *txids = NULL;
	zd_err e = ZD_OK;

	if ((e = result_shape(b->ra, "select changes", res, 3)) != ZD_OK)
		return e;
	if (n == 0)
		return ZD_OK;
	cn = calloc(n, sizeof *cn);
	texts = calloc(n, sizeof *texts);
	txids = calloc(n, sizeof *txids);
	if (cn == NULL || texts == NULL || txids == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *text = PQgetisnull(res, (int)i, 1) ? NULL : PQgetvalue(res, (int)i, 1);
		const char *why = "change row has no name";
		ldns_rdf *name = NULL;
		int64_t id, txid;

		if ((e = value_i64(b->ra, "select changes", res, (int)i, 0, &id)) != ZD_OK ||
		    (e = value_i64(b->ra, "select changes", res, (int)i, 2, &txid)) != ZD_OK)
			goto out;
		if ((e = change_append(b, id, n)) != ZD_OK)
			goto out;
		txids[i] = txid;
		if (text != NULL) {
			e = ra_owner_parse(b->apex, text, &name, &why);
			if (e == ZD_OK) {
				cn[n_cn++] = (struct change_name){name, text, txid, i};
				texts[n_texts++] = text;
				continue;
			}
			if (e != ZD_EMALFORMED)
				goto out;
		}
		/* Consumed with the batch, but its name is not handed up. */
		if ((e = reject_change(b, id, text, why, txid)) != ZD_OK)
			goto out;
	}
	txids_set(b, txids, n);
	txids = NULL;

	/* Distinct names, each with the txid of its first change row. */
	if (n_cn > 0) {
		qsort(cn, n_cn, sizeof *cn, change_name_cmp);
		b->names = calloc(n_cn, sizeof *b->names);
		if (b->names == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n_cn; i++) {
			if (b->n_names > 0 &&
			    ldns_dname_compare(b->names[b->n_names - 1].name, cn[i].name) == 0)
				continue;
			struct name_entry *ne = &b->names[b->n_names];
			ne->rrs = ldns_rr_list_new();
			if (ne->rrs == NULL) {
				e = ZD_ENOMEM;
				goto out;
			}
			ne->name = cn[i].name;
			cn[i].name = NULL; /* ne owns it now */
			ne->txid = cn[i].txid;
			b->n_names++;
		}
	}

	/* The names as the registry wrote them, each text once. */
	qsort(texts, n_texts, sizeof *texts, text_cmp);
	e = zd_buf_append_u8(names_literal, '{');
	for (size_t i = 0, k = 0; e == ZD_OK && i < n_texts; i++) {
		if (i > 0 && strcmp(texts[i - 1], texts[i]) == 0)
			continue;
		e = text_array_append(names_literal, texts[i], k++ == 0);
	}
	if (e == ZD_OK)
		e = zd_buf_printf(names_literal, "}");
	if (e == ZD_ELIMIT)
		error_set(b->ra, "zone_rrs names", NULL, "names array too large");
out:
	if (cn != NULL) {
		for (size_t i = 0; i < n_cn; i++)
			ldns_rdf_deep_free(cn[i].name);
	}
	free(cn);
	free(texts);
	free(txids);
	return e;
}

/* Parse the zone_rrs rows (owner, type, ttl, rdata) of a batch into its
 * names; then check each name's records together. */
static zd_err
rows_take(struct ra_batch *b, const PGresult *res)
{
	size_t n = (size_t)PQntuples(res);
	zd_err e;

	if ((e = result_shape(b->ra, "zone_rrs", res, 4)) != ZD_OK)
		return e;
	if (n > RA_BATCH_ROWS_MAX) {
		error_limit(b->ra, "zone_rrs",
		            "more than %u rows for one batch; take fewer changes per batch",
		            RA_BATCH_ROWS_MAX);
		return ZD_ELIMIT;
	}
	for (size_t i = 0; i < n; i++) {
		const char *f[4], *why = NULL;
		struct name_entry *ne;
		ldns_rr *rr = NULL;

		for (int c = 0; c < 4; c++)
			f[c] = PQgetisnull(res, (int)i, c) ? NULL : PQgetvalue(res, (int)i, c);
		e = ra_row_parse(b->apex, f[0], f[1], f[2], f[3], &rr, &why);
		if (e == ZD_EMALFORMED) {
			/* The name's record set is incomplete: it is held below. */
			ldns_rdf *owner = NULL;
			const char *owner_why = NULL;
			if (f[0] != NULL &&
			    ra_owner_parse(b->apex, f[0], &owner, &owner_why) == ZD_OK) {
				if ((ne = name_find(b, owner)) != NULL)
					ne->unparsed++;
				ldns_rdf_deep_free(owner);
			}
			if ((e = reject_row(b, res, (int)i, why, first_txid(b))) != ZD_OK)
				return e;
			continue;
		}
		if (e != ZD_OK)
			return e;
		ne = name_find(b, ldns_rr_owner(rr));
		if (ne == NULL) {
			ldns_rr_free(rr);
			if ((e = reject_row(b, res, (int)i, "not requested", first_txid(b))) !=
			    ZD_OK)
				return e;
			continue;
		}
		if (ldns_rr_list_rr_count(ne->rrs) >= RA_NAME_RRS_MAX) {
			ldns_rr_free(rr);
			error_limit(b->ra, "zone_rrs", "more than %u records for one name",
			            RA_NAME_RRS_MAX);
			return ZD_ELIMIT;
		}
		if (!ldns_rr_list_push_rr(ne->rrs, rr)) { /* ne->rrs owns rr on success */
			ldns_rr_free(rr);
			return ZD_ENOMEM;
		}
	}
	/* A name with a row that is no valid record is not handed up: what
	 * the registry meant for it is unknown, and handing up the rest would
	 * remove records (a delegation losing its NS set) because of a typo.
	 * It keeps its published records until the registry fixes the row and
	 * touches the name again.  Duplicates and TTL mismatches below still
	 * leave a complete record set, so those names proceed. */
	size_t w = 0;
	for (size_t i = 0; i < b->n_names; i++) {
		struct name_entry *ne = &b->names[i];
		if (ne->unparsed > 0) {
			char *text = ldns_rdf2str(ne->name);
			zd_log(ZD_LOG_WARNING, "adapter", b->zone,
			       "%s keeps its published records: %zu of its registry rows are no "
			       "valid record (see zonedist.rejected)",
			       text ? text : "?", ne->unparsed);
			free(text);
			ldns_rdf_deep_free(ne->name);
			ldns_rr_list_deep_free(ne->rrs);
			continue;
		}
		b->names[w++] = *ne;
	}
	b->n_names = w;
	for (size_t i = 0; i < b->n_names; i++) {
		struct ra_reject *rej = NULL;
		size_t n_rej = 0;

		if ((e = ra_rrs_check(b->names[i].rrs, &rej, &n_rej)) != ZD_OK)
			return e;
		e = reject_rrs(b, rej, n_rej, b->names[i].txid);
		ra_rejects_free(rej, n_rej);
		if (e != ZD_OK)
			return e;
	}
	return ZD_OK;
}

zd_err
ra_batch_take(struct ra *ra, const char *zone, uint32_t max_changes, struct ra_batch **out)
{
	struct ra_batch *b = NULL;
	PGresult *res = NULL;
	struct zd_buf names, limit;
	const char *params[3];
	zd_err e;

	if (ra == NULL || zone == NULL || out == NULL || ra->batch_open)
		return ZD_EBUG;
	ra->error[0] = '\0';
	zd_buf_init(&names, ARRAY_LITERAL_MAX); /* bytes */
	zd_buf_init(&limit, 32);                /* bytes */
	if (max_changes > RA_BATCH_CHANGES_MAX) {
		error_limit(ra, "batch", "max_changes above %u", RA_BATCH_CHANGES_MAX);
		e = ZD_ELIMIT;
		goto out;
	}
	if ((e = batch_new(ra, zone, &b)) != ZD_OK)
		goto out;
	e = exec(ra, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, PGRES_COMMAND_OK,
	         NULL);
	if (e != ZD_OK)
		goto out;

	if ((e = zd_buf_printf(&limit, "%" PRIu32, max_changes)) != ZD_OK)
		goto out;
	params[0] = b->zone;
	params[1] = (const char *)limit.data;
	/* SKIP LOCKED: rows another instance holds are its batch, not ours. */
	e = exec(ra, "select changes",
	         "SELECT id, name, txid FROM zonedist.change WHERE zone = $1 "
	         "ORDER BY id LIMIT $2::bigint FOR UPDATE SKIP LOCKED",
	         2, params, PGRES_TUPLES_OK, &res);
	if (e != ZD_OK)
		goto out;
	if ((e = changes_take(b, res, &names)) != ZD_OK)
		goto out;
	PQclear(res);
	res = NULL;

	if (b->n_names > 0) {
		zd_buf_reset(&limit);
		if ((e = zd_buf_printf(&limit, "%u", RA_BATCH_ROWS_MAX + 1)) != ZD_OK)
			goto out;
		params[0] = b->zone;
		params[1] = (const char *)names.data;
		params[2] = (const char *)limit.data;
		e = exec(ra, "zone_rrs",
		         "SELECT owner, type, ttl, rdata FROM zonedist.zone_rrs($1, $2::text[]) "
		         "LIMIT $3::bigint",
		         3, params, PGRES_TUPLES_OK, &res);
		if (e != ZD_OK)
			goto out;
		if ((e = rows_take(b, res)) != ZD_OK)
			goto out;
	}
	*out = b;
	b = NULL;
	e = ZD_OK;
out:
	PQclear(res);
	if (b != NULL) {
		rollback(ra);
		batch_free(b);
	}
	zd_buf_clear(&names);
	zd_buf_clear(&limit);
	return e;
}

size_t
ra_batch_changes_get(const struct ra_batch *b)
{
	return b != NULL ? b->n_changes : 0;
}

size_t
ra_batch_names_get(const struct ra_batch *b)
{
	return b != NULL ? b->n_names : 0;
}

const ldns_rdf *
ra_batch_name_get(const struct ra_batch *b, size_t i)
{
	return b != NULL && i < b->n_names ? b->names[i].name : NULL;
}

const ldns_rr_list *
ra_batch_name_rrs_get(const struct ra_batch *b, size_t i)
{
	return b != NULL && i < b->n_names ? b->names[i].rrs : NULL;
}

const int64_t *
ra_batch_change_ids_get(const struct ra_batch *b, size_t *n)
{
	if (n != NULL)
		*n = b != NULL ? b->n_changes : 0;
	return b != NULL ? b->change_ids : NULL;
}

const int64_t *
ra_batch_txids_get(const struct ra_batch *b, size_t *n)
{
	if (n != NULL)
		*n = b != NULL ? b->n_txids : 0;
	return b != NULL ? b->txids : NULL;
}

size_t
ra_batch_rejected_get(const struct ra_batch *b)
{
	return b != NULL ? b->n_rejected : 0;
}

PGconn *
ra_batch_conn_get(struct ra_batch *b)
{
	return b != NULL ? b->ra->conn : NULL;
}

zd_err
ra_batch_commit(struct ra_batch **bp)
{
	struct ra_batch *b;
	struct ra *ra;
	PGresult *res = NULL;
	struct zd_buf ids;
	uint64_t deleted = 0;
	zd_err e = ZD_OK;

	if (bp == NULL || *bp == NULL)
		return ZD_EBUG;
	b = *bp;
	*bp = NULL;
	ra = b->ra;
	ra->error[0] = '\0';
	zd_buf_init(&ids, ARRAY_LITERAL_MAX); /* bytes */
	if (b->failed) {
		error_set(ra, "commit", NULL, "the batch failed earlier; abort it");
		e = ZD_EBUG;
		goto out;
	}
	if (connected(ra) && PQtransactionStatus(ra->conn) != PQTRANS_INTRANS) {
		/* A statement of the caller's failed (INERROR), or the transaction
		 * was ended through ra_batch_conn_get(): COMMIT would not commit. */
		error_set(ra, "commit", NULL, "the batch transaction is not open or has failed");
		e = ZD_EDB;
		goto out;
	}
	/* Delete the consumed outbox rows inside the journal's transaction:
	 * committed apart, a crash between the two would replay or lose a change. */
	for (size_t from = 0; from < b->n_changes; from += ID_CHUNK) {
		size_t n = b->n_changes - from < ID_CHUNK ? b->n_changes - from : ID_CHUNK;
		const char *params[1];
		uint64_t got = 0;

		zd_buf_reset(&ids);
		if ((e = id_array_build(b->change_ids + from, n, &ids)) != ZD_OK)
			goto out;
		params[0] = (const char *)ids.data;
		e = exec(ra, "delete changes",
		         "DELETE FROM zonedist.change WHERE id = ANY($1::bigint[])", 1, params,
		         PGRES_COMMAND_OK, &res);
		if (e != ZD_OK)
			goto out;
		if (zd_parse_u64(PQcmdTuples(res), 0, UINT64_MAX, &got) != ZD_OK)
			got = 0;
		deleted += got;
		PQclear(res);
		res = NULL;
	}
	if (deleted != b->n_changes) {
		/* They were locked FOR UPDATE since the batch began. */
		char msg[128];
		snprintf(msg, sizeof msg, "deleted %" PRIu64 " of %zu change rows", deleted,
		         b->n_changes);
		error_set(ra, "delete changes", NULL, msg);
		zd_check_failed(deleted == b->n_changes);
		e = ZD_EBUG;
		goto out;
	}
	e = exec(ra, "commit", "COMMIT", 0, NULL, PGRES_COMMAND_OK, &res);
	if (e != ZD_OK)
		goto out;
	/* A failed transaction answers COMMIT with ROLLBACK. */
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		error_set(ra, "commit", NULL, "the server rolled the batch back");
		e = ZD_EDB;
	}
out:
	PQclear(res);
	if (e != ZD_OK)
		rollback(ra);
	zd_buf_clear(&ids);
	batch_free(b);
	return e;
}

void
ra_batch_abort(struct ra_batch **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	rollback((*bp)->ra);
	batch_free(*bp);
	*bp = NULL;
}

/* ---- full load ---------------------------------------------------------- */

zd_err
ra_full_begin(struct ra *ra, const char *zone, struct ra_batch **out)
{
	struct ra_batch *b = NULL;
	PGresult *res = NULL;
	int64_t *txids = NULL;
	size_t n_txids = 0, cap_txids = 0;
	const char *params[1];
	char fetch_sql[64];
	zd_err e;

	if (ra == NULL || zone == NULL || out == NULL || ra->batch_open)
		return ZD_EBUG;
	ra->error[0] = '\0';
	if ((e = batch_new(ra, zone, &b)) != ZD_OK)
		return e;
	snprintf(fetch_sql, sizeof fetch_sql, "FETCH FORWARD %u FROM zd_changes", CHANGE_FETCH);
	b->full = 1;
	b->pending = ldns_rr_list_new();
	if (b->pending == NULL) {
		e = ZD_ENOMEM;
		goto out;
	}
	e = exec(ra, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, PGRES_COMMAND_OK,
	         NULL);
	if (e != ZD_OK)
		goto out;
	params[0] = b->zone;
	/* The first statement fixes the snapshot: the change rows locked here
	 * are exactly those whose effect zone_rrs() below already shows. */
	e = exec(ra, "declare changes",
	         "DECLARE zd_changes NO SCROLL CURSOR FOR SELECT id, txid FROM zonedist.change "
	         "WHERE zone = $1 ORDER BY id FOR UPDATE SKIP LOCKED",
	         1, params, PGRES_COMMAND_OK, NULL);
	if (e != ZD_OK)
		goto out;
	for (;;) {
		size_t n;

		e = exec(ra, "fetch changes", fetch_sql, 0, NULL, PGRES_TUPLES_OK, &res);
		if (e != ZD_OK)
			goto out;
		if ((e = result_shape(ra, "fetch changes", res, 2)) != ZD_OK)
			goto out;
		n = (size_t)PQntuples(res);
		if (b->n_changes + n > RA_FULL_CHANGES_MAX) {
			error_limit(ra, "full load",
			            "more than %u change rows waiting for the zone",
			            RA_FULL_CHANGES_MAX);
			e = ZD_ELIMIT;
			goto out;
		}
		if (n_txids + n > cap_txids) {
			size_t c = cap_txids ? cap_txids : CHANGE_FETCH;
			int64_t *p;
			while (c < n_txids + n)
				c *= 2;
			p = realloc(txids, c * sizeof *p);
			if (p == NULL) {
				e = ZD_ENOMEM;
				goto out;
			}
			txids = p;
			cap_txids = c;
		}
		for (size_t i = 0; i < n; i++) {
			int64_t id, txid;
			if ((e = value_i64(ra, "fetch changes", res, (int)i, 0, &id)) != ZD_OK ||
			    (e = value_i64(ra, "fetch changes", res, (int)i, 1, &txid)) != ZD_OK)
				goto out;
			if ((e = change_append(b, id, RA_FULL_CHANGES_MAX)) != ZD_OK)
				goto out;
			txids[n_txids++] = txid;
		}
		PQclear(res);
		res = NULL;
		if (n < CHANGE_FETCH)
			break;
	}
	txids_set(b, txids, n_txids);
	txids = NULL;
	e = exec(ra, "close changes", "CLOSE zd_changes", 0, NULL, PGRES_COMMAND_OK, NULL);
	if (e != ZD_OK)
		goto out;
	/* The zone for the COPY of ra_full_next(), which takes no parameters:
	 * a setting of this transaction, not SQL text. */
	e = exec(ra, "full load zone", "SELECT set_config('zonedist.full_load_zone', $1, true)", 1,
	         params, PGRES_TUPLES_OK, NULL);
	if (e != ZD_OK)
		goto out;
	if ((e = ra_owners_new(RA_FULL_BYTES_MAX, &b->owners)) != ZD_OK)
		goto out;
	zd_buf_init(&b->deferred, DEFERRED_MAX);
	*out = b;
	b = NULL;
out:
	PQclear(res);
	free(txids);
	if (b != NULL) {
		rollback(ra);
		batch_free(b);
	}
	return e;
}

/* Check the held-back records of one owner and move the good ones to out
 * (out owns them).  pending is empty afterwards, also on failure. */
static zd_err
pending_flush(struct ra_batch *b, ldns_rr_list *out)
{
	struct ra_reject *rej = NULL;
	size_t n_rej = 0, n;
	int64_t txid = first_txid(b);
	zd_err e;

	if (ldns_rr_list_rr_count(b->pending) == 0)
		return ZD_OK;
	e = ra_rrs_check(b->pending, &rej, &n_rej);
	if (e == ZD_OK) {
		e = reject_rrs(b, rej, n_rej, txid);
		ra_rejects_free(rej, n_rej);
	}
	n = ldns_rr_list_rr_count(b->pending);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(b->pending, i);
		if (e != ZD_OK || !ldns_rr_list_push_rr(out, rr)) { /* out owns rr on success */
			ldns_rr_free(rr);
			if (e == ZD_OK)
				e = ZD_ENOMEM;
		}
	}
	ldns_rr_list_set_rr_count(b->pending, 0);
	return e;
}

/* A row rejected while COPY runs (no other statement can run then), kept
 * until it is done: per field a u8 (1: NULL) and the text, cut like
 * reject_fields() cuts it, with its NUL; then the static reason's pointer. */
static zd_err
deferred_add(struct ra_batch *b, const char *const f[4], const char *why)
{
	size_t orig = b->deferred.len;
	zd_err e = ZD_OK;

	for (int c = 0; e == ZD_OK && c < 4; c++) {
		e = zd_buf_append_u8(&b->deferred, f[c] == NULL);
		if (e == ZD_OK && f[c] != NULL)
			e = zd_buf_append(&b->deferred, f[c],
			                  utf8_cut(f[c], strlen(f[c]), field_max[c]));
		if (e == ZD_OK)
			e = zd_buf_append_u8(&b->deferred, '\0');
	}
	if (e == ZD_OK)
		e = zd_buf_append(&b->deferred, &why, sizeof why);
	if (e != ZD_OK) {
		b->deferred.len = orig;
		if (e == ZD_ELIMIT)
			error_limit(b->ra, "full load", "more than %u bytes of rejected rows",
			            DEFERRED_MAX);
	}
	return e;
}

/* Send the deferred rejects to zonedist.rejected. */
static zd_err
deferred_flush(struct ra_batch *b)
{
	const uint8_t *p = b->deferred.data, *end = p + b->deferred.len;
	zd_err e = ZD_OK;

	while (e == ZD_OK && p < end) {
		const char *f[4], *why;
		for (int c = 0; c < 4; c++) {
			int null = *p++;
			f[c] = null ? NULL : (const char *)p;
			p += strlen((const char *)p) + 1;
		}
		memcpy(&why, p, sizeof why);
		p += sizeof why;
		e = reject_fields(b, f, why, first_txid(b));
	}
	zd_buf_clear(&b->deferred);
	return e;
}

/* One COPY row: parse it and keep the record under its owner, or defer its
 * reject.  text: room for the four fields with their NULs. */
static zd_err
copy_row(struct ra_batch *b, const struct ra_copy_field *cf, struct zd_buf *text)
{
	const char *f[4], *why = NULL;
	size_t at[4];
	ldns_rr *rr = NULL;
	zd_err e = ZD_OK;

	zd_buf_reset(text);
	for (int c = 0; c < 4 && e == ZD_OK; c++) {
		at[c] = text->len;
		if (cf[c].p != NULL && memchr(cf[c].p, '\0', cf[c].len) != NULL)
			why = "NUL byte in a field";
		if (cf[c].p != NULL)
			e = zd_buf_append(text, cf[c].p, cf[c].len);
		if (e == ZD_OK)
			e = zd_buf_append_u8(text, '\0');
	}
	if (e != ZD_OK)
		return e;
	for (int c = 0; c < 4; c++)
		f[c] = cf[c].p != NULL ? (const char *)text->data + at[c] : NULL;
	if (why == NULL)
		e = ra_row_parse(b->apex, f[0], f[1], f[2], f[3], &rr, &why);
	else
		e = ZD_EMALFORMED;
	if (e == ZD_EMALFORMED)
		return deferred_add(b, f, why);
	if (e != ZD_OK)
		return e;
	e = ra_owners_add(b->owners, rr);
	ldns_rr_free(rr);
	if (e == ZD_ELIMIT)
		error_limit(b->ra, "full load", "the zone's records need more than %zu bytes",
		            (size_t)RA_FULL_BYTES_MAX);
	return e;
}

/* Parse the items in p[0..n), keeping the rows; *used: bytes taken (a
 * partial item stays).  *end once the trailer is seen. */
static zd_err
copy_items(struct ra_batch *b, const uint8_t *p, size_t n, int *header_seen, int *end, size_t *used,
           struct zd_buf *text)
{
	size_t pos = 0;
	zd_err e = ZD_OK;

	while (e == ZD_OK && pos < n && !*end) {
		struct ra_copy_field f[4];
		enum ra_copy_kind kind;
		size_t k;
		if ((e = ra_copy_next(p + pos, n - pos, *header_seen, 4, f, &k, &kind)) != ZD_OK) {
			error_set(b->ra, "full load", NULL, "the COPY stream does not parse");
			break;
		}
		if (kind == RA_COPY_MORE)
			break;
		pos += k;
		if (kind == RA_COPY_HEADER)
			*header_seen = 1;
		else if (kind == RA_COPY_END)
			*end = 1;
		else
			e = copy_row(b, f, text);
	}
	*used = pos;
	return e;
}

/* After a failure inside COPY: ask the server to stop and read what is left,
 * so the connection takes a ROLLBACK again; else it counts as broken. */
static void
copy_abandon(struct ra *ra)
{
	PGcancel *cancel = PQgetCancel(ra->conn);
	char buf[256];
	char *data;
	int n;
	PGresult *res;

	if (cancel != NULL) {
		(void)PQcancel(cancel, buf, sizeof buf);
		PQfreeCancel(cancel);
	}
	while ((n = PQgetCopyData(ra->conn, &data, 0)) > 0)
		PQfreemem(data);
	if (n == -2)
		ra->broken = 1;
	while ((res = PQgetResult(ra->conn)) != NULL)
		PQclear(res);
	conn_check(ra);
}

/* Keep the start of a row a message ended in. */
static zd_err
carry_append(struct ra *ra, struct zd_buf *carry, const char *p, size_t n)
{
	zd_err e = zd_buf_append(carry, p, n);
	if (e == ZD_ELIMIT)
		error_set(ra, "full load", NULL, "a row of the COPY stream is too large");
	return e;
}

/* Read the whole zone: COPY of zone_rrs(zone, NULL), unsorted, so the rows
 * stream while the database still produces them (a cursor runs without
 * parallel workers, and an ORDER BY makes the first row wait for a sort of
 * the whole zone).  Every record goes to b->owners; rejects are deferred. */
static zd_err
full_read(struct ra_batch *b)
{
	struct ra *ra = b->ra;
	struct zd_buf carry, text;
	int header_seen = 0, end = 0, first = 1, n;
	uint64_t t0 = zd_now_ms(), tc = 0;
	PGresult *res;
	zd_err e;

	e = exec(ra, "copy zone_rrs",
	         "COPY (SELECT owner::text, type::text, ttl::text, rdata::text FROM "
	         "zonedist.zone_rrs(current_setting('zonedist.full_load_zone'), NULL::text[])) "
	         "TO STDOUT (FORMAT binary)",
	         0, NULL, PGRES_COPY_OUT, NULL);
	if (e != ZD_OK)
		return e;
	zd_buf_init(&carry, 4 * RA_COPY_FIELD_MAX + 64); /* bytes: one partial row */
	zd_buf_init(&text, 4 * RA_COPY_FIELD_MAX + 8);   /* bytes: four fields, NULs */
	for (;;) {
		char *data;
		size_t used;
		uint64_t tw = zd_now_ms();
		n = PQgetCopyData(ra->conn, &data, 0);
		uint64_t tr = zd_now_ms();
		b->fetch_ms += tr - tw;
		if (n < 0)
			break;
		if (first)
			b->first_ms = tr - t0;
		first = 0;
		if (carry.len == 0) {
			e = copy_items(b, (const uint8_t *)data, (size_t)n, &header_seen, &end,
			               &used, &text);
			if (e == ZD_OK && used < (size_t)n)
				e = carry_append(ra, &carry, data + used, (size_t)n - used);
		} else {
			e = carry_append(ra, &carry, data, (size_t)n);
			if (e == ZD_OK)
				e = copy_items(b, carry.data, carry.len, &header_seen, &end, &used,
				               &text);
			if (e == ZD_OK) {
				memmove(carry.data, carry.data + used, carry.len - used);
				carry.len -= used;
			}
		}
		PQfreemem(data);
		tc += zd_now_ms() - tr;
		if (e == ZD_OK && end && carry.len > 0) {
			error_set(ra, "full load", NULL, "bytes after the end of the COPY stream");
			e = ZD_EMALFORMED;
		}
		if (e != ZD_OK) {
			copy_abandon(ra);
			goto out;
		}
	}
	b->check_ms += tc;
	if (n == -2) {
		error_set(ra, "copy zone_rrs", NULL, PQerrorMessage(ra->conn));
		conn_check(ra);
		e = ZD_EDB;
		goto out;
	}
	/* the COPY's own outcome: an error in the query ends the stream early */
	res = PQgetResult(ra->conn);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		error_set(ra, "copy zone_rrs",
		          res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL,
		          primary ? primary : PQerrorMessage(ra->conn));
		e = ZD_EDB;
	}
	PQclear(res);
	while ((res = PQgetResult(ra->conn)) != NULL)
		PQclear(res);
	conn_check(ra);
	if (e == ZD_OK && (!end || carry.len > 0)) {
		error_set(ra, "full load", NULL, "the COPY stream ended early");
		e = ZD_EMALFORMED;
	}
out:
	zd_buf_clear(&carry);
	zd_buf_clear(&text);
	return e;
}

zd_err
ra_full_next(struct ra_batch *b, size_t max, ldns_rr_list *out, int *done)
{
	struct ra *ra;
	size_t orig, names;
	zd_err e = ZD_OK;

	if (b == NULL || out == NULL || done == NULL || !b->full || b->failed)
		return ZD_EBUG;
	ra = b->ra;
	if (max == 0 || max > RA_FETCH_MAX) {
		error_limit(ra, "full load", "rows per fetch must be 1..%u", RA_FETCH_MAX);
		return ZD_ELIMIT;
	}
	if (b->handed_up) {
		*done = 1;
		return ZD_OK;
	}
	orig = ldns_rr_list_rr_count(out);
	if (!b->copy_done) {
		if ((e = full_read(b)) != ZD_OK)
			goto out;
		b->copy_done = 1;
		if ((e = deferred_flush(b)) != ZD_OK)
			goto out;
		/* canonical order: the store's tree then fills along one path */
		uint64_t ts = zd_now_ms();
		if ((e = ra_owners_sort(b->owners)) != ZD_OK)
			goto out;
		b->check_ms += zd_now_ms() - ts;
	}
	uint64_t t0 = zd_now_ms();
	names = ra_owners_names(b->owners);
	while (b->next_owner < names && ldns_rr_list_rr_count(out) - orig < max) {
		if (ra_owners_count(b->owners, b->next_owner) > RA_NAME_RRS_MAX) {
			error_limit(ra, "full load", "more than %u records for one name",
			            RA_NAME_RRS_MAX);
			e = ZD_ELIMIT;
			goto out;
		}
		if ((e = ra_owners_take(b->owners, b->next_owner, b->pending)) != ZD_OK ||
		    (e = pending_flush(b, out)) != ZD_OK)
			goto out;
		b->next_owner++;
	}
	if (b->next_owner == names) {
		ra_owners_free(b->owners); /* the zone's rows are all handed up */
		b->owners = NULL;
		b->handed_up = 1;
	}
	*done = b->handed_up;
	b->check_ms += zd_now_ms() - t0;
out:
	if (e != ZD_OK) {
		/* Rows were consumed: this batch can only be aborted now. */
		b->failed = 1;
		for (size_t i = orig; i < ldns_rr_list_rr_count(out); i++)
			ldns_rr_free(ldns_rr_list_rr(out, i));
		ldns_rr_list_set_rr_count(out, orig);
	}
	return e;
}

void
ra_full_times_get(const struct ra_batch *b, uint64_t *first_ms, uint64_t *fetch_ms,
                  uint64_t *check_ms)
{
	*first_ms = b->first_ms;
	*fetch_ms = b->fetch_ms;
	*check_ms = b->check_ms;
}
