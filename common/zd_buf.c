#include "zd_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void
zd_buf_init(struct zd_buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

void
zd_buf_clear(struct zd_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

void
zd_buf_reset(struct zd_buf *b)
{
	b->len = 0;
}

zd_err
zd_buf_reserve(struct zd_buf *b, size_t n)
{
	size_t want, grow;
	uint8_t *p;

	if (n > b->cap || b->len > b->cap - n)
		return ZD_ELIMIT;
	want = b->len + n;
	if (want <= b->alloc)
		return ZD_OK;
	grow = b->alloc < 64 ? 64 : b->alloc;
	while (grow < want)
		grow = grow > SIZE_MAX / 2 ? want : grow * 2;
	if (grow > b->cap)
		grow = b->cap;
	p = realloc(b->data, grow);
	if (p == NULL)
		return ZD_ENOMEM;
	b->data = p;
	b->alloc = grow;
	return ZD_OK;
}

zd_err
zd_buf_append(struct zd_buf *b, const void *p, size_t n)
{
	zd_err e;

	if (n == 0)
		return ZD_OK;
	if ((e = zd_buf_reserve(b, n)) != ZD_OK)
		return e;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return ZD_OK;
}

zd_err
zd_buf_append_u8(struct zd_buf *b, uint8_t v)
{
	return zd_buf_append(b, &v, 1);
}

zd_err
zd_buf_append_u16(struct zd_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return zd_buf_append(b, x, 2);
}

zd_err
zd_buf_append_u32(struct zd_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return zd_buf_append(b, x, 4);
}

zd_err
zd_buf_printf(struct zd_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	zd_err e;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ZD_EBUG;
	if ((e = zd_buf_reserve(b, (size_t)n + 1)) != ZD_OK)
		return e;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return ZD_OK;
}

void
zd_rd_init(struct zd_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
}

size_t
zd_rd_left(const struct zd_rd *r)
{
	return r->len - r->pos;
}

zd_err
zd_rd_bytes(struct zd_rd *r, size_t n, const uint8_t **out)
{
	if (n > zd_rd_left(r))
		return ZD_EMALFORMED;
	*out = r->p + r->pos;
	r->pos += n;
	return ZD_OK;
}

zd_err
zd_rd_u8(struct zd_rd *r, uint8_t *out)
{
	const uint8_t *p;
	if (zd_rd_bytes(r, 1, &p) != ZD_OK)
		return ZD_EMALFORMED;
	*out = p[0];
	return ZD_OK;
}

zd_err
zd_rd_u16(struct zd_rd *r, uint16_t *out)
{
	const uint8_t *p;
	if (zd_rd_bytes(r, 2, &p) != ZD_OK)
		return ZD_EMALFORMED;
	*out = (uint16_t)(p[0] << 8 | p[1]);
	return ZD_OK;
}

zd_err
zd_rd_u32(struct zd_rd *r, uint32_t *out)
{
	const uint8_t *p;
	if (zd_rd_bytes(r, 4, &p) != ZD_OK)
		return ZD_EMALFORMED;
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return ZD_OK;
}

zd_err
zd_rd_u64(struct zd_rd *r, uint64_t *out)
{
	uint32_t hi, lo;
	size_t save = r->pos;
	if (zd_rd_u32(r, &hi) != ZD_OK || zd_rd_u32(r, &lo) != ZD_OK) {
		r->pos = save;
		return ZD_EMALFORMED;
	}
	*out = (uint64_t)hi << 32 | lo;
	return ZD_OK;
}

zd_err
zd_buf_int_array(struct zd_buf *b, const int64_t *v, size_t n)
{
	zd_err e = zd_buf_append(b, "{", 1);
	for (size_t i = 0; e == ZD_OK && i < n; i++)
		e = zd_buf_printf(b, "%s%" PRId64, i ? "," : "", v[i]);
	if (e == ZD_OK)
		e = zd_buf_append(b, "}", 2); /* with the NUL */
	return e;
}
