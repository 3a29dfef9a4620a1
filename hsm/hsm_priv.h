/* hsm/hsm_priv.h -- internals shared by hsm.c, key.c, module.c and
 * token_init.c; nothing outside hsm/ includes it.  Beware: p11-kit's
 * pkcs11.h (compat mode) #defines common words -- value, count, params,
 * reserved, slot_id, parameter -- so files including it avoid them as names. */
#ifndef HSM_PRIV_H
#define HSM_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"

#define HSM_ERR_MAX 512 /* bytes of an error message */

/* One loaded PKCS#11 module, shared by every user in the process that loaded
 * the same file (dlopen returns the same handle); never unloaded.
 * modules_lock (module.c) guards every field. */
struct hsm_module {
	struct hsm_module *next;
	void *dl;               /* dlopen handle, kept for the life of the process */
	CK_FUNCTION_LIST_PTR f; /* the module's table; valid while dl is loaded */
	unsigned users;         /* hsm_module_acquire() not yet released */
	int initialized;        /* C_Initialize succeeded and C_Finalize is not yet called */
	int ours;               /* we called C_Initialize (not CKR_CRYPTOKI_ALREADY_INITIALIZED) */
};

/* dlopen(path), C_GetFunctionList, C_Initialize (CKF_OS_LOCKING_OK) unless
 * already done.  ZD_EHSM with the reason in err.  On ZD_OK *out is the
 * shared module; release it with hsm_module_release(). */
zd_err hsm_module_acquire(const char *path, struct hsm_module **out, char *err, size_t errlen);
void hsm_module_release(struct hsm_module *m);
/* C_Finalize + C_Initialize when the caller is m's only user and we
 * initialised it, or C_Initialize when an earlier attempt failed: every
 * session and handle of m is gone afterwards (*done = 1).  ZD_OK with
 * *done = 0 when m is shared or another library initialised it (nothing
 * done).  ZD_EHSM when C_Initialize fails (m stays uninitialised; the next
 * call tries again). */
zd_err hsm_module_reinit(struct hsm_module *m, int *done, char *err, size_t errlen);
CK_FUNCTION_LIST_PTR hsm_module_functions(struct hsm_module *m);

/* Find the one slot whose token carries label.  ZD_EHSM with the labels
 * present in err when there is none or more than one. */
zd_err hsm_slot_find(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *out, char *err,
                     size_t errlen);
/* label padded with spaces to the 32 bytes of CK_TOKEN_INFO.label. */
void hsm_label_pad(const char *label, unsigned char out[32]);

struct hsm {
	char *module_path; /* owned copies of the configuration */
	char *token_label;
	char *pin_file;
	char *pin_env;
	int so; /* logs in as the security officer (hsm_config.so_login) */

	struct hsm_module *mod; /* NULL until the first successful connect */
	CK_FUNCTION_LIST_PTR f; /* mod's table */
	CK_SLOT_ID slot;        /* valid while connected */
	CK_SESSION_HANDLE ctl;  /* RW control session, logged in; valid while connected */
	uint64_t gen;           /* bumped by every (re)connect; handles of an older gen are dead */

	pthread_mutex_t lock; /* guards connected and sessions_open */
	int connected;
	unsigned sessions_open;

	struct hsm_key *keys; /* every live key of h (list); control thread only */
	uint16_t tag_override[64];
	size_t n_tag_override;
	char err[HSM_ERR_MAX];
};

/* Written by the control thread while no session signs with it: at load and
 * in hsm_reconnect() (which needs every session closed).  Signing threads
 * only read it. */
struct hsm_key {
	struct hsm *h; /* borrowed; NULL once h is freed */
	struct hsm_key *prev, *next;
	uint8_t alg;
	uint16_t bits;
	uint8_t id[HSM_ID_MAX];
	size_t id_len;
	char label[HSM_LABEL_MAX + 1];
	CK_OBJECT_HANDLE priv, pub;
	CK_OBJECT_HANDLE copy; /* in-token session copy of priv, or 0 */
	uint64_t gen;          /* handles valid while gen == h->gen */
	uint8_t pubkey[HSM_PUBKEY_MAX];
	size_t pubkey_len;
	size_t sig_len;
};

struct hsm_session {
	struct hsm *h;
	CK_SESSION_HANDLE sh;
	uint64_t gen;        /* h->gen when opened */
	uint64_t checked_ms; /* last look that the token is there (signing with a copy) */
	int lost;
	char err[HSM_ERR_MAX];
};

/* snprintf into err; a NULL err or errlen 0 is allowed. */
void hsm_err_set(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* "<what>: CKR_NAME (0x..)" */
void hsm_err_rv(char *err, size_t errlen, CK_RV rv, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* key.c: the DER curve OIDs of CKA_EC_PARAMS. */
extern const uint8_t hsm_oid_p256[10];
extern const uint8_t hsm_oid_ed25519[5];
/* key.c: one attribute of obj into buf[0..cap) (*len its length); up to max
 * handles of objects matching tmpl (ZD_ELIMIT when there are more, message
 * in h->err naming what); a new key linked to h for the private key priv
 * (ZD_EMALFORMED when it is no usable DNSSEC key pair). */
CK_RV hsm_attr_get(struct hsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf,
                   size_t cap, size_t *len);
zd_err hsm_objects_find(struct hsm *h, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *found,
                        size_t max, size_t *nfound, const char *what);
zd_err hsm_key_load(struct hsm *h, CK_OBJECT_HANDLE priv, struct hsm_key **out);
/* key.c: 1 when h is connected; else 0 with "not connected" in h->err.
 * Clears h->err. */
int hsm_connected_or_fail(struct hsm *h);

/* key.c: find k's objects again after a reconnect (by CKA_ID; the public
 * key must be the one cached); sets k->gen = h->gen on success. */
zd_err hsm_key_reload(struct hsm_key *k);

#endif
