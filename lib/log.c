#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char prog[32] = "sf";
static int min_level = SF_LOG_INFO;

void sf_log_init(const char *progname) {
        const char *dbg = getenv("SF_DEBUG");

        if (progname)
                snprintf(prog, sizeof(prog), "%s", progname);
        if (dbg && *dbg && strcmp(dbg, "0") != 0)
                min_level = SF_LOG_DEBUG;
}

void sf_log(int level, const char *fmt, ...) {
        static const char *names[] = {"debug", "info", "warn", "error"};
        char line[2048], ts[32];
        struct timespec now;
        struct tm tm;
        va_list ap;

        if (level < min_level)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s.%03ld %s %s %s\n", ts, now.tv_nsec / 1000000, prog,
                names[level < 0 || level > 3 ? 1 : level], line);
}
