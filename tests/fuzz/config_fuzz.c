/* tests/fuzz/config_fuzz.c -- libFuzzer target for zd_config_parse(): the
 * input is the YAML text.  A parsed config is looked up (every key and zone
 * by name) and freed; a refused one must leave *out alone and say why in
 * err.  Must never crash, leak, assert or read past len (the input is not
 * NUL-terminated: libFuzzer's buffer ends exactly at size). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/zd_config.h"
#include "common/zd_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zd_config *cfg = NULL;
	char err[256];

	zd_log_level_set(ZD_LOG_ERROR);
	if (zd_config_parse((const char *)data, size, &cfg, err, sizeof err) != ZD_OK) {
		if (cfg != NULL || memchr(err, '\0', sizeof err) == NULL)
			abort(); /* out-param written on failure, or err unterminated */
		return 0;
	}
	for (size_t i = 0; i < cfg->n_keys; i++)
		if (zd_config_key_find(cfg, cfg->keys[i].name) == NULL)
			abort();
	for (size_t i = 0; i < cfg->n_zones; i++)
		if (zd_config_zone_find(cfg, cfg->zones[i].name) == NULL)
			abort();
	zd_config_free(cfg);
	return 0;
}
