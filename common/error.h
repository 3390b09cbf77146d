/* error.h - error codes, their wire names and HTTP statuses, and the error
 * struct callees fill in for their callers.
 *
 * One table (error.c) maps every code to its wire name and status so that
 * the API, the docs and the tests never drift apart. */
#ifndef MILEPOST_COMMON_ERROR_H
#define MILEPOST_COMMON_ERROR_H

#include <stdbool.h>

enum err_code {
	ERR_NONE = 0,
	/* Whole-request errors, answered with their HTTP status. */
	ERR_MALFORMED_JSON,
	ERR_INVALID_BATCH,
	ERR_MALFORMED_GZIP,
	ERR_MISSING_WRITE_KEY,
	ERR_INVALID_WRITE_KEY,
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_PAYLOAD_TOO_LARGE,
	ERR_TOO_MANY_EVENTS,
	ERR_UNSUPPORTED_MEDIA_TYPE,
	ERR_UNSUPPORTED_ENCODING,
	ERR_INTERNAL,
	ERR_DATABASE_UNAVAILABLE,
	ERR_SHUTTING_DOWN,
	ERR_NOT_READY,
	ERR_SPOOL_FULL,
	ERR_MISSING_API_KEY,
	ERR_INVALID_API_KEY,
	ERR_FORBIDDEN,
	ERR_ORIGIN_NOT_ALLOWED,
	ERR_SERVER_KEY_IN_BROWSER,
	ERR_INVALID_PARAMETER,
	ERR_UNKNOWN_PARAMETER,
	ERR_QUERY_UNKNOWN_EVENT, /* a query names an event that has no data */
	ERR_REPLAY_IN_PROGRESS,
	ERR_ENGINE_UNAVAILABLE,	/* engine=index, and it cannot answer */
	ERR_INVALID_RULE,
	ERR_RULE_UNKNOWN_EVENT,
	ERR_INVALID_PERIOD,
	ERR_IMPOSSIBLE_BOUND,
	ERR_RULE_EXISTS,
	ERR_RULE_BUSY,
	ERR_RULE_FROM_CONFIG,
	ERR_STRING_TOO_LONG,
	ERR_TOO_MANY_VALUES,
	ERR_RATE_LIMITED,
	/* Per-event errors, reported inside a 202 answer. */
	ERR_NOT_AN_OBJECT,
	ERR_MISSING_FIELD,
	ERR_WRONG_TYPE,
	ERR_NAME_FORMAT,
	ERR_INVALID_EVENT_ID,
	ERR_INVALID_TIMESTAMP,
	ERR_TIMESTAMP_OUT_OF_RANGE,
	ERR_TOO_LONG,
	ERR_TOO_DEEP,
	ERR_UNKNOWN_FIELD,
	ERR_PLACEHOLDER_ID,
	ERR_UNSUPPORTED_CALL,
	/* Per-event errors from the tracking plan. */
	ERR_UNKNOWN_EVENT,
	ERR_MISSING_PROPERTY,
	ERR_NOT_IN_ENUM,
	ERR_PATTERN_MISMATCH,
	ERR_OUT_OF_RANGE,
	ERR_UNEXPECTED_PROPERTY,
	ERR_UNSUPPORTED_VERSION,
	ERR_EVENT_SUNSET,
	ERR_TOO_OLD,
	ERR_DUPLICATE_CONFLICT,	/* its id is stored for another event */
	/* Per-event warnings: the event was handled, with a caveat. */
	ERR_EVENT_DEPRECATED,
	ERR_CONSENT_MISSING,
	ERR_BOT_TRAFFIC,
	ERR_IDENTITY_UNVERIFIED,
	/* Start-up and command errors. */
	ERR_CONFIG,
	ERR_DATABASE,
	ERR_MIGRATION,
	ERR_NOMEM,
	ERR_IO,
	ERR_PLAN,
	ERR_COUNT_
};

struct error {
	enum err_code code;
	char message[256];
};

/* Fills err (which may be NULL) with code and a formatted message. */
void error_set(struct error *err, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void error_clear(struct error *err);

/* The snake_case wire name of code; never NULL. */
const char *error_code_name(enum err_code code);

/* The HTTP status a request failing with code is answered with; 500 for
 * codes that are not request errors. */
unsigned error_http_status(enum err_code code);

#endif
