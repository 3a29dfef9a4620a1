/* hsm/module.c -- PKCS#11 modules loaded by path, one C_Initialize per
 * module per process (PKCS#11 v2.40 s5.4: C_Initialize is per application),
 * shared by every struct hsm naming the same file. */
#include "hsm/hsm_priv.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/rv.h"

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hsm_module *modules; /* guarded by modules_lock */

void
hsm_err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
hsm_err_rv(char *err, size_t errlen, CK_RV rv, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, ": %s (0x%lx)", hsm_rv_name(rv), rv);
}

/* Called with modules_lock held. */
static zd_err
initialize(struct hsm_module *m, char *err, size_t errlen)
{
	/* The module makes its own locks with the OS primitives; we never
	 * pass mutex callbacks. */
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	CK_RV rv = m->f->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* Someone else in this process (another library) did; it also
		 * decides when to finalise. */
		m->initialized = 1;
		m->ours = 0;
		return ZD_OK;
	}
	if (rv != CKR_OK) {
		hsm_err_rv(err, errlen, rv, "C_Initialize");
		return ZD_EHSM;
	}
	m->initialized = 1;
	m->ours = 1;
	return ZD_OK;
}

zd_err
hsm_module_acquire(const char *path, struct hsm_module **out, char *err, size_t errlen)
{
	zd_err e = ZD_EHSM;
	struct hsm_module *m = NULL;
	void *dl = NULL;

	pthread_mutex_lock(&modules_lock);
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		const char *why = dlerror();
		hsm_err_set(err, errlen, "cannot load PKCS#11 module %s: %s", path,
		            why ? why : "dlopen failed");
		goto out;
	}
	for (m = modules; m != NULL; m = m->next)
		if (m->dl == dl)
			break;
	if (m != NULL) {
		dlclose(dl); /* the entry holds one reference already */
		dl = NULL;
	} else {
		CK_C_GetFunctionList get;
		void *sym = dlsym(dl, "C_GetFunctionList");
		if (sym == NULL) {
			hsm_err_set(err, errlen, "%s is no PKCS#11 module: no C_GetFunctionList",
			            path);
			goto out;
		}
		/* POSIX: a data pointer from dlsym may be used as a function pointer */
		memcpy(&get, &sym, sizeof get);
		CK_FUNCTION_LIST_PTR f = NULL;
		CK_RV rv = get(&f);
		if (rv != CKR_OK || f == NULL) {
			hsm_err_rv(err, errlen, rv, "C_GetFunctionList of %s", path);
			goto out;
		}
		if ((m = calloc(1, sizeof *m)) == NULL) {
			e = ZD_ENOMEM;
			goto out;
		}
		m->dl = dl;
		m->f = f;
		m->next = modules;
		modules = m;
		dl = NULL; /* m's reference, for the life of the process */
	}
	if (!m->initialized && (e = initialize(m, err, errlen)) != ZD_OK)
		goto out;
	m->users++;
	*out = m;
	e = ZD_OK;
out:
	if (dl != NULL)
		dlclose(dl);
	pthread_mutex_unlock(&modules_lock);
	return e;
}

/* A module, once loaded, stays loaded: PKCS#11 modules are often not safe
 * to unload (C++ static objects, helper threads, atexit handlers), and
 * finalising is what releases the token. */
void
hsm_module_release(struct hsm_module *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&modules_lock);
	if (!zd_check_failed(m->users > 0) && --m->users == 0 && m->initialized) {
		if (m->ours)
			m->f->C_Finalize(NULL);
		m->initialized = 0;
	}
	pthread_mutex_unlock(&modules_lock);
}

zd_err
hsm_module_reinit(struct hsm_module *m, int *done, char *err, size_t errlen)
{
	zd_err e = ZD_OK;
	pthread_mutex_lock(&modules_lock);
	if (m->initialized) {
		if (m->users != 1 || !m->ours) {
			*done = 0;
			goto out;
		}
		m->f->C_Finalize(NULL);
		m->initialized = 0;
	}
	/* Not initialised: C_Finalize above, or an earlier attempt failed. */
	e = initialize(m, err, errlen);
	if (e == ZD_OK)
		*done = 1;
out:
	pthread_mutex_unlock(&modules_lock);
	return e;
}

CK_FUNCTION_LIST_PTR
hsm_module_functions(struct hsm_module *m)
{
	return m->f; /* set once at load, never changes */
}
