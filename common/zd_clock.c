#include "common/zd_clock.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/zd_log.h"
#include "common/zd_parse.h"

static _Atomic uint64_t last_s;

const char *
zd_clock_file_get(void)
{
	const char *f = getenv("ZD_TEST_CLOCK_FILE");
	return f != NULL && f[0] != '\0' ? f : NULL;
}

uint64_t
zd_clock_s(void)
{
	const char *f = zd_clock_file_get();
	if (f == NULL)
		return zd_wallclock_s();
	char buf[32];
	ssize_t n = -1;
	int fd = open(f, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	uint64_t v = 0;
	if (n > 0) {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
			n--;
		buf[n] = '\0';
		if (zd_parse_u64(buf, 0, UINT64_MAX, &v) == ZD_OK) {
			atomic_store(&last_s, v);
			return v;
		}
	}
	v = atomic_load(&last_s);
	return v ? v : zd_wallclock_s();
}

size_t
zd_time_utc(uint64_t s, int iso, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)s;
	if (len > 0)
		buf[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL)
		return 0;
	return iso ? strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)
	           : strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}
