/* hsm/token_init.c -- a fresh token through C_InitToken and C_InitPIN. */
#include "hsm/token_init.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hsm/hsm_priv.h"

zd_err
hsm_softhsm_setup(const char *dir, char *err, size_t errlen)
{
	char tokens[4096], conf[4096];
	zd_err e = ZD_EIO;
	FILE *fp = NULL;

	if ((size_t)snprintf(tokens, sizeof tokens, "%s/tokens", dir) >= sizeof tokens ||
	    (size_t)snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir) >= sizeof conf) {
		hsm_err_set(err, errlen, "directory name too long: %s", dir);
		return ZD_ELIMIT;
	}
	if (mkdir(tokens, 0700) != 0 && errno != EEXIST) {
		hsm_err_set(err, errlen, "mkdir %s: %s", tokens, strerror(errno));
		goto out;
	}
	if ((fp = fopen(conf, "w")) == NULL) {
		hsm_err_set(err, errlen, "cannot write %s: %s", conf, strerror(errno));
		goto out;
	}
	if (fprintf(fp,
	            "directories.tokendir = %s\n"
	            "objectstore.backend = file\n"
	            "log.level = ERROR\n"
	            "slots.removable = false\n",
	            tokens) < 0 ||
	    fclose(fp) != 0) {
		fp = NULL;
		hsm_err_set(err, errlen, "cannot write %s: %s", conf, strerror(errno));
		goto out;
	}
	fp = NULL;
	if (setenv("SOFTHSM2_CONF", conf, 1) != 0) {
		hsm_err_set(err, errlen, "setenv SOFTHSM2_CONF: %s", strerror(errno));
		goto out;
	}
	e = ZD_OK;
out:
	if (fp != NULL)
		fclose(fp);
	return e;
}

/* The first slot with a token that is present but not initialised. */
static zd_err
free_slot_find(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID *out, char *err, size_t errlen)
{
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_GetSlotList");
		return ZD_EHSM;
	}
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			*out = slots[i];
			return ZD_OK;
		}
	}
	hsm_err_set(err, errlen, "no slot with an uninitialised token among %lu", nslots);
	return ZD_EHSM;
}

zd_err
hsm_token_init(const char *module_path, const char *label, const char *so_pin, const char *user_pin,
               char *err, size_t errlen)
{
	struct hsm_module *m = NULL;
	CK_SESSION_HANDLE sh = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	unsigned char padded[32];
	int logged_in = 0;
	zd_err e;
	CK_RV rv;

	if (label[0] == '\0' || strlen(label) > 32 || so_pin[0] == '\0' || user_pin[0] == '\0') {
		hsm_err_set(err, errlen, "label must have 1..32 bytes, PINs at least one");
		return ZD_EMALFORMED;
	}
	if ((e = hsm_module_acquire(module_path, &m, err, errlen)) != ZD_OK)
		return e;
	CK_FUNCTION_LIST_PTR f = hsm_module_functions(m);
	e = ZD_EHSM;
	if (free_slot_find(f, &slot, err, errlen) != ZD_OK)
		goto out;
	hsm_label_pad(label, padded);
	rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin), padded);
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_InitToken '%s'", label);
		goto out;
	}
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
	if (rv != CKR_OK) {
		sh = CK_INVALID_HANDLE;
		hsm_err_rv(err, errlen, rv, "C_OpenSession on new token '%s'", label);
		goto out;
	}
	rv = f->C_Login(sh, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, (CK_ULONG)strlen(so_pin));
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_Login as SO to new token '%s'", label);
		goto out;
	}
	logged_in = 1;
	rv = f->C_InitPIN(sh, (CK_UTF8CHAR_PTR)user_pin, (CK_ULONG)strlen(user_pin));
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_InitPIN on new token '%s'", label);
		goto out;
	}
	e = ZD_OK;
out:
	if (logged_in)
		f->C_Logout(sh);
	if (sh != CK_INVALID_HANDLE)
		f->C_CloseSession(sh);
	hsm_module_release(m);
	return e;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
hsm_softhsm_remove(const char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
