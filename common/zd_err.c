#include <stddef.h>

#include "zd_err.h"
#include "zd_log.h"

static const char *const messages[ZD_ERR_COUNT] = {
        [ZD_OK] = "success",
        [ZD_ENOMEM] = "out of memory",
        [ZD_EMALFORMED] = "malformed input",
        [ZD_ELIMIT] = "limit exceeded",
        [ZD_EDB] = "database error",
        [ZD_EHSM] = "HSM error",
        [ZD_EIO] = "I/O error",
        [ZD_ENOTFOUND] = "not found",
        [ZD_EBUG] = "internal error",
};

const char *
zd_strerror(zd_err e)
{
	if ((unsigned)e >= ZD_ERR_COUNT || messages[e] == NULL)
		return "unknown error";
	return messages[e];
}

int
zd_check_failed_at(int cond, const char *expr, const char *file, int line)
{
	if (cond)
		return 0;
	zd_log(ZD_LOG_ERROR, "bug", NULL, "internal check failed at %s:%d: %s", file, line, expr);
	return 1;
}
