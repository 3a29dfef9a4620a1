/* server/keybackup.h -- wrapped key backups (issue 7, docs/KEYS.md
 * "Backups").  Every key of a signing zone is copied, wrapped with the
 * wrapping key both tokens hold (hsm/hsm.h), into the backup token of the
 * hsm: backup: section, and into a backup file in its dir when one is set.
 * With dnssec keys require-backup, a rollover does not publish a key before
 * its backup exists, and zonedistd does not start while a key of the zone
 * has none.
 *
 * The backup token is connected only while a backup is made, then let go:
 * the main token must stay the module's only user in this process, or
 * SoftHSM would not see it come back after it went away.  Threads: the
 * batch thread (or start-up), which owns the signer. */
#ifndef ZD_KEYBACKUP_H
#define ZD_KEYBACKUP_H

#include <stddef.h>

#include "common/zd_config.h"
#include "common/zd_err.h"
#include "server/signer.h"

/* A connected struct hsm for the token of cfg (module: the main token's
 * when cfg has none), logged in as SO when so_pin_file is set, else with
 * cfg's PIN; the backup token, and the offline KSK's (server/kskbundle.h).
 * On failure err says why. */
struct hsm;
zd_err keybackup_token_open(const struct zd_hsm_config *cfg, const char *module,
                            const char *so_pin_file, struct hsm **out, char *err, size_t errlen);

/* Back up the zone's key of role tagged tag, unless the backup token holds
 * it already (and its file exists, when a dir is set).  ZD_OK without
 * doing anything when no backup is configured.  Else ZD_OK once the key is
 * in the backup token (checked there by one signature, hsm_key_unwrap()),
 * or the error with err saying why: the backup token cannot be reached, a
 * token lacks the wrapping key, the key was generated before backups were
 * configured (not wrappable), the file cannot be written. */
zd_err keybackup_key(struct signer *sg, enum signer_role role, uint16_t tag, char *err,
                     size_t errlen);
/* keybackup_key() for every key of the zone in the token.  A failure is
 * logged as an alarm; with require-backup it is returned (the first one),
 * else ZD_OK. */
zd_err keybackup_sweep(struct signer *sg, char *err, size_t errlen);

/* zonedistd --install-wrap-key TOKEN --so-pin-file F --wrap-key-file K:
 * install the wrapping key (hsm backup wrap-key) in token TOKEN of the
 * configured module (the backup's when TOKEN is the backup token), logged
 * in as SO with the PIN in F.  The 32-byte key is read from K (64 hex
 * digits); when K does not exist a new random key is written there first
 * (mode 0400), for the key custodians to install it in the other token and
 * to keep offline.  Prints the key's check value (the first 8 bytes of
 * SHA-256 of the key) so the custodians can tell that both tokens got the
 * same key.  Returns the exit status. */
int keybackup_install_wrapkey(const struct zd_config *cfg, const char *token,
                              const char *so_pin_file, const char *key_file);
/* zonedistd --restore-keys [FILE...]: unwrap each backup file into the
 * main token (hsm: token-label), or, without files, copy every key of the
 * configured zones from the backup token to it.  A key the token holds
 * already is left as it is.  Prints a line per key; returns the exit
 * status (1 when any key failed). */
int keybackup_restore(const struct zd_config *cfg, char **files, size_t n_files);

#endif
