/* hsm/rv.c -- CK_RV names (PKCS#11 v2.40 s11.1 and pkcs11t.h). */
#include "hsm/rv.h"

#include <stddef.h>

#include <p11-kit/pkcs11.h>

struct rv_name {
	CK_RV rv;
	const char *name;
};

#define RV(x)                                                                                      \
	{                                                                                          \
		x, #x                                                                              \
	}
static const struct rv_name names[] = {
        RV(CKR_OK),
        RV(CKR_CANCEL),
        RV(CKR_HOST_MEMORY),
        RV(CKR_SLOT_ID_INVALID),
        RV(CKR_GENERAL_ERROR),
        RV(CKR_FUNCTION_FAILED),
        RV(CKR_ARGUMENTS_BAD),
        RV(CKR_NO_EVENT),
        RV(CKR_NEED_TO_CREATE_THREADS),
        RV(CKR_CANT_LOCK),
        RV(CKR_ATTRIBUTE_READ_ONLY),
        RV(CKR_ATTRIBUTE_SENSITIVE),
        RV(CKR_ATTRIBUTE_TYPE_INVALID),
        RV(CKR_ATTRIBUTE_VALUE_INVALID),
        RV(CKR_ACTION_PROHIBITED),
        RV(CKR_DATA_INVALID),
        RV(CKR_DATA_LEN_RANGE),
        RV(CKR_DEVICE_ERROR),
        RV(CKR_DEVICE_MEMORY),
        RV(CKR_DEVICE_REMOVED),
        RV(CKR_ENCRYPTED_DATA_INVALID),
        RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
        RV(CKR_FUNCTION_CANCELED),
        RV(CKR_FUNCTION_NOT_PARALLEL),
        RV(CKR_FUNCTION_NOT_SUPPORTED),
        RV(CKR_KEY_HANDLE_INVALID),
        RV(CKR_KEY_SIZE_RANGE),
        RV(CKR_KEY_TYPE_INCONSISTENT),
        RV(CKR_KEY_NOT_NEEDED),
        RV(CKR_KEY_CHANGED),
        RV(CKR_KEY_NEEDED),
        RV(CKR_KEY_INDIGESTIBLE),
        RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
        RV(CKR_KEY_NOT_WRAPPABLE),
        RV(CKR_KEY_UNEXTRACTABLE),
        RV(CKR_MECHANISM_INVALID),
        RV(CKR_MECHANISM_PARAM_INVALID),
        RV(CKR_OBJECT_HANDLE_INVALID),
        RV(CKR_OPERATION_ACTIVE),
        RV(CKR_OPERATION_NOT_INITIALIZED),
        RV(CKR_PIN_INCORRECT),
        RV(CKR_PIN_INVALID),
        RV(CKR_PIN_LEN_RANGE),
        RV(CKR_PIN_EXPIRED),
        RV(CKR_PIN_LOCKED),
        RV(CKR_SESSION_CLOSED),
        RV(CKR_SESSION_COUNT),
        RV(CKR_SESSION_HANDLE_INVALID),
        RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        RV(CKR_SESSION_READ_ONLY),
        RV(CKR_SESSION_EXISTS),
        RV(CKR_SESSION_READ_ONLY_EXISTS),
        RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
        RV(CKR_SIGNATURE_INVALID),
        RV(CKR_SIGNATURE_LEN_RANGE),
        RV(CKR_TEMPLATE_INCOMPLETE),
        RV(CKR_TEMPLATE_INCONSISTENT),
        RV(CKR_TOKEN_NOT_PRESENT),
        RV(CKR_TOKEN_NOT_RECOGNIZED),
        RV(CKR_TOKEN_WRITE_PROTECTED),
        RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
        RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
        RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
        RV(CKR_USER_ALREADY_LOGGED_IN),
        RV(CKR_USER_NOT_LOGGED_IN),
        RV(CKR_USER_PIN_NOT_INITIALIZED),
        RV(CKR_USER_TYPE_INVALID),
        RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
        RV(CKR_USER_TOO_MANY_TYPES),
        RV(CKR_WRAPPED_KEY_INVALID),
        RV(CKR_WRAPPED_KEY_LEN_RANGE),
        RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
        RV(CKR_WRAPPING_KEY_SIZE_RANGE),
        RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
        RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
        RV(CKR_RANDOM_NO_RNG),
        RV(CKR_DOMAIN_PARAMS_INVALID),
        RV(CKR_CURVE_NOT_SUPPORTED),
        RV(CKR_BUFFER_TOO_SMALL),
        RV(CKR_SAVED_STATE_INVALID),
        RV(CKR_INFORMATION_SENSITIVE),
        RV(CKR_STATE_UNSAVEABLE),
        RV(CKR_CRYPTOKI_NOT_INITIALIZED),
        RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        RV(CKR_MUTEX_BAD),
        RV(CKR_MUTEX_NOT_LOCKED),
        RV(CKR_NEW_PIN_MODE),
        RV(CKR_NEXT_OTP),
        RV(CKR_EXCEEDED_MAX_ITERATIONS),
        RV(CKR_FIPS_SELF_TEST_FAILED),
        RV(CKR_LIBRARY_LOAD_FAILED),
        RV(CKR_PIN_TOO_WEAK),
        RV(CKR_PUBLIC_KEY_INVALID),
        RV(CKR_FUNCTION_REJECTED),
};
#undef RV

const char *
hsm_rv_name(unsigned long rv)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].rv == rv)
			return names[i].name;
	if (rv & CKR_VENDOR_DEFINED)
		return "CKR_VENDOR_DEFINED";
	return "CKR_?";
}

int
hsm_rv_is_lost(unsigned long rv)
{
	switch (rv) {
	case CKR_DEVICE_REMOVED:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_CLOSED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	/* A handle found when the key was loaded only goes invalid when the
	 * object went away under us: SoftHSM answers this when its token
	 * directory disappears. */
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return 1;
	default:
		return 0;
	}
}
