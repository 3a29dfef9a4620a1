/* hsm/rv.h -- names of PKCS#11 return values (CK_RV) for error messages.
 * Threads: any.  Limits: the codes of PKCS#11 v2.40 s11.1 that a module
 * commonly returns; others are named "CKR_VENDOR_DEFINED" (bit 31 set) or
 * "CKR_?" -- print the number next to the name.  Standards: PKCS#11 v2.40. */
#ifndef HSM_RV_H
#define HSM_RV_H

/* Never NULL; a static string.  rv is a CK_RV (unsigned long). */
const char *hsm_rv_name(unsigned long rv);

/* 1 when rv says the token, its session or the key object is gone (removed,
 * closed, handle no longer valid, library not initialised): the caller must
 * close its sessions and reconnect (hsm_reconnect()); else 0. */
int hsm_rv_is_lost(unsigned long rv);

#endif
