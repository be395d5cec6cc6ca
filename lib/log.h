/* Logging: one line per message on stderr, "<time> <prog> <level> <text>". */
#pragma once
#include <stdarg.h>

enum { SF_LOG_DEBUG = 0, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERR };

void sf_log_init(const char *progname);
void sf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) sf_log(SF_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  sf_log(SF_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  sf_log(SF_LOG_WARN, __VA_ARGS__)
#define log_err(...)   sf_log(SF_LOG_ERR, __VA_ARGS__)
