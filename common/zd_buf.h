/* common/zd_buf.h -- a growable byte buffer with a hard cap.
 * Threads: one owner.  Limits: never grows past cap bytes (ZD_ELIMIT). */
#ifndef ZD_BUF_H
#define ZD_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "zd_err.h"

struct zd_buf {
	uint8_t *data;
	size_t len;
	size_t alloc;
	size_t cap; /* bytes; the most this buffer may ever hold */
};

void zd_buf_init(struct zd_buf *b, size_t cap);
void zd_buf_clear(struct zd_buf *b); /* frees the storage */
void zd_buf_reset(struct zd_buf *b); /* len = 0, keeps the storage */
/* All or nothing: on failure b is unchanged. */
zd_err zd_buf_append(struct zd_buf *b, const void *p, size_t n);
zd_err zd_buf_append_u8(struct zd_buf *b, uint8_t v);
zd_err zd_buf_append_u16(struct zd_buf *b, uint16_t v); /* network order */
zd_err zd_buf_append_u32(struct zd_buf *b, uint32_t v); /* network order */
/* Formatted text, without the terminating NUL counted in len (one is kept after it). */
zd_err zd_buf_printf(struct zd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Make room for n more bytes. */
zd_err zd_buf_reserve(struct zd_buf *b, size_t n);

/* Bounded reader over untrusted bytes: every get fails with ZD_EMALFORMED
 * instead of reading past the end, and leaves the position where it was. */
struct zd_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};
void zd_rd_init(struct zd_rd *r, const uint8_t *p, size_t len);
zd_err zd_rd_u8(struct zd_rd *r, uint8_t *out);
zd_err zd_rd_u16(struct zd_rd *r, uint16_t *out);
zd_err zd_rd_u32(struct zd_rd *r, uint32_t *out);
zd_err zd_rd_u64(struct zd_rd *r, uint64_t *out);
/* Borrowed: *out points into the reader's bytes. */
zd_err zd_rd_bytes(struct zd_rd *r, size_t n, const uint8_t **out);
size_t zd_rd_left(const struct zd_rd *r);

/* Append "{1,2,3}" and a NUL: a PostgreSQL bigint[] literal (numbers only,
 * no quoting). */
zd_err zd_buf_int_array(struct zd_buf *b, const int64_t *v, size_t n);

#endif
