/* common/zd_err.h -- the one error type every zonedist function returns.
 * Threads: any.  Results go to out-params, written only on ZD_OK. */
#ifndef ZD_ERR_H
#define ZD_ERR_H

typedef enum {
	ZD_OK = 0,
	ZD_ENOMEM,     /* allocation failed */
	ZD_EMALFORMED, /* peer, registry or config bytes do not parse */
	ZD_ELIMIT,     /* a configured limit would be exceeded */
	ZD_EDB,        /* PostgreSQL refused or went away */
	ZD_EHSM,       /* a PKCS#11 call failed */
	ZD_EIO,        /* a socket or file operation failed */
	ZD_ENOTFOUND,  /* the thing asked for does not exist (serial, zone, key) */
	ZD_EBUG,       /* an internal check failed */
	ZD_ERR_COUNT
} zd_err;

/* Never NULL; "unknown error" for a value outside the enum. */
const char *zd_strerror(zd_err e);

/* Recoverable internal check: logs file:line once per call site hit and yields
 * true when cond is false.  Use: if (zd_check_failed(x == y)) return ZD_EBUG; */
int zd_check_failed_at(int cond, const char *expr, const char *file, int line);
#define zd_check_failed(cond) zd_check_failed_at(!!(cond), #cond, __FILE__, __LINE__)

#endif
