#include "zd_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum zd_log_level max_level = ZD_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void
zd_log_level_set(enum zd_log_level max)
{
	max_level = max;
}

enum zd_log_level
zd_log_level_get(void)
{
	return max_level;
}

int
zd_log_level_parse(const char *word)
{
	for (unsigned i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(word, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
zd_log_fd_set(int fd)
{
	log_fd = fd;
}

void
zd_log(enum zd_log_level level, const char *subsys, const char *zone, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int r;

	if (level > max_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof line - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
	             level_names[level <= ZD_LOG_DEBUG ? level : ZD_LOG_DEBUG]);
	if (r > 0)
		n += (size_t)r;
	if (zone != NULL && n < sizeof line) {
		r = snprintf(line + n, sizeof line - n, "[%s] ", zone);
		if (r > 0)
			n += (size_t)r;
	}
	if (subsys != NULL && n < sizeof line) {
		r = snprintf(line + n, sizeof line - n, "%s: ", subsys);
		if (r > 0)
			n += (size_t)r;
	}
	if (n < sizeof line) {
		va_start(ap, fmt);
		r = vsnprintf(line + n, sizeof line - n, fmt, ap);
		va_end(ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2; /* cut, keep room for the newline */
	line[n++] = '\n';
	/* One write per line so lines from threads do not interleave. */
	ssize_t w = write(log_fd, line, n);
	(void)w;
}

void
zd_ratelimit_init(struct zd_ratelimit *rl, uint32_t interval_ms, uint32_t burst)
{
	memset(rl, 0, sizeof *rl);
	rl->interval_ms = interval_ms;
	rl->burst = burst;
}

int
zd_ratelimit_ok(struct zd_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed_out)
{
	if (now_ms - rl->window_start_ms >= rl->interval_ms) {
		rl->window_start_ms = now_ms;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return 0;
	}
	rl->used++;
	*suppressed_out = rl->suppressed;
	rl->suppressed = 0;
	return 1;
}

uint64_t
zd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
zd_wallclock_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

uint64_t
zd_wallclock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
