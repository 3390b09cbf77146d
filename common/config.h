/* config.h - the daemon's configuration: defaults, then a JSON file, then
 * MILEPOST_* environment variables, then command-line flags.
 *
 * Every key is one row of a table in config.c (name, type, default,
 * bounds); docs/config.md documents the same rows and a unit test keeps the
 * two in step. The struct is plain data, read-only once threads start. */
#ifndef MILEPOST_COMMON_CONFIG_H
#define MILEPOST_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum config_identity {
	CONFIG_IDENTITY_OFF = 0,
	CONFIG_IDENTITY_OPTIONAL,
	CONFIG_IDENTITY_REQUIRED,
};

struct config_site {
	char *id;
	char *name;
	char *write_key;
	char **allowed_origins;
	size_t n_allowed_origins;
	/* Whether a browser's identify must prove its user id with
	 * HMAC-SHA256(user id, identity_secret) in hex (docs/plan.md). */
	enum config_identity identity_verification;
	char *identity_secret;	/* "": none; never logged */
	char **server_keys;	/* SHA-256 hex of each secret server key */
	size_t n_server_keys;
};

/* A secret API key for the query and admin API: only its SHA-256 is
 * kept (see privacy_key_matches). */
struct config_api_key {
	char *name;		/* who holds it, for the audit trail and logs */
	bool admin;		/* admin keys can also replay and erase */
	char *key_sha256;
	char **sites;		/* the sites it may see; none: every site */
	size_t n_sites;
};

struct config_list {
	char **items;
	size_t n;
};

struct config {
	long alert_evaluation_interval_s;
	long alert_history_retention_days;
	char *alerts;		/* JSON text of an array of rules */
	bool alert_webhook_allow_private;
	long alert_webhook_backoff_s;
	long alert_webhook_max_attempts;
	char *alert_webhook_proxy;	/* "" for none, whatever the environment */
	char *alert_webhook_secret;
	long alert_webhook_timeout_s;
	struct config_api_key *api_keys;
	size_t n_api_keys;
	char *bot_handling;
	char *channel_rules;	/* JSON text of an array */
	char *client_ip_header;
	long clock_skew_tolerance_s;
	long connection_timeout_s;
	char *consent_mode;
	char *database_url;
	long dedup_window_hours;
	bool honor_dnt;
	long http_threads;
	char *listen;
	char *log_level;
	long max_batch_events;
	long max_body_bytes;
	long max_connections;
	long max_connections_per_ip;
	long max_anonymous_ids_per_user;
	long max_event_age_days;
	long max_header_bytes;
	long max_json_depth;
	long max_json_values;
	long max_string_bytes;
	bool migrate_on_start;
	long min_volume;
	long partitions_ahead_months;
	char *pii_hash_key;
	char *plan;
	bool query_index;		/* answer queries from memory */
	long query_index_max_bytes;
	long query_threads;
	long rate_limit_burst_per_ip;
	long rate_limit_burst_per_key;
	long rate_limit_per_ip;		/* requests per second, 0: off */
	long rate_limit_per_key;	/* events per second, 0: off */
	long rejected_retention_days;
	long request_timeout_s;		/* 0: off */
	long retention_days;
	long retry_after_s;
	long session_timeout_min;
	long shutdown_timeout_s;
	struct config_site *sites;
	size_t n_sites;
	char *spool_dir;	/* "": no spool */
	long spool_max_bytes;
	char *tls_cert_file;	/* both or neither */
	char *tls_key_file;
	struct config_list url_strip_params;
	long writer_batch_max_events;
	long writer_batch_max_wait_ms;
	long writer_threads;
};

/* A configuration holding the defaults; free with config_free. NULL with
 * err set when out of memory. */
struct config *config_new(struct error *err);
void config_free(struct config *cfg);	/* NULL is fine */

/* Applies the keys of the JSON object in the file at path. Unknown keys and
 * wrong types fail with ERR_CONFIG naming the key and the file. */
bool config_load_file(struct config *cfg, const char *path,
    struct error *err);

/* Applies MILEPOST_<KEY> and MILEPOST_<KEY>_FILE variables, looked up with
 * lookup (getenv in the daemon, a fake in tests). */
bool config_apply_env(struct config *cfg,
    const char *(*lookup)(const char *name), struct error *err);

/* Applies a flag: name is the key with dashes ("max-body-bytes"), without
 * the leading "--". Unknown names fail with ERR_CONFIG. */
bool config_apply_flag(struct config *cfg, const char *name,
    const char *value, struct error *err);

/* Checks what single keys cannot: sites have unique ids and keys, API
 * keys name known sites. */
bool config_validate(const struct config *cfg, struct error *err);

/* The first key that a reload cannot change (listen address, threads,
 * database, ...) whose value differs between a and b; NULL if none. */
const char *config_fixed_key_changed(const struct config *a,
    const struct config *b);

/* The i-th key name in table order, NULL past the end. */
const char *config_key_name(size_t i);

#endif
