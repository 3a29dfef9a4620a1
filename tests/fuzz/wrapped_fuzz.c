/* tests/fuzz/wrapped_fuzz.c -- libFuzzer target for hsm_wrapped_decode(),
 * the reader of key backup files (zonedistd --restore-keys): the input is
 * the file.  A refused one must say why in err; an accepted one must encode
 * again and decode to the same backup.  Must never crash, leak or read past
 * size (the input is not NUL-terminated). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/hsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const struct hsm_wrapped *a, const struct hsm_wrapped *b)
{
	return a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0 &&
	       strcmp(a->label, b->label) == 0 && a->alg == b->alg &&
	       a->pubkey_len == b->pubkey_len && memcmp(a->pubkey, b->pubkey, a->pubkey_len) == 0 &&
	       a->blob_len == b->blob_len && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hsm_wrapped w, again;
	static char text[HSM_WRAPPED_TEXT_MAX];
	char err[256];
	size_t len = 0;

	err[0] = '\0';
	if (hsm_wrapped_decode((const char *)data, size, &w, err, sizeof err) != ZD_OK) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
			abort(); /* no reason given, or unterminated */
		return 0;
	}
	if (hsm_wrapped_encode(&w, text, sizeof text, &len) != ZD_OK)
		abort(); /* whatever decodes fits the text form */
	if (hsm_wrapped_decode(text, len, &again, err, sizeof err) != ZD_OK || !same(&w, &again))
		abort();
	return 0;
}
