/* server/keybackup.c -- wrapped key backups to a second token and to files,
 * the wrapping key ceremony and the restore (server/keybackup.h). */
#include "server/keybackup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"
#include "common/zd_zonemd.h"
#include "hsm/hsm.h"
#include "server/signer_priv.h"

#define WRAPKEY_HEX (2 * HSM_WRAPKEY_BYTES)

/* A connected struct hsm for cfg (the main token's module when cfg has
 * none), logged in as SO when so_pin_file is set. */
zd_err
keybackup_token_open(const struct zd_hsm_config *cfg, const char *module, const char *so_pin_file,
                     struct hsm **out, char *err, size_t errlen)
{
	struct hsm_config c = {
	        .module_path = cfg->module ? cfg->module : module,
	        .token_label = cfg->token_label,
	        .pin_file = so_pin_file ? so_pin_file : cfg->pin_file,
	        .pin_env = so_pin_file ? NULL : cfg->pin_env,
	        .so_login = so_pin_file != NULL,
	};
	struct hsm *h = NULL;
	zd_err e = hsm_new(&c, &h);
	if (e != ZD_OK) {
		snprintf(err, errlen, "token '%s': %s", cfg->token_label, zd_strerror(e));
		return e;
	}
	if ((e = hsm_connect(h)) != ZD_OK) {
		snprintf(err, errlen, "%s", hsm_error_get(h));
		hsm_free(h);
		return e;
	}
	*out = h;
	return ZD_OK;
}

#define PATH_CAP 4096

/* dir/<zone><ROLE>-<tag>-<CKA_ID>.wrapped into path[PATH_CAP]. */
static zd_err
file_path(const char *dir, const char *zone, const char *role, uint16_t tag, const uint8_t *id,
          size_t id_len, char *path, char *err, size_t errlen)
{
	char hex[2 * HSM_ID_MAX + 1];
	zd_hex_encode(id, id_len, hex);
	int n = snprintf(path, PATH_CAP, "%s/%s%s-%05u-%s.wrapped", dir, zone, role, tag, hex);
	if (n < 0 || (size_t)n + 5 >= PATH_CAP) { /* room for ".tmp" */
		snprintf(err, errlen, "backup dir %s: path too long", dir);
		return ZD_ELIMIT;
	}
	return ZD_OK;
}

/* The backup file at path (in dir), written whole or not at all. */
static zd_err
file_write(const char *dir, const char *path, const struct hsm_wrapped *w, char *err, size_t errlen)
{
	char tmp[PATH_CAP];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "backup dir %s: %s", dir, strerror(errno));
		return ZD_EIO;
	}
	char *text = malloc(HSM_WRAPPED_TEXT_MAX);
	size_t len = 0;
	if (text == NULL)
		return ZD_ENOMEM;
	zd_err e = hsm_wrapped_encode(w, text, HSM_WRAPPED_TEXT_MAX, &len);
	if (e != ZD_OK) {
		snprintf(err, errlen, "backup of key '%s' does not fit a file", w->label);
		free(text);
		return e;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	e = ZD_EIO;
	if (fd >= 0) {
		size_t off = 0;
		while (off < len) {
			ssize_t r = write(fd, text + off, len - off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			off += (size_t)r;
		}
		if (off == len && fsync(fd) == 0 && close(fd) == 0) {
			fd = -1;
			if (rename(tmp, path) == 0)
				e = ZD_OK;
		}
	}
	if (e != ZD_OK) {
		snprintf(err, errlen, "writing backup file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	free(text);
	return e;
}

zd_err
keybackup_key(struct signer *sg, enum signer_role role, uint16_t tag, char *err, size_t errlen)
{
	const struct zd_hsm_config *hc = sg->tk->hc;
	const struct zd_hsm_config *b = hc->backup;
	const char *rname = role == SIGNER_KSK ? "KSK" : "ZSK";
	struct hsm *bk = NULL;
	struct hsm_key *there = NULL;
	struct hsm_wrapped *w = NULL;
	char path[PATH_CAP] = "";
	int in_token = 0, in_file = 1, existed = 0;
	zd_err e;

	if (b == NULL)
		return ZD_OK;
	struct hsm_key *k = signer_key_find(sg, role, tag);
	if (k == NULL) {
		snprintf(err, errlen, "the token has no %s %u", rname, tag);
		return ZD_ENOTFOUND;
	}
	if ((w = calloc(1, sizeof *w)) == NULL)
		return ZD_ENOMEM;
	if ((e = keybackup_token_open(b, hc->module, NULL, &bk, err, errlen)) != ZD_OK)
		goto out;
	size_t id_len = 0, pub_len = 0;
	const uint8_t *id = hsm_key_id_get(k, &id_len);
	const uint8_t *pub = hsm_key_pubkey_get(k, &pub_len);
	if ((e = hsm_key_find(bk, id, id_len, &there)) != ZD_OK) {
		snprintf(err, errlen, "%s", hsm_error_get(bk));
		goto out;
	}
	if (there != NULL) {
		size_t len = 0;
		const uint8_t *p = hsm_key_pubkey_get(there, &len);
		if (len != pub_len || memcmp(p, pub, len) != 0) {
			snprintf(err, errlen,
			         "backup token '%s' has another key with the CKA_ID of %s %u",
			         b->token_label, rname, tag);
			e = ZD_EHSM;
			goto out;
		}
		in_token = 1;
	}
	if (b->dir != NULL) {
		struct stat st;
		if ((e = file_path(b->dir, sg->zc->name, rname, tag, id, id_len, path, err,
		                   errlen)) != ZD_OK)
			goto out;
		in_file = stat(path, &st) == 0;
	}
	if (in_token && in_file)
		goto out; /* backed up already */
	if ((e = hsm_key_wrap(k, b->wrap_key, w)) != ZD_OK) {
		const char *why = hsm_error_get(sg->tk->h);
		snprintf(
		        err, errlen, "%s%s", why,
		        e != ZD_EHSM ? ""
		        : strstr(why, "UNEXTRACTABLE")
		                ? " (generated before backups were configured: it can never "
		                  "be backed up; roll it)"
		        : strstr(why, "CKR_KEY_NOT_WRAPPABLE") &&
		                        hsm_key_alg_get(k) == HSM_ALG_ED25519
		                ? " (some modules, SoftHSM 2.6.1 among them, wrap no EdDSA private "
		                  "key: docs/KEYS.md \"Backups\")"
		                : "");
		goto out;
	}
	if (!in_token) {
		struct hsm_key *r = NULL;
		if ((e = hsm_key_unwrap(bk, b->wrap_key, w, &r, &existed)) != ZD_OK) {
			snprintf(err, errlen, "%s", hsm_error_get(bk));
			goto out;
		}
		hsm_key_free(r);
	}
	if (!in_file && (e = file_write(b->dir, path, w, err, errlen)) != ZD_OK)
		goto out;
	zd_log(ZD_LOG_NOTICE, "keybackup", sg->zc->name,
	       "%s %u (key '%s') backed up, wrapped with '%s', to token '%s'%s%s", rname, tag,
	       hsm_key_label_get(k), b->wrap_key, b->token_label, path[0] ? " and file " : "",
	       path);
out:
	if (w != NULL)
		OPENSSL_cleanse(w, sizeof *w);
	free(w);
	hsm_key_free(there);
	hsm_free(bk);
	return e;
}

zd_err
keybackup_sweep(struct signer *sg, char *err, size_t errlen)
{
	zd_err first = ZD_OK;
	if (sg->tk->hc->backup == NULL)
		return ZD_OK;
	for (int role = SIGNER_ZSK; role <= SIGNER_KSK; role++) {
		uint16_t tags[SIGNER_ZSKS_MAX];
		size_t n = signer_key_tags_get(sg, (enum signer_role)role, tags, SIGNER_ZSKS_MAX);
		for (size_t i = 0; i < n && i < SIGNER_ZSKS_MAX; i++) {
			char why[1024];
			zd_err e =
			        keybackup_key(sg, (enum signer_role)role, tags[i], why, sizeof why);
			if (e == ZD_OK)
				continue;
			zd_log(ZD_LOG_ERROR, "keybackup", sg->zc->name,
			       "ALARM: %s %u has no backup: %s", role == SIGNER_KSK ? "KSK" : "ZSK",
			       tags[i], why);
			if (first == ZD_OK && sg->p->keys.require_backup) {
				snprintf(err, errlen,
				         "zone %s: require-backup: %s %u has no backup: %s",
				         sg->zc->name, role == SIGNER_KSK ? "KSK" : "ZSK", tags[i],
				         why);
				first = e;
			}
		}
	}
	return first;
}

/* ---- the offline commands ---- */

/* The key from path, or a new one written there. */
static int
wrapkey_get(const char *path, uint8_t key[HSM_WRAPKEY_BYTES], int *made)
{
	char text[WRAPKEY_HEX + 2];
	*made = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (RAND_priv_bytes(key, HSM_WRAPKEY_BYTES) != 1) {
			fprintf(stderr, "zonedistd: no random bytes for a wrapping key\n");
			return -1;
		}
		zd_hex_encode(key, HSM_WRAPKEY_BYTES, text);
		text[WRAPKEY_HEX] = '\n';
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
		int ok = fd >= 0 && write(fd, text, WRAPKEY_HEX + 1) == WRAPKEY_HEX + 1 &&
		         fsync(fd) == 0;
		if (fd >= 0)
			ok = close(fd) == 0 && ok;
		OPENSSL_cleanse(text, sizeof text);
		if (!ok) {
			fprintf(stderr, "zonedistd: writing wrapping key file %s: %s\n", path,
			        strerror(errno));
			return -1;
		}
		*made = 1;
		return 0;
	}
	if (fd < 0) {
		fprintf(stderr, "zonedistd: wrapping key file %s: %s\n", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, text, sizeof text);
	close(fd);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	size_t got = 0;
	int ok = n == WRAPKEY_HEX &&
	         zd_hex_decode(text, (size_t)n, key, HSM_WRAPKEY_BYTES, &got) == ZD_OK;
	OPENSSL_cleanse(text, sizeof text);
	if (!ok) {
		fprintf(stderr, "zonedistd: wrapping key file %s must hold %d hex digits\n", path,
		        WRAPKEY_HEX);
		return -1;
	}
	return 0;
}

int
keybackup_install_wrapkey(const struct zd_config *cfg, const char *token, const char *so_pin_file,
                          const char *key_file)
{
	const struct zd_hsm_config *b = cfg->hsm.backup;
	uint8_t key[HSM_WRAPKEY_BYTES], digest[32];
	unsigned dlen = 0;
	char err[1024];
	int made = 0, rc = 1;
	struct hsm *h = NULL;

	if (b == NULL) {
		fprintf(stderr, "zonedistd: the hsm: section has no backup: token, so no wrapping "
		                "key is used\n");
		return 1;
	}
	/* the token's module: the backup's when it is the backup token */
	struct zd_hsm_config where = strcmp(token, b->token_label) == 0 ? *b : cfg->hsm;
	where.token_label = (char *)token;
	if (wrapkey_get(key_file, key, &made) != 0)
		return 1;
	if (keybackup_token_open(&where, cfg->hsm.module, so_pin_file, &h, err, sizeof err) !=
	    ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", err);
		goto out;
	}
	if (hsm_wrapkey_install(h, b->wrap_key, key) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", hsm_error_get(h));
		goto out;
	}
	EVP_Digest(key, sizeof key, digest, &dlen, EVP_sha256(), NULL);
	printf("installed wrapping key '%s' in token '%s' (check value %02x%02x%02x%02x%02x%02x"
	       "%02x%02x)%s\n",
	       b->wrap_key, token, digest[0], digest[1], digest[2], digest[3], digest[4], digest[5],
	       digest[6], digest[7],
	       made ? "; the key is new: install it from the same file in the other token, "
	              "then keep the file offline"
	            : "");
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof key);
	hsm_free(h);
	return rc;
}

static int
file_read(const char *path, char **out, size_t *len)
{
	FILE *fp = fopen(path, "re");
	if (fp == NULL)
		return -1;
	char *buf = malloc(HSM_WRAPPED_TEXT_MAX + 1);
	size_t n = buf ? fread(buf, 1, HSM_WRAPPED_TEXT_MAX + 1, fp) : 0;
	int bad = buf == NULL || ferror(fp) || n > HSM_WRAPPED_TEXT_MAX;
	fclose(fp);
	if (bad) {
		free(buf);
		errno = buf == NULL ? ENOMEM : EFBIG;
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Unwrap w into h; prints the outcome.  0 on success. */
static int
restore_one(struct hsm *h, const char *wrap_key, const struct hsm_wrapped *w, const char *from)
{
	struct hsm_key *k = NULL;
	int existed = 0;
	if (hsm_key_unwrap(h, wrap_key, w, &k, &existed) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s: %s\n", from, hsm_error_get(h));
		return 1;
	}
	printf("%s key '%s' (%s, key tag %u as ZSK, %u as KSK) from %s\n",
	       existed ? "kept" : "restored", w->label, hsm_alg_name(w->alg),
	       hsm_key_tag_get(k, HSM_DNSKEY_ZSK), hsm_key_tag_get(k, HSM_DNSKEY_KSK), from);
	hsm_key_free(k);
	return 0;
}

int
keybackup_restore(const struct zd_config *cfg, char **files, size_t n_files)
{
	const struct zd_hsm_config *b = cfg->hsm.backup;
	struct hsm *h = NULL, *bk = NULL;
	struct hsm_wrapped *w = calloc(1, sizeof *w);
	char err[1024];
	int failed = 0;

	if (!cfg->has_hsm || b == NULL) {
		fprintf(stderr, "zonedistd: --restore-keys needs the hsm: section with its backup: "
		                "token (the wrapping key's label)\n");
		free(w);
		return 1;
	}
	if (w == NULL ||
	    keybackup_token_open(&cfg->hsm, NULL, NULL, &h, err, sizeof err) != ZD_OK) {
		fprintf(stderr, "zonedistd: %s\n", w ? err : "out of memory");
		free(w);
		return 1;
	}
	for (size_t i = 0; i < n_files; i++) {
		char *text = NULL;
		size_t len = 0;
		if (file_read(files[i], &text, &len) != 0) {
			fprintf(stderr, "zonedistd: %s: %s\n", files[i], strerror(errno));
			failed = 1;
			continue;
		}
		zd_err e = hsm_wrapped_decode(text, len, w, err, sizeof err);
		OPENSSL_cleanse(text, len);
		free(text);
		if (e != ZD_OK) {
			fprintf(stderr, "zonedistd: %s: not a key backup: %s\n", files[i], err);
			failed = 1;
			continue;
		}
		failed |= restore_one(h, b->wrap_key, w, files[i]);
	}
	if (n_files == 0) {
		if (keybackup_token_open(b, cfg->hsm.module, NULL, &bk, err, sizeof err) != ZD_OK) {
			fprintf(stderr, "zonedistd: backup token: %s\n", err);
			failed = 1;
		}
		for (size_t z = 0; bk != NULL && z < cfg->n_zones; z++) {
			char prefix[300];
			struct hsm_key **keys = NULL;
			size_t n = 0;
			snprintf(prefix, sizeof prefix, "%s ", cfg->zones[z].name);
			if (hsm_key_list(bk, prefix, &keys, &n) != ZD_OK) {
				fprintf(stderr, "zonedistd: backup token: %s\n", hsm_error_get(bk));
				failed = 1;
				continue;
			}
			for (size_t i = 0; i < n; i++) {
				char from[400];
				snprintf(from, sizeof from, "token '%s'", b->token_label);
				if (hsm_key_wrap(keys[i], b->wrap_key, w) != ZD_OK) {
					fprintf(stderr, "zonedistd: key '%s': %s\n",
					        hsm_key_label_get(keys[i]), hsm_error_get(bk));
					failed = 1;
					continue;
				}
				failed |= restore_one(h, b->wrap_key, w, from);
			}
			hsm_key_list_free(keys, n);
		}
	}
	OPENSSL_cleanse(w, sizeof *w);
	free(w);
	hsm_free(bk);
	hsm_free(h);
	return failed;
}
