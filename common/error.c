/* error.c - the one table of error codes. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	unsigned status;
} codes[ERR_COUNT_] = {
	[ERR_NONE] = { "none", 200 },
	[ERR_MALFORMED_JSON] = { "malformed_json", 400 },
	[ERR_INVALID_BATCH] = { "invalid_batch", 400 },
	[ERR_MALFORMED_GZIP] = { "malformed_gzip", 400 },
	[ERR_MISSING_WRITE_KEY] = { "missing_write_key", 401 },
	[ERR_INVALID_WRITE_KEY] = { "invalid_write_key", 401 },
	[ERR_NOT_FOUND] = { "not_found", 404 },
	[ERR_METHOD_NOT_ALLOWED] = { "method_not_allowed", 405 },
	[ERR_PAYLOAD_TOO_LARGE] = { "payload_too_large", 413 },
	[ERR_TOO_MANY_EVENTS] = { "too_many_events", 413 },
	[ERR_UNSUPPORTED_MEDIA_TYPE] = { "unsupported_media_type", 415 },
	[ERR_UNSUPPORTED_ENCODING] = { "unsupported_encoding", 415 },
	[ERR_INTERNAL] = { "internal_error", 500 },
	[ERR_DATABASE_UNAVAILABLE] = { "database_unavailable", 503 },
	[ERR_SHUTTING_DOWN] = { "shutting_down", 503 },
	[ERR_NOT_READY] = { "not_ready", 503 },
	[ERR_SPOOL_FULL] = { "spool_full", 503 },
	[ERR_MISSING_API_KEY] = { "missing_api_key", 401 },
	[ERR_INVALID_API_KEY] = { "invalid_api_key", 401 },
	[ERR_FORBIDDEN] = { "forbidden", 403 },
	[ERR_ORIGIN_NOT_ALLOWED] = { "origin_not_allowed", 403 },
	[ERR_SERVER_KEY_IN_BROWSER] = { "server_key_in_browser", 403 },
	[ERR_INVALID_PARAMETER] = { "invalid_parameter", 400 },
	[ERR_UNKNOWN_PARAMETER] = { "unknown_parameter", 400 },
	/* The per-event code's name: the same mistake, in a query. */
	[ERR_QUERY_UNKNOWN_EVENT] = { "unknown_event", 400 },
	[ERR_REPLAY_IN_PROGRESS] = { "replay_in_progress", 409 },
	[ERR_ENGINE_UNAVAILABLE] = { "engine_unavailable", 409 },
	[ERR_INVALID_RULE] = { "invalid_rule", 400 },
	[ERR_RULE_UNKNOWN_EVENT] = { "rule_unknown_event", 400 },
	[ERR_INVALID_PERIOD] = { "invalid_period", 400 },
	[ERR_IMPOSSIBLE_BOUND] = { "impossible_bound", 400 },
	[ERR_RULE_EXISTS] = { "rule_exists", 409 },
	[ERR_RULE_BUSY] = { "rule_busy", 409 },
	[ERR_RULE_FROM_CONFIG] = { "rule_from_config", 409 },
	[ERR_STRING_TOO_LONG] = { "string_too_long", 413 },
	[ERR_TOO_MANY_VALUES] = { "too_many_values", 413 },
	[ERR_RATE_LIMITED] = { "rate_limited", 429 },
	[ERR_NOT_AN_OBJECT] = { "not_an_object", 422 },
	[ERR_MISSING_FIELD] = { "missing_field", 422 },
	[ERR_WRONG_TYPE] = { "wrong_type", 422 },
	[ERR_NAME_FORMAT] = { "name_format", 422 },
	[ERR_INVALID_EVENT_ID] = { "invalid_event_id", 422 },
	[ERR_INVALID_TIMESTAMP] = { "invalid_timestamp", 422 },
	[ERR_TIMESTAMP_OUT_OF_RANGE] = { "timestamp_out_of_range", 422 },
	[ERR_TOO_LONG] = { "too_long", 422 },
	[ERR_TOO_DEEP] = { "too_deep", 422 },
	[ERR_UNKNOWN_FIELD] = { "unknown_field", 422 },
	[ERR_PLACEHOLDER_ID] = { "placeholder_id", 422 },
	[ERR_UNSUPPORTED_CALL] = { "unsupported_call", 422 },
	[ERR_UNKNOWN_EVENT] = { "unknown_event", 422 },
	[ERR_MISSING_PROPERTY] = { "missing_property", 422 },
	[ERR_NOT_IN_ENUM] = { "not_in_enum", 422 },
	[ERR_PATTERN_MISMATCH] = { "pattern_mismatch", 422 },
	[ERR_OUT_OF_RANGE] = { "out_of_range", 422 },
	[ERR_UNEXPECTED_PROPERTY] = { "unexpected_property", 422 },
	[ERR_UNSUPPORTED_VERSION] = { "unsupported_version", 422 },
	[ERR_EVENT_SUNSET] = { "event_sunset", 422 },
	[ERR_TOO_OLD] = { "too_old", 422 },
	[ERR_DUPLICATE_CONFLICT] = { "duplicate_conflict", 422 },
	[ERR_EVENT_DEPRECATED] = { "event_deprecated", 200 },
	[ERR_CONSENT_MISSING] = { "consent_missing", 200 },
	[ERR_BOT_TRAFFIC] = { "bot_traffic", 200 },
	[ERR_IDENTITY_UNVERIFIED] = { "identity_unverified", 200 },
	[ERR_CONFIG] = { "config_error", 500 },
	[ERR_DATABASE] = { "database_error", 500 },
	[ERR_MIGRATION] = { "migration_error", 500 },
	[ERR_NOMEM] = { "out_of_memory", 500 },
	[ERR_IO] = { "io_error", 500 },
	[ERR_PLAN] = { "plan_error", 500 },
};

void
error_set(struct error *err, enum err_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL) {
		return;
	}
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
error_clear(struct error *err)
{
	if (err != NULL) {
		err->code = ERR_NONE;
		err->message[0] = '\0';
	}
}

const char *
error_code_name(enum err_code code)
{
	if ((unsigned)code >= ERR_COUNT_ || codes[code].name == NULL) {
		return "internal_error";
	}
	return codes[code].name;
}

unsigned
error_http_status(enum err_code code)
{
	if ((unsigned)code >= ERR_COUNT_ || codes[code].status == 0) {
		return 500;
	}
	return codes[code].status;
}
