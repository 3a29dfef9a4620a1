/* Unit tests of server/serial: RFC 1982 comparison and the three policies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/serial.h"

/* 2026-11-23T12:00:00Z */
#define NOW 1795435200u

static void
serial_lt_follows_rfc1982_including_wrap(void **state)
{
	(void)state;
	assert_true(serial_lt(1, 2));
	assert_false(serial_lt(2, 1));
	assert_false(serial_lt(5, 5));
	assert_true(serial_lt(0xffffffffu, 0));    /* wrap */
	assert_true(serial_lt(0xfffffff0u, 0x10)); /* wrap */
	assert_false(serial_lt(0x10, 0xfffffff0u));
	assert_false(serial_lt(0, 0x80000000u)); /* undefined pair: not less */
	assert_false(serial_lt(0x80000000u, 0));
	assert_true(serial_lt(0, 0x7fffffffu));
}

static void
increment_adds_one_and_wraps(void **state)
{
	(void)state;
	assert_int_equal(serial_first(ZD_SERIAL_INCREMENT, NOW), 1);
	assert_int_equal(serial_next(ZD_SERIAL_INCREMENT, 41, NOW), 42);
	assert_int_equal(serial_next(ZD_SERIAL_INCREMENT, 0xffffffffu, NOW), 0);
}

static void
unixtime_never_goes_backwards(void **state)
{
	(void)state;
	assert_int_equal(serial_first(ZD_SERIAL_UNIXTIME, NOW), NOW);
	assert_int_equal(serial_next(ZD_SERIAL_UNIXTIME, NOW - 100, NOW), NOW);
	/* two versions in the same second */
	assert_int_equal(serial_next(ZD_SERIAL_UNIXTIME, NOW, NOW), NOW + 1);
	/* the clock went back */
	assert_int_equal(serial_next(ZD_SERIAL_UNIXTIME, NOW + 50, NOW), NOW + 51);
}

static void
date_counter_counts_within_a_day_then_spills(void **state)
{
	(void)state;
	assert_int_equal(serial_first(ZD_SERIAL_DATECOUNTER, NOW), 2026112300u);
	assert_int_equal(serial_next(ZD_SERIAL_DATECOUNTER, 2026112200u, NOW), 2026112300u);
	assert_int_equal(serial_next(ZD_SERIAL_DATECOUNTER, 2026112300u, NOW), 2026112301u);
	assert_int_equal(serial_next(ZD_SERIAL_DATECOUNTER, 2026112399u, NOW), 2026112400u);
	/* a serial already ahead of the date keeps counting */
	assert_int_equal(serial_next(ZD_SERIAL_DATECOUNTER, 2030010100u, NOW), 2030010101u);
}

static void
every_policy_result_is_greater_than_prev(void **state)
{
	uint32_t prevs[] = {0,           1,           2026112300u, 0x7fffffffu, 0x80000000u,
	                    0xfffffffeu, 0xffffffffu, NOW,         NOW + 1};
	(void)state;
	for (int p = ZD_SERIAL_INCREMENT; p <= ZD_SERIAL_DATECOUNTER; p++)
		for (size_t i = 0; i < sizeof prevs / sizeof prevs[0]; i++)
			assert_true(serial_lt(
			        prevs[i], serial_next((enum zd_serial_policy)p, prevs[i], NOW)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(serial_lt_follows_rfc1982_including_wrap),
	        cmocka_unit_test(increment_adds_one_and_wraps),
	        cmocka_unit_test(unixtime_never_goes_backwards),
	        cmocka_unit_test(date_counter_counts_within_a_day_then_spills),
	        cmocka_unit_test(every_policy_result_is_greater_than_prev),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
