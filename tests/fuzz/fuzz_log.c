/* tests/fuzz/fuzz_log.c -- see fuzz_log.h. */
#include "tests/fuzz/fuzz_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOG_SCAN_MAX (1u << 20) /* bytes of log read back per input */

/* What zd_check_failed_at() writes after the time stamp.  Matched at that
 * place only: a logged query name cannot fake it. */
#define CHECK_FAILED "error: bug: internal check failed at "

static int log_fd = -1;

static int
has_check_failed(const char *log)
{
	for (const char *line = log; *line != '\0';) {
		const char *sp = strchr(line, ' ');
		const char *nl = strchr(line, '\n');
		if (sp != NULL && (nl == NULL || sp < nl) &&
		    strncmp(sp + 1, CHECK_FAILED, strlen(CHECK_FAILED)) == 0)
			return 1;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return 0;
}

void
fuzz_log_init(enum zd_log_level level)
{
	log_fd = memfd_create("zd-fuzz-log", MFD_CLOEXEC);
	if (log_fd < 0) {
		perror("fuzz: memfd_create");
		abort(); /* the harness cannot run: not an input's fault */
	}
	zd_log_fd_set(log_fd);
	zd_log_level_set(level);
}

void
fuzz_log_check(void)
{
	static char buf[LOG_SCAN_MAX + 1];
	off_t end = lseek(log_fd, 0, SEEK_CUR);

	if (end <= 0)
		return;
	size_t n = end > (off_t)LOG_SCAN_MAX ? LOG_SCAN_MAX : (size_t)end;
	ssize_t r = pread(log_fd, buf, n, 0);
	if (r < 0)
		r = 0;
	buf[r] = '\0';
	if (has_check_failed(buf)) {
		fprintf(stderr, "fuzz: the input reached a zd_check_failed():\n%s", buf);
		abort();
	}
	fuzz_log_discard();
}

void
fuzz_log_discard(void)
{
	if (ftruncate(log_fd, 0) != 0 || lseek(log_fd, 0, SEEK_SET) != 0) {
		perror("fuzz: emptying the log");
		abort();
	}
}
