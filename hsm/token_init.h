/* hsm/token_init.h -- make a fresh token through PKCS#11 itself (no
 * softhsm2-util): for unit tests, benchmarks and the demo, never for a
 * production token.  Threads: one caller at a time; call it before any
 * struct hsm of the same module is connected (SoftHSM offers its free slot
 * only right after C_Initialize).  Standards: PKCS#11 v2.40 s5.5
 * (C_InitToken), s5.6 (C_InitPIN). */
#ifndef HSM_TOKEN_INIT_H
#define HSM_TOKEN_INIT_H

#include <stddef.h>

#include "common/zd_err.h"

/* Write dir/softhsm2.conf (token directory dir/tokens, created here; log
 * level ERROR) and point SOFTHSM2_CONF at it with setenv(), which is not
 * thread-safe: call it before starting threads and before the module is
 * loaded.  dir must exist.  ZD_EIO with errno text in err. */
zd_err hsm_softhsm_setup(const char *dir, char *err, size_t errlen);

/* Remove dir and everything below it (a throwaway token made with
 * hsm_softhsm_setup()); best effort, for tests and benchmarks. */
void hsm_softhsm_remove(const char *dir);

/* Initialise the first slot whose token is not initialised: C_InitToken
 * with so_pin and label, then C_InitPIN with user_pin in an SO session.
 * ZD_EHSM (reason in err) when the module does not load, has no free slot,
 * or refuses; ZD_EMALFORMED for a label longer than 32 bytes or empty PINs. */
zd_err hsm_token_init(const char *module_path, const char *label, const char *so_pin,
                      const char *user_pin, char *err, size_t errlen);

#endif
