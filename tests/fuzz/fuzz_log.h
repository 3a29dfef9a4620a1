/* tests/fuzz/fuzz_log.h -- zonedist's log for fuzz targets: lines go to an
 * anonymous in-memory file instead of stderr, so every level can run (its
 * formatting of untrusted names is fuzzed too) without flooding libFuzzer's
 * output, and a zd_check_failed() an input reached becomes a crash.
 * Threads: the fuzz target's only. */
#ifndef ZD_FUZZ_LOG_H
#define ZD_FUZZ_LOG_H

#include "common/zd_log.h"

/* Once, before the first input: log up to level into the memory file. */
void fuzz_log_init(enum zd_log_level level);
/* After each input: abort() with the log on stderr when it holds an
 * "internal check failed" line; then empty it. */
void fuzz_log_check(void);
/* Empty it unread: after a call whose logged check is known and expected. */
void fuzz_log_discard(void);

#endif
