#include "server/serial.h"

#include <time.h>

int
serial_lt(uint32_t a, uint32_t b)
{
	/* RFC 1982 s3.2, SERIAL_BITS = 32 */
	return (a < b && b - a < 0x80000000u) || (a > b && a - b > 0x80000000u);
}

static uint32_t
policy_value(enum zd_serial_policy p, uint64_t now_s)
{
	struct tm tm;
	time_t t = (time_t)now_s;

	switch (p) {
	case ZD_SERIAL_UNIXTIME:
		return (uint32_t)now_s;
	case ZD_SERIAL_DATECOUNTER:
		gmtime_r(&t, &tm);
		return (uint32_t)((tm.tm_year + 1900) * 1000000 + (tm.tm_mon + 1) * 10000 +
		                  tm.tm_mday * 100);
	case ZD_SERIAL_INCREMENT:
	default:
		return 1;
	}
}

uint32_t
serial_first(enum zd_serial_policy p, uint64_t now_s)
{
	return policy_value(p, now_s);
}

uint32_t
serial_next(enum zd_serial_policy p, uint32_t prev, uint64_t now_s)
{
	uint32_t v = policy_value(p, now_s);
	if (p != ZD_SERIAL_INCREMENT && serial_lt(prev, v))
		return v;
	return prev + 1u; /* wraps modulo 2^32 as RFC 1982 addition does */
}
