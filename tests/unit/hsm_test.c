/* Unit tests of hsm/: a throwaway SoftHSM token made through PKCS#11 in a
 * temporary directory (SOFTHSM2_CONF set before the module loads), then
 * failure paths (module, label, PIN), each algorithm generated, found again
 * by CKA_ID in a new instance, its DNSKEY and signatures checked by paths
 * that share nothing with the signer (ldns, OpenSSL through hsm/verify.c,
 * and PKCS#11 attributes read directly), concurrent signing, the key-tag
 * collision guard, and a token that disappears and comes back.
 * ZD_PKCS11_MODULE overrides the module path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "common/zd_err.h"
#include "hsm/dnskey.h"
#include "hsm/hsm.h"
#include "hsm/rv.h"
#include "hsm/token_init.h"
#include "hsm/verify.h"

/* After everything else: p11-kit's compat header #defines common words. */
#include <p11-kit/pkcs11.h>

#define TOKEN    "zd-unit"
#define SO_PIN   "so-pin-8765"
#define USER_PIN "user-pin-4321"
#define TOKEN_B  "zd-unit-b" /* the backup token */
#define WRAP_KEY "zd-unit-wrap"

static char dir[PATH_MAX];      /* temporary; removed at the end */
static char pin_path[PATH_MAX]; /* holds USER_PIN and a newline */
static char tokens[PATH_MAX];   /* SoftHSM's token directory */
static const char *module;      /* the PKCS#11 module under test */

/* SoftHSM 2.6.1 leaks a decoded ASN.1 object in every Ed25519 C_SignInit
 * (OSSL::byteString2oid; fixed upstream by SoftHSMv2 pull requests 858 and
 * 863).  Only leaks allocated inside the module are suppressed; full
 * unwinding is needed to see the module's frames under libcrypto's. */
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

/* ---- helpers ---- */

static void
file_write(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static void
path_join(char *out, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert_true(n > 0 && n < PATH_MAX);
}

static int
group_setup(void **state)
{
	char err[512];
	const char *tmp = getenv("TMPDIR");
	(void)state;
	module = getenv("ZD_PKCS11_MODULE") ? getenv("ZD_PKCS11_MODULE") : HSM_MODULE_DEFAULT;
	snprintf(dir, sizeof dir, "%s/zd-hsm-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	path_join(pin_path, "user.pin");
	path_join(tokens, "tokens");
	file_write(pin_path, USER_PIN "\n");
	if (hsm_softhsm_setup(dir, err, sizeof err) != ZD_OK ||
	    hsm_token_init(module, TOKEN, SO_PIN, USER_PIN, err, sizeof err) != ZD_OK ||
	    hsm_token_init(module, TOKEN_B, SO_PIN, USER_PIN, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "# token setup failed: %s\n", err);
		return -1;
	}
	/* The twin tokens' wrapping key, installed by the SO before any user
	 * logs in (PKCS#11 allows one of them per token and application). */
	char so_path[PATH_MAX];
	uint8_t value[HSM_WRAPKEY_BYTES];
	path_join(so_path, "so.pin");
	file_write(so_path, SO_PIN "\n");
	memset(value, 0x5a, sizeof value);
	const char *labels[] = {TOKEN, TOKEN_B};
	for (int i = 0; i < 2; i++) {
		struct hsm_config cfg = {module, labels[i], so_path, NULL, 1};
		struct hsm *h = NULL;
		if (hsm_new(&cfg, &h) != ZD_OK || hsm_connect(h) != ZD_OK ||
		    hsm_wrapkey_install(h, WRAP_KEY, value) != ZD_OK ||
		    hsm_wrapkey_install(h, WRAP_KEY, value) != ZD_ELIMIT) {
			fprintf(stderr, "# wrapping key on %s: %s\n", labels[i],
			        h ? hsm_error_get(h) : "hsm_new");
			hsm_free(h);
			return -1;
		}
		hsm_free(h);
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (dir[0] != '\0')
		hsm_softhsm_remove(dir);
	return 0;
}

static struct hsm *
hsm_make(const char *mod, const char *label, const char *pin_file, const char *pin_env)
{
	struct hsm_config cfg = {mod, label, pin_file, pin_env, 0};
	struct hsm *h = NULL;
	assert_int_equal(hsm_new(&cfg, &h), ZD_OK);
	return h;
}

static struct hsm *
hsm_up(void)
{
	struct hsm *h = hsm_make(module, TOKEN, pin_path, NULL);
	zd_err e = hsm_connect(h);
	if (e != ZD_OK)
		fprintf(stderr, "# connect: %s\n", hsm_error_get(h));
	assert_int_equal(e, ZD_OK);
	assert_true(hsm_is_connected(h));
	assert_string_equal(hsm_error_get(h), "");
	return h;
}

static struct hsm_key *
key_make(struct hsm *h, uint8_t alg, uint16_t bits, const char *label)
{
	struct hsm_keyspec spec = {alg, bits, label, 0};
	struct hsm_key *k = NULL;
	zd_err e = hsm_key_generate(h, &spec, &k);
	if (e != ZD_OK)
		fprintf(stderr, "# generate %s: %s\n", label, hsm_error_get(h));
	assert_int_equal(e, ZD_OK);
	assert_non_null(k);
	return k;
}

static int
contains(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

/* Direct PKCS#11 access to the same module, to check what the token holds
 * without going through hsm/.  The library is initialised by hsm/ already;
 * this side never finalises it. */
struct raw {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE sh;
};

static void
raw_open(struct raw *r)
{
	CK_C_GetFunctionList get;
	CK_SLOT_ID slots[16];
	CK_ULONG nslots = 16;
	unsigned char want[32];

	r->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(r->dl);
	void *sym = dlsym(r->dl, "C_GetFunctionList");
	assert_non_null(sym);
	memcpy(&get, &sym, sizeof get);
	assert_int_equal(get(&r->f), CKR_OK);
	assert_int_equal(r->f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_int_equal(r->f->C_GetSlotList(CK_TRUE, slots, &nslots), CKR_OK);
	memset(want, ' ', sizeof want);
	memcpy(want, TOKEN, strlen(TOKEN));
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;
		if (r->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof want) == 0) {
			assert_int_equal(r->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL,
			                                     NULL, &r->sh),
			                 CKR_OK);
			return;
		}
	}
	fail_msg("token %s not found directly", TOKEN);
}

static void
raw_close(struct raw *r)
{
	r->f->C_CloseSession(r->sh);
	dlclose(r->dl);
}

/* The private key object with this CKA_ID, found directly. */
static CK_OBJECT_HANDLE
raw_private_key(struct raw *r, const uint8_t *id, size_t id_len)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof cls},
	        {CKA_ID, (void *)id, id_len},
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;
	assert_int_equal(r->f->C_FindObjectsInit(r->sh, tmpl, 2), CKR_OK);
	assert_int_equal(r->f->C_FindObjects(r->sh, objs, 2, &n), CKR_OK);
	assert_int_equal(r->f->C_FindObjectsFinal(r->sh), CKR_OK);
	assert_int_equal(n, 1);
	return objs[0];
}

/* The token's own answer about the private key of k: sensitive, never
 * extractable, generated inside, and its secret cannot be read. */
static void
raw_check_protected(const struct hsm_key *k)
{
	struct raw r;
	size_t id_len = 0;
	const uint8_t *id = hsm_key_id_get(k, &id_len);
	CK_BBOOL b[6];
	uint8_t secret[1024];

	raw_open(&r);
	CK_OBJECT_HANDLE priv = raw_private_key(&r, id, id_len);
	CK_ATTRIBUTE a[] = {
	        {CKA_SENSITIVE, &b[0], 1},
	        {CKA_EXTRACTABLE, &b[1], 1},
	        {CKA_ALWAYS_SENSITIVE, &b[2], 1},
	        {CKA_NEVER_EXTRACTABLE, &b[3], 1},
	        {CKA_TOKEN, &b[4], 1},
	        {CKA_SIGN, &b[5], 1},
	};
	assert_int_equal(r.f->C_GetAttributeValue(r.sh, priv, a, 6), CKR_OK);
	assert_int_equal(b[0], CK_TRUE);
	assert_int_equal(b[1], CK_FALSE);
	assert_int_equal(b[2], CK_TRUE);
	assert_int_equal(b[3], CK_TRUE);
	assert_int_equal(b[4], CK_TRUE);
	assert_int_equal(b[5], CK_TRUE);
	CK_ATTRIBUTE s = {hsm_key_alg_get(k) == HSM_ALG_RSASHA256 ? CKA_PRIVATE_EXPONENT
	                                                          : CKA_VALUE,
	                  secret, sizeof secret};
	CK_RV rv = r.f->C_GetAttributeValue(r.sh, priv, &s, 1);
	assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
	raw_close(&r);
}

/* A DNSKEY RR for ldns from k's RDATA. */
static ldns_rr *
ldns_dnskey(const struct hsm_key *k, uint16_t flags)
{
	uint8_t rdata[HSM_DNSKEY_RDATA_MAX];
	size_t len = 0;
	size_t pos = 0;
	ldns_rr *rr = NULL;
	assert_int_equal(hsm_key_dnskey_rdata(k, flags, rdata, sizeof rdata, &len), ZD_OK);
	/* "tld. 3600 IN DNSKEY" + RDATA in wire form, parsed by ldns */
	uint8_t wire[16 + HSM_DNSKEY_RDATA_MAX] = {3, 't', 'l', 'd', 0,    0,   48,
	                                           0, 1,   0,   0,   0x0e, 0x10};
	wire[13] = (uint8_t)(len >> 8);
	wire[14] = (uint8_t)len;
	memcpy(wire + 15, rdata, len);
	assert_int_equal(ldns_wire2rr(&rr, wire, 15 + len, &pos, LDNS_SECTION_ANSWER),
	                 LDNS_STATUS_OK);
	assert_int_equal(pos, 15 + len);
	return rr;
}

/* DNSKEY RDATA of k: our bytes survive ldns' parser and its text form, and
 * our key tag is ldns' key tag. */
static void
check_dnskey(const struct hsm_key *k)
{
	uint16_t flags[] = {HSM_DNSKEY_ZSK, HSM_DNSKEY_KSK};
	for (size_t i = 0; i < 2; i++) {
		uint8_t rdata[HSM_DNSKEY_RDATA_MAX];
		size_t len = 0, pub_len = 0;
		const uint8_t *pub = hsm_key_pubkey_get(k, &pub_len);
		assert_int_equal(hsm_key_dnskey_rdata(k, flags[i], rdata, sizeof rdata, &len),
		                 ZD_OK);
		assert_int_equal(len, 4 + pub_len);
		assert_int_equal(rdata[2], 3);
		assert_int_equal(rdata[3], hsm_key_alg_get(k));
		assert_memory_equal(rdata + 4, pub, pub_len);

		ldns_rr *rr = ldns_dnskey(k, flags[i]);
		assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_DNSKEY);
		assert_int_equal(ldns_calc_keytag(rr), hsm_key_tag_get(k, flags[i]));
		assert_int_equal(ldns_calc_keytag_raw(rdata, len), hsm_keytag_get(rdata, len));
		/* Text and back. */
		char *text = ldns_rr2str(rr);
		assert_non_null(text);
		ldns_rr *back = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&back, text, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_buffer *wire = ldns_buffer_new(1024);
		assert_int_equal(ldns_rr_rdata2buffer_wire(wire, back), LDNS_STATUS_OK);
		assert_int_equal(ldns_buffer_position(wire), len);
		assert_memory_equal(ldns_buffer_begin(wire), rdata, len);
		ldns_buffer_free(wire);
		ldns_rr_free(back);
		free(text);
		ldns_rr_free(rr);

		/* The verifier accepts exactly this public key field. */
		struct hsm_verify_key *vk = NULL;
		assert_int_equal(hsm_verify_key_new(hsm_key_alg_get(k), pub, pub_len, &vk), ZD_OK);
		hsm_verify_key_free(vk);
		assert_int_equal(hsm_pubkey_check(hsm_key_alg_get(k), pub, pub_len), ZD_OK);
	}
	/* KSK and ZSK tags differ by the SEP bit's weight. */
	assert_int_equal((uint16_t)(hsm_key_tag_get(k, HSM_DNSKEY_ZSK) + 1),
	                 hsm_key_tag_get(k, HSM_DNSKEY_KSK));
}

/* Sign with the token, verify with hsm/verify.c and with ldns, from the
 * public key field only; a flipped byte or other data must fail both. */
static void
check_sign_verify(struct hsm *h, const struct hsm_key *k)
{
	struct hsm_session *s = NULL;
	uint8_t data[300], sig[HSM_SIG_MAX];
	size_t siglen = sizeof sig, pub_len = 0;
	const uint8_t *pub = hsm_key_pubkey_get(k, &pub_len);
	char err[256];

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	zd_err e = hsm_sign(s, k, data, sizeof data, sig, &siglen);
	if (e != ZD_OK)
		fprintf(stderr, "# sign: %s\n", hsm_session_error_get(s));
	assert_int_equal(e, ZD_OK);
	assert_string_equal(hsm_session_error_get(s), "");
	assert_int_equal(siglen, hsm_key_siglen_get(k));
	assert_int_equal(
	        hsm_verify(hsm_key_alg_get(k), pub, pub_len, data, sizeof data, sig, siglen),
	        ZD_OK);

	/* ldns' raw verifier wants ECDSA signatures in DER; the RRSIG check
	 * (check_rrsig_with_ldns) covers r | s through ldns' own conversion. */
	int ldns_raw = hsm_key_alg_get(k) != HSM_ALG_ECDSAP256SHA256;
	ldns_buffer *buf = ldns_buffer_new(sizeof data);
	ldns_buffer_write(buf, data, sizeof data);
	if (ldns_raw)
		assert_int_equal(ldns_verify_rrsig_buffers_raw(sig, siglen, buf,
		                                               (unsigned char *)pub, pub_len,
		                                               hsm_key_alg_get(k)),
		                 LDNS_STATUS_OK);

	data[5] ^= 1;
	assert_int_equal(
	        hsm_verify(hsm_key_alg_get(k), pub, pub_len, data, sizeof data, sig, siglen),
	        ZD_EMALFORMED);
	data[5] ^= 1;
	sig[siglen / 2] ^= 0x40;
	assert_int_equal(
	        hsm_verify(hsm_key_alg_get(k), pub, pub_len, data, sizeof data, sig, siglen),
	        ZD_EMALFORMED);
	if (ldns_raw)
		assert_int_not_equal(ldns_verify_rrsig_buffers_raw(sig, siglen, buf,
		                                                   (unsigned char *)pub, pub_len,
		                                                   hsm_key_alg_get(k)),
		                     LDNS_STATUS_OK);
	sig[siglen / 2] ^= 0x40;
	assert_int_equal(
	        hsm_verify(hsm_key_alg_get(k), pub, pub_len, data, sizeof data, sig, siglen - 1),
	        ZD_EMALFORMED);
	ldns_buffer_free(buf);
	hsm_session_close(s);
}

/* A real RRSIG over a two-record A RRset: we build the signing input of RFC
 * 4034 s3.1.8.1 (RRSIG RDATA without the signature, then the canonical
 * RRs), the token signs it, and ldns validates the RRSIG against the DNSKEY
 * doing its own canonicalisation. */
static void
check_rrsig_with_ldns(struct hsm *h, const struct hsm_key *k)
{
	ldns_rr_list *rrset = ldns_rr_list_new();
	ldns_rr_list *keys = ldns_rr_list_new();
	ldns_rr *a1 = NULL, *a2 = NULL, *sigrr = NULL;
	struct hsm_session *s = NULL;
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen = sizeof sig;
	char text[512];
	char err[256];
	time_t now = time(NULL);

	assert_int_equal(
	        ldns_rr_new_frm_str(&a1, "Www.Example.TLD. 600 IN A 192.0.2.7", 0, NULL, NULL),
	        LDNS_STATUS_OK);
	assert_int_equal(
	        ldns_rr_new_frm_str(&a2, "www.example.tld. 600 IN A 192.0.2.1", 0, NULL, NULL),
	        LDNS_STATUS_OK);
	ldns_rr_list_push_rr(rrset, a1); /* rrset owns a1, a2 now */
	ldns_rr_list_push_rr(rrset, a2);
	/* Signature field "AA==" for now: ldns_rrsig2buffer_wire skips it. */
	snprintf(text, sizeof text, "www.example.tld. 600 IN RRSIG A %u 3 600 %lu %lu %u tld. AA==",
	         hsm_key_alg_get(k), (unsigned long)now + 86400, (unsigned long)now - 3600,
	         hsm_key_tag_get(k, HSM_DNSKEY_ZSK));
	assert_int_equal(ldns_rr_new_frm_str(&sigrr, text, 0, NULL, NULL), LDNS_STATUS_OK);

	ldns_buffer *input = ldns_buffer_new(1024);
	assert_int_equal(ldns_rrsig2buffer_wire(input, sigrr), LDNS_STATUS_OK);
	ldns_rr_list *canon = ldns_rr_list_clone(rrset);
	for (size_t i = 0; i < ldns_rr_list_rr_count(canon); i++)
		ldns_rr2canonical(ldns_rr_list_rr(canon, i));
	ldns_rr_list_sort(canon);
	for (size_t i = 0; i < ldns_rr_list_rr_count(canon); i++)
		assert_int_equal(ldns_rr2buffer_wire_canonical(input, ldns_rr_list_rr(canon, i),
		                                               LDNS_SECTION_ANSWER),
		                 LDNS_STATUS_OK);
	ldns_rr_list_deep_free(canon);

	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	assert_int_equal(
	        hsm_sign(s, k, ldns_buffer_begin(input), ldns_buffer_position(input), sig, &siglen),
	        ZD_OK);
	hsm_session_close(s);
	ldns_rdf *old =
	        ldns_rr_set_rdf(sigrr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_B64, siglen, sig), 8);
	ldns_rdf_deep_free(old);

	ldns_rr_list_push_rr(keys, ldns_dnskey(k, HSM_DNSKEY_ZSK)); /* keys owns it */
	ldns_rr_list *good = ldns_rr_list_new();
	ldns_status st = ldns_verify_rrsig_keylist(rrset, sigrr, keys, good);
	if (st != LDNS_STATUS_OK)
		fprintf(stderr, "# ldns: %s\n", ldns_get_errorstr_by_id(st));
	assert_int_equal(st, LDNS_STATUS_OK);
	assert_int_equal(ldns_rr_list_rr_count(good), 1);
	ldns_rr_list_free(good); /* borrowed entries of keys */

	ldns_buffer_free(input);
	ldns_rr_free(sigrr);
	ldns_rr_list_deep_free(keys);
	ldns_rr_list_deep_free(rrset);
}

static void
check_key(struct hsm *h, struct hsm_key *k)
{
	struct hsm_key_protection p;
	check_dnskey(k);
	check_sign_verify(h, k);
	check_rrsig_with_ldns(h, k);
	assert_int_equal(hsm_key_protection_get(k, &p), ZD_OK);
	assert_true(p.sensitive && !p.extractable && p.always_sensitive && p.never_extractable);
	raw_check_protected(k);
}

/* ---- pure functions ---- */

static void
rv_names_cover_common_codes(void **state)
{
	(void)state;
	assert_string_equal(hsm_rv_name(CKR_OK), "CKR_OK");
	assert_string_equal(hsm_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_string_equal(hsm_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
	assert_string_equal(hsm_rv_name(CKR_TOKEN_NOT_PRESENT), "CKR_TOKEN_NOT_PRESENT");
	assert_string_equal(hsm_rv_name(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID");
	assert_string_equal(hsm_rv_name(CKR_MECHANISM_INVALID), "CKR_MECHANISM_INVALID");
	assert_string_equal(hsm_rv_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED");
	assert_string_equal(hsm_rv_name(0x7777), "CKR_?");
	assert_string_equal(hsm_rv_name(CKR_VENDOR_DEFINED | 5), "CKR_VENDOR_DEFINED");
	assert_true(hsm_rv_is_lost(CKR_DEVICE_REMOVED));
	assert_true(hsm_rv_is_lost(CKR_TOKEN_NOT_PRESENT));
	assert_true(hsm_rv_is_lost(CKR_SESSION_HANDLE_INVALID));
	assert_true(hsm_rv_is_lost(CKR_OBJECT_HANDLE_INVALID));
	assert_false(hsm_rv_is_lost(CKR_PIN_INCORRECT));
	assert_false(hsm_rv_is_lost(CKR_DATA_LEN_RANGE));
}

static void
keytag_matches_rfc4034_and_collisions_are_refused(void **state)
{
	(void)state;
	/* By hand: 0x0100 + 0x030d + 0xaa00 = 0xae0d. */
	const uint8_t odd[] = {0x01, 0x00, 0x03, 0x0d, 0xaa};
	assert_int_equal(hsm_keytag_get(odd, sizeof odd), 0xae0d);
	/* 0xffff + 0xffff + 0x0002 = 0x20000: the carry (2) is added back once. */
	const uint8_t carry[] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x02};
	assert_int_equal(hsm_keytag_get(carry, sizeof carry), 0x0002);
	assert_int_equal(ldns_calc_keytag_raw(carry, sizeof carry), 0x0002);
	uint8_t big[HSM_DNSKEY_RDATA_MAX];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 31 + 3);
	assert_int_equal(hsm_keytag_get(big, sizeof big), ldns_calc_keytag_raw(big, sizeof big));

	const uint16_t used[] = {1, 55648, 20326};
	assert_int_equal(hsm_keytag_check(55648, used, 3), ZD_ELIMIT);
	assert_int_equal(hsm_keytag_check(20326, used, 3), ZD_ELIMIT);
	assert_int_equal(hsm_keytag_check(2, used, 3), ZD_OK);
	assert_int_equal(hsm_keytag_check(1, used, 0), ZD_OK);
}

static void
rsa_public_key_field_follows_rfc3110(void **state)
{
	uint8_t n[256], out[HSM_PUBKEY_MAX], e_long[300];
	size_t len = 99;
	const uint8_t e[] = {0x00, 0x01, 0x00, 0x01}; /* leading zero dropped */
	(void)state;
	memset(n, 0xc5, sizeof n);
	memset(e_long, 0x03, sizeof e_long);

	assert_int_equal(hsm_rsa_pubkey_encode(e, sizeof e, n, 127, out, sizeof out, &len),
	                 ZD_EMALFORMED); /* 1016 bits */
	assert_int_equal(len, 99);
	assert_int_equal(hsm_rsa_pubkey_encode(e, sizeof e, n, sizeof n, out, 100, &len),
	                 ZD_ELIMIT);
	assert_int_equal(hsm_rsa_pubkey_encode(e, 1, n, sizeof n, out, sizeof out, &len),
	                 ZD_EMALFORMED); /* exponent 0 */

	assert_int_equal(hsm_rsa_pubkey_encode(e, sizeof e, n, sizeof n, out, sizeof out, &len),
	                 ZD_OK);
	assert_int_equal(len, 1 + 3 + 256);
	assert_int_equal(out[0], 3);
	assert_memory_equal(out + 1, e + 1, 3);
	assert_memory_equal(out + 4, n, 256);
	assert_int_equal(hsm_pubkey_check(HSM_ALG_RSASHA256, out, len), ZD_OK);

	/* Exponents over 255 bytes: a zero, then two length bytes. */
	assert_int_equal(hsm_rsa_pubkey_encode(e_long, 256, n, sizeof n, out, sizeof out, &len),
	                 ZD_OK);
	assert_int_equal(len, 3 + 256 + 256);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[2], 0);
	assert_int_equal(hsm_pubkey_check(HSM_ALG_RSASHA256, out, len), ZD_OK);

	/* Malformed fields. */
	const uint8_t short_e[] = {3, 1, 0};
	assert_int_equal(hsm_pubkey_check(HSM_ALG_RSASHA256, short_e, sizeof short_e),
	                 ZD_EMALFORMED);
	assert_int_equal(hsm_pubkey_check(HSM_ALG_RSASHA256, out, 0), ZD_EMALFORMED);
	assert_int_equal(hsm_pubkey_check(HSM_ALG_ECDSAP256SHA256, out, 63), ZD_EMALFORMED);
	assert_int_equal(hsm_pubkey_check(HSM_ALG_ED25519, out, 33), ZD_EMALFORMED);
	assert_int_equal(hsm_pubkey_check(5, out, 64), ZD_EMALFORMED);
	size_t rlen = 7;
	assert_int_equal(hsm_dnskey_rdata(256, HSM_ALG_ED25519, out, 31, out, sizeof out, &rlen),
	                 ZD_EMALFORMED);
	assert_int_equal(rlen, 7);
	uint8_t small[10];
	assert_int_equal(hsm_dnskey_rdata(256, HSM_ALG_ED25519, n, 32, small, sizeof small, &rlen),
	                 ZD_ELIMIT);
	assert_string_equal(hsm_alg_name(13), "ECDSAP256SHA256");
	assert_null(hsm_alg_name(5));
}

static void
verify_rejects_malformed_keys_and_unknown_algorithms(void **state)
{
	uint8_t junk[600], sig[64];
	struct hsm_verify_key *vk = NULL;
	(void)state;
	memset(junk, 0x01, sizeof junk);
	memset(sig, 0x22, sizeof sig);

	assert_int_equal(hsm_verify_key_new(13, junk, 63, &vk), ZD_EMALFORMED);
	assert_int_equal(hsm_verify_key_new(13, junk, 64, &vk),
	                 ZD_EMALFORMED); /* not on the curve */
	assert_int_equal(hsm_verify_key_new(15, junk, 31, &vk), ZD_EMALFORMED);
	assert_int_equal(hsm_verify_key_new(5, junk, 64, &vk), ZD_EMALFORMED);
	assert_int_equal(hsm_verify_key_new(14, junk, 96, &vk), ZD_EMALFORMED);
	junk[0] = 200; /* exponent longer than the field allows */
	assert_int_equal(hsm_verify_key_new(8, junk, 150, &vk), ZD_EMALFORMED);
	junk[0] = 3; /* 1024-bit modulus with a leading zero */
	junk[4] = 0;
	assert_int_equal(hsm_verify_key_new(8, junk, 4 + 128, &vk), ZD_EMALFORMED);
	junk[4] = 0xc1;
	assert_int_equal(hsm_verify_key_new(8, junk, 4 + 64, &vk), ZD_EMALFORMED); /* 512 bits */
	assert_null(vk);
	assert_int_equal(hsm_verify(5, junk, 64, junk, 10, sig, sizeof sig), ZD_EMALFORMED);

	/* A well-formed Ed25519 key: wrong signatures fail, never crash. */
	assert_int_equal(hsm_verify_key_new(15, junk + 100, 32, &vk), ZD_OK);
	assert_int_equal(hsm_verify_key_check(vk, junk, 10, sig, sizeof sig), ZD_EMALFORMED);
	assert_int_equal(hsm_verify_key_check(vk, junk, 10, sig, 63), ZD_EMALFORMED);
	hsm_verify_key_free(vk);
	hsm_verify_key_free(NULL);
}

/* ---- configuration and connection failures ---- */

static void
config_needs_a_label_and_exactly_one_pin_source(void **state)
{
	struct hsm *h = NULL;
	(void)state;
	struct hsm_config both = {module, TOKEN, pin_path, "ZD_TEST_PIN", 0};
	struct hsm_config none = {module, TOKEN, NULL, NULL, 0};
	struct hsm_config nolabel = {module, "", pin_path, NULL, 0};
	struct hsm_config longlabel = {module, "0123456789abcdef0123456789abcdefX", pin_path, NULL,
	                               0};
	struct hsm_config emptyfile = {module, TOKEN, "", NULL, 0};
	assert_int_equal(hsm_new(&both, &h), ZD_EMALFORMED);
	assert_int_equal(hsm_new(&none, &h), ZD_EMALFORMED);
	assert_int_equal(hsm_new(&nolabel, &h), ZD_EMALFORMED);
	assert_int_equal(hsm_new(&longlabel, &h), ZD_EMALFORMED);
	assert_int_equal(hsm_new(&emptyfile, &h), ZD_EMALFORMED);
	assert_null(h); /* out-param untouched on failure */
	hsm_free(NULL);
}

static void
missing_module_fails_with_the_dlopen_message(void **state)
{
	(void)state;
	struct hsm *h = hsm_make("/nonexistent/libnopkcs11.so", TOKEN, pin_path, NULL);
	assert_int_equal(hsm_connect(h), ZD_EHSM);
	assert_true(contains(hsm_error_get(h), "/nonexistent/libnopkcs11.so"));
	assert_true(contains(hsm_error_get(h), "No such file"));
	assert_false(hsm_is_connected(h));
	hsm_free(h);
}

static void
library_without_c_getfunctionlist_is_refused(void **state)
{
	(void)state;
	struct hsm *h = hsm_make("libm.so.6", TOKEN, pin_path, NULL);
	assert_int_equal(hsm_connect(h), ZD_EHSM);
	assert_true(contains(hsm_error_get(h), "no C_GetFunctionList"));
	hsm_free(h);
}

static void
unknown_token_label_fails_and_names_the_labels_present(void **state)
{
	(void)state;
	struct hsm *h = hsm_make(module, "no-such-token", pin_path, NULL);
	assert_int_equal(hsm_connect(h), ZD_EHSM);
	assert_true(contains(hsm_error_get(h), "no token labelled 'no-such-token'"));
	assert_true(contains(hsm_error_get(h), "'" TOKEN "'"));
	assert_false(hsm_is_connected(h));
	hsm_free(h);
}

static void
wrong_pin_fails_with_ckr_pin_incorrect_and_is_never_shown(void **state)
{
	char wrong[PATH_MAX];
	(void)state;
	path_join(wrong, "wrong.pin");
	file_write(wrong, "not-the-pin-9999\n");
	struct hsm *h = hsm_make(module, TOKEN, wrong, NULL);
	assert_int_equal(hsm_connect(h), ZD_EHSM);
	assert_true(contains(hsm_error_get(h), "CKR_PIN_INCORRECT"));
	assert_true(contains(hsm_error_get(h), wrong)); /* where it came from */
	assert_false(contains(hsm_error_get(h), "not-the-pin-9999"));
	assert_false(contains(hsm_error_get(h), USER_PIN));
	assert_false(hsm_is_connected(h));
	/* The same struct can connect once the PIN is right. */
	file_write(wrong, USER_PIN);
	assert_int_equal(hsm_connect(h), ZD_OK);
	assert_int_equal(hsm_connect(h), ZD_EBUG); /* already connected */
	hsm_free(h);
}

static void
pin_file_missing_empty_or_too_long_and_unset_variable_fail(void **state)
{
	char p[PATH_MAX], longpin[HSM_PIN_MAX + 10];
	struct hsm *h;
	(void)state;

	path_join(p, "absent.pin");
	h = hsm_make(module, TOKEN, p, NULL);
	assert_int_equal(hsm_connect(h), ZD_EIO);
	assert_true(contains(hsm_error_get(h), "No such file"));
	hsm_free(h);

	path_join(p, "empty.pin");
	file_write(p, "");
	h = hsm_make(module, TOKEN, p, NULL);
	assert_int_equal(hsm_connect(h), ZD_EMALFORMED);
	assert_true(contains(hsm_error_get(h), "empty"));
	file_write(p, "\r\n\n");
	assert_int_equal(hsm_connect(h), ZD_EMALFORMED);
	hsm_free(h);

	path_join(p, "long.pin");
	memset(longpin, 'x', HSM_PIN_MAX + 1);
	longpin[HSM_PIN_MAX + 1] = '\0';
	file_write(p, longpin);
	h = hsm_make(module, TOKEN, p, NULL);
	assert_int_equal(hsm_connect(h), ZD_ELIMIT);
	assert_false(contains(hsm_error_get(h), "xxxx"));
	hsm_free(h);

	unsetenv("ZD_TEST_PIN_UNSET");
	h = hsm_make(module, TOKEN, NULL, "ZD_TEST_PIN_UNSET");
	assert_int_equal(hsm_connect(h), ZD_ENOTFOUND);
	assert_true(contains(hsm_error_get(h), "ZD_TEST_PIN_UNSET"));
	hsm_free(h);

	setenv("ZD_TEST_PIN_EMPTY", "", 1);
	h = hsm_make(module, TOKEN, NULL, "ZD_TEST_PIN_EMPTY");
	assert_int_equal(hsm_connect(h), ZD_EMALFORMED);
	hsm_free(h);
}

static void
pin_from_the_environment_logs_in(void **state)
{
	(void)state;
	setenv("ZD_TEST_PIN", USER_PIN, 1);
	struct hsm *h = hsm_make(module, TOKEN, NULL, "ZD_TEST_PIN");
	assert_int_equal(hsm_connect(h), ZD_OK);
	assert_true(hsm_is_connected(h));
	hsm_free(h);
	unsetenv("ZD_TEST_PIN");
}

static void
sessions_and_keys_need_a_connection(void **state)
{
	struct hsm_session *s = NULL;
	struct hsm_key *k = NULL;
	char err[256] = "";
	(void)state;
	struct hsm *h = hsm_make(module, TOKEN, pin_path, NULL);
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_EHSM);
	assert_true(contains(err, "not connected"));
	assert_null(s);
	struct hsm_keyspec spec = {HSM_ALG_ECDSAP256SHA256, 0, "x", 0};
	assert_int_equal(hsm_key_generate(h, &spec, &k), ZD_EHSM);
	assert_null(k);
	hsm_free(h);
}

static void
generate_refuses_bad_specs_and_leaves_nothing(void **state)
{
	struct hsm_key *k = NULL, **list = NULL;
	size_t n = 9;
	char label[HSM_LABEL_MAX + 2];
	(void)state;
	struct hsm *h = hsm_up();
	struct hsm_keyspec specs[] = {
	        {HSM_ALG_RSASHA256, 1024, "bad-rsa-1024", 0},
	        {HSM_ALG_RSASHA256, 8192, "bad-rsa-8192", 0},
	        {HSM_ALG_ECDSAP256SHA256, 384, "bad-ec-384", 0},
	        {5, 2048, "bad-alg-5", 0},
	        {HSM_ALG_ED25519, 0, "", 0},
	        {HSM_ALG_ED25519, 0, NULL, 0},
	        {HSM_ALG_ED25519, 0, label, 0},
	};
	memset(label, 'l', sizeof label - 1);
	label[sizeof label - 1] = '\0';
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		assert_int_equal(hsm_key_generate(h, &specs[i], &k), ZD_EMALFORMED);
		assert_null(k);
	}
	assert_int_equal(hsm_key_list(h, "bad-", &list, &n), ZD_OK);
	assert_int_equal(n, 0);
	hsm_key_list_free(list, n);
	hsm_free(h);
}

static void
alg_check_finds_every_mechanism(void **state)
{
	(void)state;
	struct hsm *h = hsm_up();
	assert_int_equal(hsm_alg_check(h, HSM_ALG_ECDSAP256SHA256, 0), ZD_OK);
	assert_int_equal(hsm_alg_check(h, HSM_ALG_ED25519, 0), ZD_OK);
	assert_int_equal(hsm_alg_check(h, HSM_ALG_RSASHA256, 2048), ZD_OK);
	assert_int_equal(hsm_alg_check(h, HSM_ALG_RSASHA256, 4096), ZD_OK);
	assert_int_equal(hsm_alg_check(h, 5, 0), ZD_EMALFORMED);
	hsm_free(h);
}

static void
sign_refuses_a_short_buffer_and_leaves_it_alone(void **state)
{
	struct hsm_session *s = NULL;
	uint8_t sig[64];
	size_t siglen = 63;
	char err[256];
	(void)state;
	struct hsm *h = hsm_up();
	struct hsm_key *k = key_make(h, HSM_ALG_ECDSAP256SHA256, 0, "short-buffer");
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	memset(sig, 0xee, sizeof sig);
	assert_int_equal(hsm_sign(s, k, (const uint8_t *)"abc", 3, sig, &siglen), ZD_ELIMIT);
	assert_int_equal(siglen, 63);
	assert_int_equal(sig[0], 0xee);
	assert_false(hsm_session_lost(s));
	hsm_session_close(s);
	assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	assert_null(k);
	hsm_free(h);
}

/* An offline KSK's public half: the same tag, algorithm, size and DNSKEY
 * as the token's key, and nothing to sign with. */
static void
public_half_matches_the_token_key_and_cannot_sign(void **state)
{
	static const struct {
		uint8_t alg;
		uint16_t bits;
	} specs[] = {{HSM_ALG_ECDSAP256SHA256, 0}, {HSM_ALG_ED25519, 0}, {HSM_ALG_RSASHA256, 2048}};
	struct hsm_session *s = NULL;
	char err[256];
	(void)state;
	struct hsm *h = hsm_up();
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct hsm_key *k = key_make(h, specs[i].alg, specs[i].bits, "public-half"),
		               *p = NULL;
		size_t len = 0, siglen = HSM_SIG_MAX;
		const uint8_t *pub = hsm_key_pubkey_get(k, &len);
		uint8_t sig[HSM_SIG_MAX], a[HSM_DNSKEY_RDATA_MAX], b[HSM_DNSKEY_RDATA_MAX];
		size_t la = 0, lb = 0;
		assert_int_equal(hsm_key_public_new(specs[i].alg, pub, len, "tld. KSK", &p), ZD_OK);
		assert_int_equal(hsm_key_tag_get(p, HSM_DNSKEY_KSK),
		                 hsm_key_tag_get(k, HSM_DNSKEY_KSK));
		assert_int_equal(hsm_key_alg_get(p), hsm_key_alg_get(k));
		assert_int_equal(hsm_key_bits_get(p), hsm_key_bits_get(k));
		assert_int_equal(hsm_key_siglen_get(p), hsm_key_siglen_get(k));
		assert_string_equal(hsm_key_label_get(p), "tld. KSK");
		assert_int_equal(hsm_key_dnskey_rdata(p, HSM_DNSKEY_KSK, a, sizeof a, &la), ZD_OK);
		assert_int_equal(hsm_key_dnskey_rdata(k, HSM_DNSKEY_KSK, b, sizeof b, &lb), ZD_OK);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		assert_int_not_equal(hsm_sign(s, p, (const uint8_t *)"abc", 3, sig, &siglen),
		                     ZD_OK);
		/* a public key field of the wrong length or algorithm is refused */
		assert_int_equal(hsm_key_public_new(specs[i].alg, pub, 3, "x", &p), ZD_EMALFORMED);
		assert_int_equal(hsm_key_public_new(7, pub, len, "x", &p), ZD_EMALFORMED);
		hsm_key_free(p);
		assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	}
	hsm_session_close(s);
	hsm_free(h);
}

/* ---- keys ---- */

static void
each_algorithm_is_generated_checked_and_found_again_after_restart(void **state)
{
	struct spec {
		uint8_t alg;
		uint16_t bits;
		const char *label;
		size_t pub_len, sig_len;
	} specs[] = {
	        {HSM_ALG_ECDSAP256SHA256, 0, "tld.-zsk-ecdsa", 64, 64},
	        {HSM_ALG_ED25519, 0, "tld.-zsk-ed25519", 32, 64},
	        {HSM_ALG_RSASHA256, 2048, "tld.-zsk-rsa2048", 4 + 256, 256},
	        {HSM_ALG_RSASHA256, 4096, "tld.-ksk-rsa4096", 4 + 512, 512},
	};
	enum { N = sizeof specs / sizeof specs[0] };
	uint8_t ids[N][HSM_ID_MAX], pubs[N][HSM_PUBKEY_MAX];
	size_t id_lens[N], pub_lens[N];
	(void)state;

	struct hsm *h = hsm_up();
	for (size_t i = 0; i < N; i++) {
		struct hsm_key *k = key_make(h, specs[i].alg, specs[i].bits, specs[i].label);
		size_t len = 0;
		const uint8_t *p;
		assert_int_equal(hsm_key_alg_get(k), specs[i].alg);
		assert_int_equal(hsm_key_bits_get(k), specs[i].bits ? specs[i].bits : 256);
		assert_string_equal(hsm_key_label_get(k), specs[i].label);
		assert_int_equal(hsm_key_siglen_get(k), specs[i].sig_len);
		p = hsm_key_id_get(k, &id_lens[i]);
		assert_int_equal(id_lens[i], HSM_ID_LEN);
		memcpy(ids[i], p, id_lens[i]);
		p = hsm_key_pubkey_get(k, &len);
		assert_int_equal(len, specs[i].pub_len);
		if (specs[i].alg == HSM_ALG_RSASHA256) /* e = 65537 */
			assert_memory_equal(p, "\x03\x01\x00\x01", 4);
		memcpy(pubs[i], p, len);
		pub_lens[i] = len;
		check_key(h, k);
		hsm_key_free(k); /* the token keeps it */
	}
	/* Listing by label prefix sees them. */
	struct hsm_key **list = NULL;
	size_t n = 0;
	assert_int_equal(hsm_key_list(h, "tld.-", &list, &n), ZD_OK);
	assert_int_equal(n, N);
	hsm_key_list_free(list, n);
	assert_int_equal(hsm_key_list(h, "tld.-ksk-", &list, &n), ZD_OK);
	assert_int_equal(n, 1);
	assert_string_equal(hsm_key_label_get(list[0]), "tld.-ksk-rsa4096");
	hsm_key_list_free(list, n);
	assert_int_equal(hsm_key_list(h, NULL, &list, &n), ZD_OK);
	assert_true(n >= N);
	hsm_key_list_free(list, n);
	hsm_free(h); /* the module is finalised: a restart */

	h = hsm_up();
	for (size_t i = 0; i < N; i++) {
		struct hsm_key *k = NULL;
		size_t len = 0;
		assert_int_equal(hsm_key_find(h, ids[i], id_lens[i], &k), ZD_OK);
		assert_non_null(k);
		assert_int_equal(hsm_key_alg_get(k), specs[i].alg);
		assert_string_equal(hsm_key_label_get(k), specs[i].label);
		const uint8_t *p = hsm_key_pubkey_get(k, &len);
		assert_int_equal(len, pub_lens[i]);
		assert_memory_equal(p, pubs[i], len);
		check_sign_verify(h, k);
		hsm_key_free(k);
	}
	/* An ID nobody has is no error. */
	struct hsm_key *none = (struct hsm_key *)&none;
	const uint8_t nobody[HSM_ID_LEN] = {0};
	assert_int_equal(hsm_key_find(h, nobody, sizeof nobody, &none), ZD_OK);
	assert_null(none);
	assert_int_equal(hsm_key_find(h, nobody, 0, &none), ZD_EMALFORMED);
	hsm_free(h);
}

struct signer {
	struct hsm *h;
	const struct hsm_key *k;
	const struct hsm_verify_key *vk;
	unsigned rounds;
	unsigned good;
	zd_err e;
};

static void *
signer_run(void *arg)
{
	struct signer *t = arg;
	struct hsm_session *s = NULL;
	char err[256];
	uint8_t data[128], sig[HSM_SIG_MAX];

	t->e = hsm_session_open(t->h, &s, err, sizeof err);
	if (t->e != ZD_OK)
		return NULL;
	for (unsigned i = 0; i < t->rounds; i++) {
		size_t siglen = sizeof sig;
		memset(data, (int)(i & 0xff), sizeof data);
		memcpy(data, &t, sizeof t); /* a different message per thread */
		t->e = hsm_sign(s, t->k, data, sizeof data, sig, &siglen);
		if (t->e != ZD_OK)
			break;
		if (hsm_verify_key_check(t->vk, data, sizeof data, sig, siglen) == ZD_OK)
			t->good++;
	}
	hsm_session_close(s);
	return NULL;
}

static void
two_threads_sign_concurrently_with_their_own_sessions(void **state)
{
	enum { ROUNDS = 300 };
	struct signer t[4];
	pthread_t tid[4];
	struct hsm_verify_key *vk[2];
	size_t len = 0;
	const uint8_t *p;
	(void)state;

	struct hsm *h = hsm_up();
	struct hsm_key *ec = key_make(h, HSM_ALG_ECDSAP256SHA256, 0, "conc-ec");
	struct hsm_key *ed = key_make(h, HSM_ALG_ED25519, 0, "conc-ed");
	p = hsm_key_pubkey_get(ec, &len);
	assert_int_equal(hsm_verify_key_new(HSM_ALG_ECDSAP256SHA256, p, len, &vk[0]), ZD_OK);
	p = hsm_key_pubkey_get(ed, &len);
	assert_int_equal(hsm_verify_key_new(HSM_ALG_ED25519, p, len, &vk[1]), ZD_OK);
	/* Two threads on one key, two on another: four sessions at once. */
	for (int i = 0; i < 4; i++) {
		t[i] = (struct signer){h, i < 2 ? ec : ed, vk[i < 2 ? 0 : 1], ROUNDS, 0, ZD_EBUG};
		assert_int_equal(pthread_create(&tid[i], NULL, signer_run, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(t[i].e, ZD_OK);
		assert_int_equal(t[i].good, ROUNDS);
	}
	hsm_verify_key_free(vk[0]);
	hsm_verify_key_free(vk[1]);
	assert_int_equal(hsm_key_destroy(&ec), ZD_OK);
	assert_int_equal(hsm_key_destroy(&ed), ZD_OK);
	hsm_free(h);
}

/* A verifier keeps contexts for 8 keys: with 12 keys in turn (each context
 * replaced before its key comes again), every result is hsm_verify_key_check()'s:
 * good signatures pass, a flipped byte, another key's signature and another
 * message fail; a key freed and another made in its place (perhaps at the
 * same address) is never checked with the old key's context. */
static void
a_verifier_gives_the_one_shot_results_across_keys_and_algorithms(void **state)
{
	enum { N = 12 };
	struct hsm_key *keys[N];
	struct hsm_verify_key *vk[N];
	struct hsm_session *s = NULL;
	struct hsm_verifier *v = NULL;
	uint8_t sig[N][HSM_SIG_MAX];
	size_t siglen[N], len;
	uint8_t data[] = "signing input", other[] = "signing input!";
	char err[256];
	(void)state;

	struct hsm *h = hsm_up();
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	for (size_t i = 0; i < N; i++) {
		uint8_t alg = i == 3   ? HSM_ALG_ED25519
		              : i == 7 ? HSM_ALG_RSASHA256
		                       : HSM_ALG_ECDSAP256SHA256;
		keys[i] = key_make(h, alg, alg == HSM_ALG_RSASHA256 ? 2048 : 0, "verifier");
		const uint8_t *pub = hsm_key_pubkey_get(keys[i], &len);
		assert_int_equal(hsm_verify_key_new(alg, pub, len, &vk[i]), ZD_OK);
		siglen[i] = sizeof sig[i];
		assert_int_equal(hsm_sign(s, keys[i], data, sizeof data, sig[i], &siglen[i]),
		                 ZD_OK);
	}
	assert_int_equal(hsm_verifier_new(&v), ZD_OK);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < N; i++) {
			size_t j = (i + 1) % N; /* a key of another kind or the same */
			assert_int_equal(
			        hsm_verifier_check(v, vk[i], data, sizeof data, sig[i], siglen[i]),
			        ZD_OK);
			assert_int_equal(hsm_verifier_check(v, vk[i], other, sizeof other, sig[i],
			                                    siglen[i]),
			                 ZD_EMALFORMED);
			assert_int_equal(
			        hsm_verifier_check(v, vk[i], data, sizeof data, sig[j], siglen[j]),
			        hsm_verify_key_check(vk[i], data, sizeof data, sig[j], siglen[j]));
			assert_int_not_equal(
			        hsm_verifier_check(v, vk[i], data, sizeof data, sig[j], siglen[j]),
			        ZD_OK);
			sig[i][siglen[i] / 2] ^= 1;
			assert_int_equal(
			        hsm_verifier_check(v, vk[i], data, sizeof data, sig[i], siglen[i]),
			        ZD_EMALFORMED);
			sig[i][siglen[i] / 2] ^= 1;
		}
	/* vk[0]'s context is in v; a new key in its place gets its own. */
	hsm_verify_key_free(vk[0]);
	const uint8_t *pub = hsm_key_pubkey_get(keys[1], &len);
	assert_int_equal(hsm_verify_key_new(HSM_ALG_ECDSAP256SHA256, pub, len, &vk[0]), ZD_OK);
	assert_int_equal(hsm_verifier_check(v, vk[0], data, sizeof data, sig[1], siglen[1]), ZD_OK);
	assert_int_equal(hsm_verifier_check(v, vk[0], data, sizeof data, sig[0], siglen[0]),
	                 ZD_EMALFORMED);
	/* Keys freed before the verifier: its contexts hold their own references. */
	for (size_t i = 0; i < N; i++) {
		hsm_verify_key_free(vk[i]);
		assert_int_equal(hsm_key_destroy(&keys[i]), ZD_OK);
	}
	hsm_verifier_free(v);
	hsm_verifier_free(NULL);
	hsm_session_close(s);
	hsm_free(h);
}

static size_t
keys_labelled(struct hsm *h, const char *prefix)
{
	struct hsm_key **list = NULL;
	size_t n = 0;
	assert_int_equal(hsm_key_list(h, prefix, &list, &n), ZD_OK);
	hsm_key_list_free(list, n);
	return n;
}

static void
colliding_key_tags_are_retried_then_refused(void **state)
{
	const uint16_t used[] = {4242, 777};
	const uint16_t forced[] = {777, 4242, 777};
	struct hsm_key *k = NULL;
	(void)state;

	struct hsm *h = hsm_up();
	struct hsm_keyspec spec = {HSM_ALG_ECDSAP256SHA256, 0, "coll-refused", 0};
	/* Every try collides: nothing is made and nothing is left behind. */
	assert_int_equal(hsm_test_keytag_override(h, forced, 3), ZD_OK);
	assert_int_equal(hsm_key_generate_unique(h, &spec, HSM_DNSKEY_ZSK, used, 2, 3, &k),
	                 ZD_ELIMIT);
	assert_null(k);
	assert_true(contains(hsm_error_get(h), "collided"));
	assert_int_equal(keys_labelled(h, "coll-refused"), 0);

	/* Two collisions, then the key's real tag (not in used, or the next
	 * real one: the odds of four real collisions are negligible). */
	spec.label = "coll-third";
	assert_int_equal(hsm_test_keytag_override(h, forced, 2), ZD_OK);
	assert_int_equal(hsm_key_generate_unique(h, &spec, HSM_DNSKEY_ZSK, used, 2, 6, &k), ZD_OK);
	assert_non_null(k);
	assert_int_equal(hsm_keytag_check(hsm_key_tag_get(k, HSM_DNSKEY_ZSK), used, 2), ZD_OK);
	assert_int_equal(keys_labelled(h, "coll-third"), 1);

	/* Against the real tag of a key already in the zone. */
	uint16_t real[1] = {hsm_key_tag_get(k, HSM_DNSKEY_ZSK)};
	assert_int_equal(hsm_keytag_check(real[0], real, 1), ZD_ELIMIT);
	assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	assert_int_equal(keys_labelled(h, "coll-third"), 0);
	assert_int_equal(hsm_test_keytag_override(h, forced, 65), ZD_ELIMIT);
	hsm_free(h);
}

/* RFC 5011 s5: setting REVOKE adds 0x80 (or 0x81 with a carry) to a KSK's
 * tag.  With every tag that has bit 7 set in use, a KSK that passes must
 * have bit 7 clear in both forms, which almost never happens: the guard
 * mostly gives up, and whatever it accepts is free in both forms.  A ZSK
 * only needs its own tag free (half of all tags). */
static void
ksk_tag_must_stay_free_once_revoked(void **state)
{
	static uint16_t used[32768];
	size_t n = 0;
	struct hsm_key *k = NULL;
	(void)state;
	for (uint32_t t = 0; t <= 0xffff; t++)
		if (t & 0x80)
			used[n++] = (uint16_t)t;

	struct hsm *h = hsm_up();
	struct hsm_keyspec spec = {HSM_ALG_ECDSAP256SHA256, 0, "revoke-ksk", 0};
	zd_err e = hsm_key_generate_unique(h, &spec, HSM_DNSKEY_KSK, used, n, 8, &k);
	if (e == ZD_OK) {
		assert_int_equal(hsm_keytag_check(hsm_key_tag_get(k, HSM_DNSKEY_KSK), used, n),
		                 ZD_OK);
		assert_int_equal(
		        hsm_keytag_check(hsm_key_tag_get(k, HSM_DNSKEY_KSK | HSM_DNSKEY_REVOKE),
		                         used, n),
		        ZD_OK);
		assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	} else {
		assert_int_equal(e, ZD_ELIMIT);
		assert_int_equal(keys_labelled(h, "revoke-ksk"), 0);
	}
	spec.label = "revoke-zsk";
	assert_int_equal(hsm_key_generate_unique(h, &spec, HSM_DNSKEY_ZSK, used, n, 24, &k), ZD_OK);
	assert_int_equal(hsm_keytag_check(hsm_key_tag_get(k, HSM_DNSKEY_ZSK), used, n), ZD_OK);
	assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	hsm_free(h);
}

/* SoftHSM keeps token objects in files: when the token directory vanishes
 * it answers C_SignInit with CKR_OBJECT_HANDLE_INVALID and C_GetTokenInfo
 * with CKR_GENERAL_ERROR, and it only sees the token again after
 * C_Finalize + C_Initialize, which hsm_reconnect() does. */
static void
token_removed_mid_run_fails_signing_and_reconnect_recovers(void **state)
{
	char gone[PATH_MAX], err[256];
	struct hsm_session *s = NULL;
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen = sizeof sig, len = 0;
	const uint8_t data[] = "signing input";
	(void)state;
	path_join(gone, "tokens.gone");

	struct hsm *h = hsm_up();
	struct hsm_key *k = key_make(h, HSM_ALG_ECDSAP256SHA256, 0, "removal");
	const uint8_t *pub = hsm_key_pubkey_get(k, &len);
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_OK);

	assert_int_equal(rename(tokens, gone), 0);
	siglen = sizeof sig;
	assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_EHSM);
	assert_int_equal(siglen, sizeof sig);
	fprintf(stderr, "# token removed: %s\n", hsm_session_error_get(s));
	assert_true(contains(hsm_session_error_get(s), "C_SignInit"));
	assert_true(contains(hsm_session_error_get(s), "CKR_"));
	assert_true(contains(hsm_session_error_get(s), "removal"));
	assert_true(hsm_session_lost(s));

	/* Sessions first, then reconnect; while the token is away it fails. */
	assert_int_equal(hsm_reconnect(h), ZD_EBUG);
	hsm_session_close(s);
	s = NULL;
	assert_int_equal(hsm_reconnect(h), ZD_EHSM);
	fprintf(stderr, "# reconnect while away: %s\n", hsm_error_get(h));
	/* SoftHSM refuses C_Initialize without its token directory; another
	 * module would initialise and miss the label. */
	assert_true(contains(hsm_error_get(h), "CKR_GENERAL_ERROR") ||
	            contains(hsm_error_get(h), "no token labelled"));
	assert_false(hsm_is_connected(h));
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_EHSM);
	assert_null(s);

	assert_int_equal(rename(gone, tokens), 0);
	zd_err e = hsm_reconnect(h);
	if (e != ZD_OK)
		fprintf(stderr, "# reconnect: %s\n", hsm_error_get(h));
	assert_int_equal(e, ZD_OK);
	assert_true(hsm_is_connected(h));
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	siglen = sizeof sig;
	assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_OK);
	assert_int_equal(
	        hsm_verify(HSM_ALG_ECDSAP256SHA256, pub, len, data, sizeof data, sig, siglen),
	        ZD_OK);
	hsm_session_close(s);

	/* A key deleted behind our back: reconnect says which, the rest works. */
	struct hsm_key *other = key_make(h, HSM_ALG_ED25519, 0, "removal-victim");
	struct raw r;
	size_t id_len = 0;
	const uint8_t *id = hsm_key_id_get(other, &id_len);
	raw_open(&r);
	CK_SESSION_HANDLE rw;
	CK_SESSION_INFO si;
	assert_int_equal(r.f->C_GetSessionInfo(r.sh, &si), CKR_OK);
	assert_int_equal(
	        r.f->C_OpenSession(si.slotID, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw),
	        CKR_OK);
	assert_int_equal(r.f->C_DestroyObject(rw, raw_private_key(&r, id, id_len)), CKR_OK);
	r.f->C_CloseSession(rw);
	raw_close(&r);
	assert_int_equal(hsm_reconnect(h), ZD_EHSM);
	assert_true(contains(hsm_error_get(h), "removal-victim"));
	assert_true(hsm_is_connected(h));
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	siglen = sizeof sig;
	assert_int_equal(hsm_sign(s, other, data, sizeof data, sig, &siglen), ZD_EHSM);
	assert_true(contains(hsm_session_error_get(s), "not loaded"));
	siglen = sizeof sig;
	assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_OK);
	hsm_session_close(s);
	hsm_key_free(other);
	assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	hsm_free(h);
}

/* A session copy (what the signing processes sign with) signs for each
 * algorithm with the key's own signature, and a token that goes away still
 * stops the signing within HSM_COPY_CHECK_MS, though the copy itself would
 * go on signing; after a reconnect the key signs again and can be copied
 * again. */
static void
session_copy_signs_and_stops_when_the_token_goes(void **state)
{
	char gone[PATH_MAX], err[256];
	struct hsm_session *s = NULL;
	uint8_t sig[HSM_SIG_MAX];
	size_t siglen, len = 0;
	const uint8_t data[] = "signing input";
	const struct {
		uint8_t alg;
		uint16_t bits;
	} algs[] = {{HSM_ALG_ECDSAP256SHA256, 0}, {HSM_ALG_ED25519, 0}, {HSM_ALG_RSASHA256, 2048}};
	struct hsm_key *keys[3];
	(void)state;
	path_join(gone, "tokens.gone");

	struct hsm *h = hsm_up();
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	for (size_t i = 0; i < 3; i++) {
		keys[i] = key_make(h, algs[i].alg, algs[i].bits, "copied");
		zd_err e = hsm_key_session_copy(keys[i]);
		if (e != ZD_OK)
			fprintf(stderr, "# copy: %s\n", hsm_error_get(h));
		assert_int_equal(e, ZD_OK);
		assert_int_equal(hsm_key_session_copy(keys[i]), ZD_OK); /* once is enough */
		const uint8_t *pub = hsm_key_pubkey_get(keys[i], &len);
		siglen = sizeof sig;
		assert_int_equal(hsm_sign(s, keys[i], data, sizeof data, sig, &siglen), ZD_OK);
		assert_int_equal(hsm_verify(algs[i].alg, pub, len, data, sizeof data, sig, siglen),
		                 ZD_OK);
		sig[siglen / 2] ^= 1;
		assert_int_not_equal(
		        hsm_verify(algs[i].alg, pub, len, data, sizeof data, sig, siglen), ZD_OK);
	}

	struct hsm_key *k = keys[0];
	assert_int_equal(rename(tokens, gone), 0);
	/* Within HSM_COPY_CHECK_MS of the last look the copy may still sign;
	 * after it, no signature. */
	struct timespec pause = {0, (HSM_COPY_CHECK_MS + 5) * 1000000L};
	nanosleep(&pause, NULL);
	siglen = sizeof sig;
	assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_EHSM);
	fprintf(stderr, "# token removed, copy: %s\n", hsm_session_error_get(s));
	assert_true(contains(hsm_session_error_get(s), "is the key there"));
	assert_true(contains(hsm_session_error_get(s), "copied"));
	assert_true(hsm_session_lost(s));
	hsm_session_close(s);
	s = NULL;
	assert_int_equal(rename(gone, tokens), 0);
	zd_err e = hsm_reconnect(h);
	if (e != ZD_OK)
		fprintf(stderr, "# reconnect: %s\n", hsm_error_get(h));
	assert_int_equal(e, ZD_OK);
	assert_int_equal(hsm_session_open(h, &s, err, sizeof err), ZD_OK);
	for (int copy = 0; copy < 2; copy++) {
		const uint8_t *pub = hsm_key_pubkey_get(k, &len);
		if (copy)
			assert_int_equal(hsm_key_session_copy(k), ZD_OK);
		siglen = sizeof sig;
		assert_int_equal(hsm_sign(s, k, data, sizeof data, sig, &siglen), ZD_OK);
		assert_int_equal(hsm_verify(HSM_ALG_ECDSAP256SHA256, pub, len, data, sizeof data,
		                            sig, siglen),
		                 ZD_OK);
	}
	hsm_session_close(s);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(hsm_key_destroy(&keys[i]), ZD_OK);
	hsm_free(h);
}

/* A backup: each algorithm's wrappable key wrapped in one token, written out
 * and read back as a backup file, unwrapped into the other token, where it
 * signs with the same key tag; a second restore finds it there.  A key not
 * generated wrappable, a wrapping key a user made, a missing wrapping key
 * and an install without the SO PIN are refused. */
static void
keys_are_backed_up_wrapped_and_restored_into_another_token(void **state)
{
	static const struct {
		uint8_t alg;
		uint16_t bits;
	} algs[] = {{HSM_ALG_ECDSAP256SHA256, 0}, {HSM_ALG_ED25519, 0}, {HSM_ALG_RSASHA256, 2048}};
	struct hsm_wrapped w, back;
	char *text = malloc(HSM_WRAPPED_TEXT_MAX), err[256];
	size_t text_len = 0, len = 0;
	(void)state;
	assert_non_null(text);

	struct hsm *a = hsm_up();
	struct hsm *b = hsm_make(module, TOKEN_B, pin_path, NULL);
	assert_int_equal(hsm_connect(b), ZD_OK);
	assert_int_equal(hsm_wrapkey_check(a, WRAP_KEY), ZD_OK);
	assert_int_equal(hsm_wrapkey_check(b, WRAP_KEY), ZD_OK);
	assert_int_equal(hsm_wrapkey_check(b, "no-such-wrap"), ZD_ENOTFOUND);
	uint8_t value[HSM_WRAPKEY_BYTES] = {0};
	assert_int_equal(hsm_wrapkey_install(a, "user-wrap", value), ZD_EHSM);
	assert_true(contains(hsm_error_get(a), "security officer"));

	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		char label[64];
		snprintf(label, sizeof label, "backup-%s", hsm_alg_name(algs[i].alg));
		struct hsm_keyspec spec = {algs[i].alg, algs[i].bits, label, 1};
		struct hsm_key *k = NULL, *r = NULL, *again = NULL;
		int existed = -1;
		assert_int_equal(hsm_key_generate(a, &spec, &k), ZD_OK);
		struct hsm_key_protection pr;
		assert_int_equal(hsm_key_protection_get(k, &pr), ZD_OK);
		assert_true(pr.sensitive && pr.extractable && pr.always_sensitive);

		assert_int_equal(hsm_key_wrap(k, "no-such-wrap", &w), ZD_ENOTFOUND);
		zd_err we = hsm_key_wrap(k, WRAP_KEY, &w);
		if (we != ZD_OK)
			fprintf(stderr, "# wrap %s: %s\n", label, hsm_error_get(a));
		/* SoftHSM 2.6.1 wraps no EdDSA private key (its C_WrapKey knows
		 * the PKCS#8 forms of RSA, DSA, DH, EC and GOST keys only): the
		 * refusal must say so, and the key stays usable. */
		if (algs[i].alg == HSM_ALG_ED25519 && we == ZD_EHSM &&
		    contains(hsm_error_get(a), "CKR_KEY_NOT_WRAPPABLE")) {
			assert_int_equal(hsm_key_destroy(&k), ZD_OK);
			continue;
		}
		assert_int_equal(we, ZD_OK);
		assert_true(w.blob_len > 0);
		assert_int_equal(hsm_wrapped_encode(&w, text, HSM_WRAPPED_TEXT_MAX, &text_len),
		                 ZD_OK);
		assert_int_equal(hsm_wrapped_decode(text, text_len, &back, err, sizeof err), ZD_OK);
		assert_int_equal(back.blob_len, w.blob_len);
		assert_memory_equal(back.blob, w.blob, w.blob_len);
		assert_string_equal(back.label, label);

		zd_err e = hsm_key_unwrap(b, WRAP_KEY, &back, &r, &existed);
		if (e != ZD_OK)
			fprintf(stderr, "# unwrap %s: %s\n", label, hsm_error_get(b));
		assert_int_equal(e, ZD_OK);
		assert_int_equal(existed, 0);
		assert_int_equal(hsm_key_tag_get(r, HSM_DNSKEY_KSK),
		                 hsm_key_tag_get(k, HSM_DNSKEY_KSK));
		assert_int_equal(hsm_key_alg_get(r), algs[i].alg);
		assert_int_equal(hsm_key_protection_get(r, &pr), ZD_OK);
		assert_true(pr.sensitive);
		/* signs in the backup token, verifies with the original's key */
		struct hsm_session *s = NULL;
		uint8_t sig[HSM_SIG_MAX];
		size_t siglen = sizeof sig;
		const uint8_t data[] = "restored";
		const uint8_t *pub = hsm_key_pubkey_get(k, &len);
		assert_int_equal(hsm_session_open(b, &s, err, sizeof err), ZD_OK);
		assert_int_equal(hsm_sign(s, r, data, sizeof data, sig, &siglen), ZD_OK);
		hsm_session_close(s);
		assert_int_equal(hsm_verify(algs[i].alg, pub, len, data, sizeof data, sig, siglen),
		                 ZD_OK);

		assert_int_equal(hsm_key_unwrap(b, WRAP_KEY, &back, &again, &existed), ZD_OK);
		assert_int_equal(existed, 1);
		hsm_key_free(again);
		/* the same CKA_ID with another public key is refused */
		back.pubkey[back.pubkey_len - 1] ^= 1;
		assert_int_equal(hsm_key_unwrap(b, WRAP_KEY, &back, &again, &existed), ZD_EHSM);
		assert_true(contains(hsm_error_get(b), "another key"));

		assert_int_equal(hsm_key_destroy(&r), ZD_OK);
		assert_int_equal(hsm_key_destroy(&k), ZD_OK);
	}

	/* a wrapped key that is not the one its public key says: nothing kept */
	struct hsm_keyspec s1 = {HSM_ALG_ECDSAP256SHA256, 0, "backup-mismatch-1", 1};
	struct hsm_keyspec s2 = {HSM_ALG_ECDSAP256SHA256, 0, "backup-mismatch-2", 1};
	struct hsm_key *k1 = NULL, *k2 = NULL, *r = NULL;
	int existed = -1;
	assert_int_equal(hsm_key_generate(a, &s1, &k1), ZD_OK);
	assert_int_equal(hsm_key_generate(a, &s2, &k2), ZD_OK);
	assert_int_equal(hsm_key_wrap(k1, WRAP_KEY, &w), ZD_OK);
	assert_int_equal(hsm_key_wrap(k2, WRAP_KEY, &back), ZD_OK);
	memcpy(w.blob, back.blob, back.blob_len);
	w.blob_len = back.blob_len;
	assert_int_equal(hsm_key_unwrap(b, WRAP_KEY, &w, &r, &existed), ZD_EHSM);
	assert_true(contains(hsm_error_get(b), "does not sign"));
	assert_null(r);
	assert_int_equal(hsm_key_find(b, w.id, w.id_len, &r), ZD_OK);
	assert_null(r);
	assert_int_equal(hsm_key_destroy(&k1), ZD_OK);
	assert_int_equal(hsm_key_destroy(&k2), ZD_OK);

	/* a key generated as usual never leaves the token, even wrapped */
	struct hsm_key *plain = key_make(a, HSM_ALG_ECDSAP256SHA256, 0, "backup-plain");
	assert_int_equal(hsm_key_wrap(plain, WRAP_KEY, &w), ZD_EHSM);
	assert_true(contains(hsm_error_get(a), "CKR_KEY_UNEXTRACTABLE"));
	assert_int_equal(hsm_key_destroy(&plain), ZD_OK);

	/* a wrapping key the user makes cannot wrap a wrappable key */
	struct hsm_keyspec ws = {HSM_ALG_ECDSAP256SHA256, 0, "backup-untrusted", 1};
	struct hsm_key *wk = NULL;
	assert_int_equal(hsm_key_generate(a, &ws, &wk), ZD_OK);
	struct raw raw;
	raw_open(&raw);
	size_t id_len = 0;
	const uint8_t *id = hsm_key_id_get(wk, &id_len);
	CK_OBJECT_HANDLE priv = raw_private_key(&raw, id, id_len), mine;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE aes = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
	                    {CKA_KEY_TYPE, &aes, sizeof aes},
	                    {CKA_TOKEN, &no, 1},
	                    {CKA_WRAP, &yes, 1},
	                    {CKA_VALUE, value, sizeof value}};
	assert_int_equal(raw.f->C_CreateObject(raw.sh, t, 5, &mine), CKR_OK);
	CK_ATTRIBUTE trust = {CKA_TRUSTED, &yes, 1};
	assert_int_not_equal(raw.f->C_SetAttributeValue(raw.sh, mine, &trust, 1), CKR_OK);
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_ULONG blob_len = sizeof w.blob;
	assert_int_equal(raw.f->C_WrapKey(raw.sh, &m, mine, priv, w.blob, &blob_len),
	                 CKR_KEY_NOT_WRAPPABLE);
	raw.f->C_DestroyObject(raw.sh, mine);
	raw_close(&raw);
	assert_int_equal(hsm_key_destroy(&wk), ZD_OK);

	/* backup files that are not */
	static const char *bad[] = {
	        "",
	        "zonedist-wrapped-key 2\n",
	        "zonedist-wrapped-key 1\nid 00\n",
	        "zonedist-wrapped-key 1\nid 0g\nlabel x\nalgorithm 13\npublic-key 00\nwrapped 00\n",
	        "zonedist-wrapped-key 1\nid 00\nid 00\n",
	        "zonedist-wrapped-key 1\nsecret 00\n",
	        "zonedist-wrapped-key 1\nid 00\nlabel x\nalgorithm 13\npublic-key 00\nwrapped 00\n",
	        "zonedist-wrapped-key 1\nid 00\nlabel x\nalgorithm 7\npublic-key 00\nwrapped 00\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(hsm_wrapped_decode(bad[i], strlen(bad[i]), &back, err, sizeof err),
		                 ZD_EMALFORMED);
		assert_true(err[0] != '\0');
	}
	free(text);
	hsm_free(b);
	hsm_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(rv_names_cover_common_codes),
	        cmocka_unit_test(keytag_matches_rfc4034_and_collisions_are_refused),
	        cmocka_unit_test(rsa_public_key_field_follows_rfc3110),
	        cmocka_unit_test(verify_rejects_malformed_keys_and_unknown_algorithms),
	        cmocka_unit_test(config_needs_a_label_and_exactly_one_pin_source),
	        cmocka_unit_test(missing_module_fails_with_the_dlopen_message),
	        cmocka_unit_test(library_without_c_getfunctionlist_is_refused),
	        cmocka_unit_test(unknown_token_label_fails_and_names_the_labels_present),
	        cmocka_unit_test(wrong_pin_fails_with_ckr_pin_incorrect_and_is_never_shown),
	        cmocka_unit_test(pin_file_missing_empty_or_too_long_and_unset_variable_fail),
	        cmocka_unit_test(sessions_and_keys_need_a_connection),
	        cmocka_unit_test(generate_refuses_bad_specs_and_leaves_nothing),
	        cmocka_unit_test(sign_refuses_a_short_buffer_and_leaves_it_alone),
	        cmocka_unit_test(public_half_matches_the_token_key_and_cannot_sign),
	        cmocka_unit_test(pin_from_the_environment_logs_in),
	        cmocka_unit_test(alg_check_finds_every_mechanism),
	        cmocka_unit_test(each_algorithm_is_generated_checked_and_found_again_after_restart),
	        cmocka_unit_test(two_threads_sign_concurrently_with_their_own_sessions),
	        cmocka_unit_test(a_verifier_gives_the_one_shot_results_across_keys_and_algorithms),
	        cmocka_unit_test(colliding_key_tags_are_retried_then_refused),
	        cmocka_unit_test(ksk_tag_must_stay_free_once_revoked),
	        cmocka_unit_test(keys_are_backed_up_wrapped_and_restored_into_another_token),
	        cmocka_unit_test(token_removed_mid_run_fails_signing_and_reconnect_recovers),
	        cmocka_unit_test(session_copy_signs_and_stops_when_the_token_goes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
