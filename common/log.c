/* log.c - JSON lines on stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "common/timeutil.h"

static atomic_int min_level = LVL_INFO;

static const char *const level_names[] = {
	[LVL_DEBUG] = "debug",
	[LVL_INFO] = "info",
	[LVL_WARN] = "warn",
	[LVL_ERROR] = "error",
};

void
log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

bool
log_is_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&min_level,
	    memory_order_relaxed);
}

bool
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	    i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void
log_write(enum log_level level, const char *src_file, int src_line,
    const char *request_id, const char *fmt, ...)
{
	char msg[1024], ts[TIMEUTIL_RFC3339_LEN];
	struct strbuf line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timeutil_format_rfc3339(timeutil_now_us(), ts);

	strbuf_init(&line);
	strbuf_appendf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
	    level_names[level]);
	strbuf_append_json_escaped(&line, msg);
	strbuf_append_str(&line, "\",\"src\":\"");
	strbuf_append_json_escaped(&line, src_file);
	strbuf_appendf(&line, ":%d\"", src_line);
	if (request_id != NULL) {
		strbuf_append_str(&line, ",\"request_id\":\"");
		strbuf_append_json_escaped(&line, request_id);
		strbuf_append_char(&line, '"');
	}
	strbuf_append_str(&line, "}\n");
	if (!strbuf_failed(&line)) {
		/* A lost log line is not worth failing over. */
		ssize_t n = write(STDERR_FILENO, line.data, line.len);
		(void)n;
	}
	strbuf_finish(&line);
}
