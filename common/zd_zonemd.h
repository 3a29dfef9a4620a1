/* common/zd_zonemd.h -- records in canonical wire form and order, and the
 * zone digest computed over them (ZONEMD, SIMPLE scheme, SHA-384).
 *
 * zonedistd digests a version from its store; zonedist-check digests what a
 * secondary sent; both feed the same function, so equal digests mean equal
 * record sets.  The digest is the one a ZONEMD record carries (ldns and
 * ldns-verify-zone -Z accept it; a unit test checks that).
 *
 * Threads: a digest has one owner; the record functions are pure.
 * Limits: a canonical record <= 65535 + 255 + 10 bytes.
 * Standards: RFC 4034 s6.1-6.3 (canonical name order, form, RR order; the
 * rdata types whose names are lower-cased as RFC 6840 s5.1 says),
 * RFC 8976 s3 (SIMPLE scheme: records sorted by owner, class, type, rdata;
 * duplicates once; the apex ZONEMD RRset and its RRSIGs left out). */
#ifndef ZD_ZONEMD_H
#define ZD_ZONEMD_H

#include <ldns/ldns.h>
#include <stddef.h>
#include <stdint.h>

#include "zd_buf.h"
#include "zd_err.h"

#define ZD_ZONEMD_SIMPLE 1
#define ZD_ZONEMD_SHA384 1
#define ZD_ZONEMD_LEN    48

/* One record in canonical wire form: owner | type | class | ttl | rdlength |
 * rdata, names lower case, nothing compressed.  Borrowed bytes. */
struct zd_crr {
	const uint8_t *wire;
	uint32_t len;
	uint16_t owner_len;
};

/* Append rr's canonical wire form to b; *owner_len gets the owner's length.
 * ZD_EMALFORMED when ldns cannot write it; ZD_ELIMIT past b's cap. */
zd_err zd_crr_append(const ldns_rr *rr, struct zd_buf *b, uint16_t *owner_len);

/* Check untrusted bytes: one whole canonical record (owner, fixed fields,
 * rdlength matching the rest).  On ZD_OK *out borrows wire. */
zd_err zd_crr_parse(const uint8_t *wire, size_t len, struct zd_crr *out);

uint16_t zd_crr_type_get(const struct zd_crr *r);
uint16_t zd_crr_class_get(const struct zd_crr *r);
uint32_t zd_crr_ttl_get(const struct zd_crr *r);
/* Borrowed: the rdata and its length. */
const uint8_t *zd_crr_rdata_get(const struct zd_crr *r, uint16_t *len);
/* The type an RRSIG covers; 0 for any other type or a short RRSIG. */
uint16_t zd_crr_covered_get(const struct zd_crr *r);

/* Canonical order (RFC 8976 s3.3.1.1): owner, class, type, rdata; the TTL is
 * not compared, so 0 means "the same record". */
int zd_crr_cmp(const struct zd_crr *a, const struct zd_crr *b);
/* Owner names only. */
int zd_crr_owner_cmp(const struct zd_crr *a, const struct zd_crr *b);

/* Sort n records in canonical order and fold duplicates (the first of equal
 * records stays); *n_out gets the count left. */
void zd_crr_sort(struct zd_crr *rrs, size_t n, size_t *n_out);

/* --- The digest ------------------------------------------------------- */

struct zd_zonemd;

/* apex borrowed (copied).  On ZD_OK *out is new (zd_zonemd_free()). */
zd_err zd_zonemd_new(const ldns_rdf *apex, struct zd_zonemd **out);
void zd_zonemd_free(struct zd_zonemd *z);

/* The next record, in canonical order: a record equal to the one before is
 * skipped (counted once), the apex ZONEMD RRset and the apex RRSIGs covering
 * ZONEMD are left out.  ZD_EBUG when r sorts before the previous record (the
 * caller did not sort). */
zd_err zd_zonemd_add(struct zd_zonemd *z, const struct zd_crr *r);

/* One owner name's records, in any order, duplicates allowed: put in
 * canonical form, sorted and added.  Names must come in canonical order. */
zd_err zd_zonemd_name_add(struct zd_zonemd *z, const ldns_rr *const *rrs, size_t n);

/* One owner name's records gathered in canonical form (a walk that hands
 * out records one at a time), to be digested together. */
struct zd_crr_list {
	struct zd_buf bytes;
	size_t *offs;
	uint16_t *olens;
	struct zd_crr *view;
	size_t n, alloc;
};
void zd_crr_list_init(struct zd_crr_list *l);
void zd_crr_list_reset(struct zd_crr_list *l); /* empty, keeps the storage */
void zd_crr_list_clear(struct zd_crr_list *l); /* frees */
/* Append rr (borrowed) in canonical form. */
zd_err zd_crr_list_add(struct zd_crr_list *l, const ldns_rr *rr);
/* Sort, fold and add every record of l (one owner name) to z; l is reset. */
zd_err zd_zonemd_list_add(struct zd_zonemd *z, struct zd_crr_list *l);

/* The SHA-384 digest of everything added; the digest cannot be added to
 * afterwards. */
zd_err zd_zonemd_final(struct zd_zonemd *z, uint8_t out[ZD_ZONEMD_LEN]);

/* Records hashed so far (duplicates and ZONEMD left out). */
uint64_t zd_zonemd_count_get(const struct zd_zonemd *z);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void zd_hex_encode(const uint8_t *p, size_t len, char *out);

#endif
