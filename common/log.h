/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Each line has ts, level, msg, src (file:line) and, when known, request_id.
 * Writes are one write(2) per line so lines from several threads never
 * interleave. Never pass keys, passwords or raw IP addresses. */
#ifndef MILEPOST_COMMON_LOG_H
#define MILEPOST_COMMON_LOG_H

#include <stdbool.h>

enum log_level {
	LVL_DEBUG = 0,
	LVL_INFO,
	LVL_WARN,
	LVL_ERROR,
};

void log_set_level(enum log_level level);
bool log_is_enabled(enum log_level level);

/* Parses "debug", "info", "warn" or "error". */
bool log_level_parse(const char *name, enum log_level *out);

void log_write(enum log_level level, const char *src_file, int src_line,
    const char *request_id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* The level is checked before the arguments are evaluated. */
#define log_at(level, request_id, ...)                                       \
	do {                                                                 \
		if (log_is_enabled(level)) {                                 \
			log_write(level, __FILE__, __LINE__, request_id,     \
			    __VA_ARGS__);                                    \
		}                                                            \
	} while (0)

#define log_debug(...) log_at(LVL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_at(LVL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_at(LVL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_at(LVL_ERROR, NULL, __VA_ARGS__)

#endif
