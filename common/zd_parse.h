/* common/zd_parse.h -- checked conversions of untrusted text to numbers and
 * addresses.  Threads: any.  No locale, no partial results: the whole string
 * must be the value. */
#ifndef ZD_PARSE_H
#define ZD_PARSE_H

#include <stdint.h>
#include <sys/socket.h>

#include "zd_err.h"

/* Decimal, no sign, no spaces, value in [min, max]. */
zd_err zd_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
zd_err zd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Hex digits s[0..n) (either case, an even number, at least two) into
 * out[0..cap): ZD_EMALFORMED for anything else, ZD_ELIMIT when more than cap
 * bytes; on ZD_OK *len bytes were written. */
zd_err zd_hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len);

/* "addr", "addr@port", "addr#port" or "[v6]:port"; IPv4 or IPv6; port
 * defaults to default_port. */
zd_err zd_parse_sockaddr(const char *s, uint16_t default_port, struct sockaddr_storage *out,
                         socklen_t *len_out);

/* "addr/len" (len optional: full length). */
struct zd_prefix {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t len; /* bits */
};
zd_err zd_parse_prefix(const char *s, struct zd_prefix *out);
/* 1 when the address is inside the prefix. */
int zd_prefix_match(const struct zd_prefix *p, const struct sockaddr *sa);

/* "127.0.0.1#5300" style text for logs; never fails (writes "?" on odd input). */
void zd_sockaddr_str(const struct sockaddr *sa, char *out, size_t outlen);

#define ZD_TOKEN_MAX 4096
/* A secret token from a file: its content without surrounding white space,
 * min_len..ZD_TOKEN_MAX printable ASCII characters (no spaces).  On ZD_OK
 * *out is new (free() it after explicit_bzero()); otherwise why says what
 * is wrong (ZD_EIO: cannot be read; ZD_EMALFORMED: not such a token). */
zd_err zd_token_read(const char *path, size_t min_len, char **out, char *why, size_t whylen);

/* Canonical sort key of a wire-form name (RFC 4034 s6.1): labels from the
 * root down, each lower-cased and terminated by 0x00; octets 0x00 and 0x01
 * inside a label are escaped as 0x01 0x01 and 0x01 0x02, so that memcmp,
 * shorter first when one is a prefix of the other, gives canonical order.
 * key: room for ZD_NAME_KEY_MAX octets.  ZD_EMALFORMED when wire is no
 * wire-form name of at most 255 octets. */
#define ZD_NAME_KEY_MAX 512
zd_err zd_name_key(const uint8_t *wire, size_t wirelen, uint8_t *key, uint16_t *keylen);

/* 1 when the wire-form name (len octets) lies strictly below parent (plen
 * octets), ASCII case ignored (RFC 4343); else 0, also when either is no
 * wire-form name.  No allocation: for loops over every name of a zone. */
int zd_name_is_below(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen);
#endif
