/* config.c - the configuration table and its four layers. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common/log.h"
#include "common/origin.h"
#include "common/privacy.h"

enum key_type {
	KEY_STRING,
	KEY_INT,
	KEY_BOOL,
	KEY_SITES,
	KEY_LIST,
	KEY_API_KEYS,
	KEY_JSON,	/* any JSON value, kept as compact text */
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *default_text;	/* parsed like an environment value */
	long min, max;
	bool (*check)(const char *value);
	bool reloadable;	/* SIGHUP applies it to a running daemon */
};

static bool check_log_level(const char *value);
static bool check_consent_mode(const char *value);
static bool check_bot_handling(const char *value);

#define FIELD(f) offsetof(struct config, f)

/* Alphabetical; docs/config.md lists the same keys. */
static const struct key keys[] = {
	{ "alert_evaluation_interval_s", KEY_INT,
	  FIELD(alert_evaluation_interval_s), "60", 1, 86400, NULL, false },
	{ "alert_history_retention_days", KEY_INT,
	  FIELD(alert_history_retention_days), "365", 0, 36500, NULL, false },
	{ "alert_webhook_allow_private", KEY_BOOL,
	  FIELD(alert_webhook_allow_private), "false", 0, 0, NULL, true },
	{ "alert_webhook_backoff_s", KEY_INT, FIELD(alert_webhook_backoff_s),
	  "30", 1, 3600, NULL, true },
	{ "alert_webhook_max_attempts", KEY_INT,
	  FIELD(alert_webhook_max_attempts), "6", 1, 20, NULL, true },
	{ "alert_webhook_proxy", KEY_STRING, FIELD(alert_webhook_proxy), "",
	  0, 0, NULL, true },
	{ "alert_webhook_secret", KEY_STRING, FIELD(alert_webhook_secret), "",
	  0, 0, NULL, true },
	{ "alert_webhook_timeout_s", KEY_INT, FIELD(alert_webhook_timeout_s),
	  "5", 1, 60, NULL, true },
	{ "alerts", KEY_JSON, FIELD(alerts), "[]", 0, 0, NULL, true },
	{ "api_keys", KEY_API_KEYS, FIELD(api_keys), "[]", 0, 0, NULL, true },
	{ "bot_handling", KEY_STRING, FIELD(bot_handling), "flag", 0, 0,
	  check_bot_handling, true },
	{ "channel_rules", KEY_JSON, FIELD(channel_rules), "[]", 0, 0, NULL,
	  true },
	{ "client_ip_header", KEY_STRING, FIELD(client_ip_header), "", 0, 0,
	  NULL, true },
	{ "clock_skew_tolerance_s", KEY_INT, FIELD(clock_skew_tolerance_s),
	  "60", 0, 86400, NULL, true },
	{ "connection_timeout_s", KEY_INT, FIELD(connection_timeout_s), "30",
	  1, 3600, NULL, false },
	{ "consent_mode", KEY_STRING, FIELD(consent_mode), "drop", 0, 0,
	  check_consent_mode, true },
	{ "database_url", KEY_STRING, FIELD(database_url),
	  "postgresql:///milepost", 0, 0, NULL, false },
	{ "dedup_window_hours", KEY_INT, FIELD(dedup_window_hours), "168", 1,
	  8760, NULL, false },
	{ "honor_dnt", KEY_BOOL, FIELD(honor_dnt), "false", 0, 0, NULL, true },
	{ "http_threads", KEY_INT, FIELD(http_threads), "2", 1, 64, NULL, false },
	{ "listen", KEY_STRING, FIELD(listen), "127.0.0.1:8080", 0, 0, NULL, false },
	{ "log_level", KEY_STRING, FIELD(log_level), "info", 0, 0,
	  check_log_level, true },
	{ "max_batch_events", KEY_INT, FIELD(max_batch_events), "500", 1,
	  100000, NULL, true },
	{ "max_body_bytes", KEY_INT, FIELD(max_body_bytes), "524288", 1024,
	  67108864, NULL, false },
	{ "max_connections", KEY_INT, FIELD(max_connections), "1024", 16,
	  65536, NULL, false },
	{ "max_connections_per_ip", KEY_INT, FIELD(max_connections_per_ip),
	  "0", 0, 65536, NULL, false },
	{ "max_anonymous_ids_per_user", KEY_INT,
	  FIELD(max_anonymous_ids_per_user), "100", 1, 100000, NULL, false },
	{ "max_event_age_days", KEY_INT, FIELD(max_event_age_days), "31", 1,
	  36500, NULL, true },
	{ "max_header_bytes", KEY_INT, FIELD(max_header_bytes), "32768", 8192,
	  1048576, NULL, false },
	{ "max_json_depth", KEY_INT, FIELD(max_json_depth), "32", 2, 1000,
	  NULL, false },
	{ "max_json_values", KEY_INT, FIELD(max_json_values), "50000", 100,
	  10000000, NULL, false },
	{ "max_string_bytes", KEY_INT, FIELD(max_string_bytes), "65536", 64,
	  67108864, NULL, false },
	{ "migrate_on_start", KEY_BOOL, FIELD(migrate_on_start), "true", 0, 0,
	  NULL, false },
	{ "min_volume", KEY_INT, FIELD(min_volume), "100", 1, 100000000, NULL,
	  true },
	{ "partitions_ahead_months", KEY_INT, FIELD(partitions_ahead_months),
	  "2", 1, 24, NULL, false },
	{ "pii_hash_key", KEY_STRING, FIELD(pii_hash_key), "", 0, 0, NULL,
	  true },
	{ "plan", KEY_STRING, FIELD(plan), "", 0, 0, NULL, true },
	{ "query_index", KEY_BOOL, FIELD(query_index), "true", 0, 0, NULL,
	  false },
	{ "query_index_max_bytes", KEY_INT, FIELD(query_index_max_bytes),
	  "2147483648", 16777216, 1099511627776, NULL, false },
	{ "query_threads", KEY_INT, FIELD(query_threads), "2", 1, 64, NULL, false },
	/* On by default, the write key being public: docs/operations.md
	 * ("Rate limits") derives the values from the ingest benchmark. */
	{ "rate_limit_burst_per_ip", KEY_INT, FIELD(rate_limit_burst_per_ip),
	  "1000", 0, 1000000, NULL, false },
	{ "rate_limit_burst_per_key", KEY_INT,
	  FIELD(rate_limit_burst_per_key), "20000", 0, 100000000, NULL, false },
	{ "rate_limit_per_ip", KEY_INT, FIELD(rate_limit_per_ip), "100", 0,
	  1000000, NULL, false },
	{ "rate_limit_per_key", KEY_INT, FIELD(rate_limit_per_key), "2000", 0,
	  100000000, NULL, false },
	{ "rejected_retention_days", KEY_INT, FIELD(rejected_retention_days),
	  "30", 0, 36500, NULL, false },
	{ "request_timeout_s", KEY_INT, FIELD(request_timeout_s), "30", 0,
	  3600, NULL, false },
	{ "retention_days", KEY_INT, FIELD(retention_days), "0", 0, 36500,
	  NULL, false },
	{ "retry_after_s", KEY_INT, FIELD(retry_after_s), "5", 1, 3600, NULL, false },
	{ "session_timeout_min", KEY_INT, FIELD(session_timeout_min), "30", 1,
	  1440, NULL, false },
	{ "shutdown_timeout_s", KEY_INT, FIELD(shutdown_timeout_s), "10", 1,
	  600, NULL, false },
	{ "sites", KEY_SITES, FIELD(sites), "[]", 0, 0, NULL, true },
	{ "spool_dir", KEY_STRING, FIELD(spool_dir), "", 0, 0, NULL, false },
	{ "spool_max_bytes", KEY_INT, FIELD(spool_max_bytes), "1073741824",
	  1048576, 1099511627776L, NULL, false },
	{ "tls_cert_file", KEY_STRING, FIELD(tls_cert_file), "", 0, 0, NULL,
	  false },
	{ "tls_key_file", KEY_STRING, FIELD(tls_key_file), "", 0, 0, NULL,
	  false },
	{ "url_strip_params", KEY_LIST, FIELD(url_strip_params),
	  "email,e-mail,mail,phone,tel,token,access_token,id_token,"
	  "refresh_token,auth,code,password,pass,passwd,pwd,secret,api_key,"
	  "apikey,session,sessionid,sid,ssn", 0, 0, NULL, true },
	{ "writer_batch_max_events", KEY_INT, FIELD(writer_batch_max_events),
	  "1000", 1, 100000, NULL, false },
	{ "writer_batch_max_wait_ms", KEY_INT, FIELD(writer_batch_max_wait_ms),
	  "2", 0, 1000, NULL, false },
	{ "writer_threads", KEY_INT, FIELD(writer_threads), "2", 1, 16, NULL, false },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static bool
check_log_level(const char *value)
{
	enum log_level lvl;

	return log_level_parse(value, &lvl);
}

static bool
check_bot_handling(const char *value)
{
	return strcmp(value, "flag") == 0 || strcmp(value, "drop") == 0;
}

static bool
check_consent_mode(const char *value)
{
	return strcmp(value, "drop") == 0 || strcmp(value, "anonymous") == 0;
}

static void *
field(struct config *cfg, const struct key *k)
{
	return (char *)cfg + k->offset;
}

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].name, name) == 0) {
			return &keys[i];
		}
	}
	return NULL;
}

/* True if key k holds the same value in a and b. */
static bool
key_equal(const struct config *a, const struct config *b,
    const struct key *k)
{
	const void *fa = (const char *)a + k->offset;
	const void *fb = (const char *)b + k->offset;

	switch (k->type) {
	case KEY_STRING:
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	case KEY_INT:
		return *(const long *)fa == *(const long *)fb;
	case KEY_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case KEY_SITES:
	case KEY_LIST:
	case KEY_API_KEYS:
	case KEY_JSON:
		break;
	}
	return true;	/* no such key is fixed */
}

const char *
config_fixed_key_changed(const struct config *a, const struct config *b)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (!keys[i].reloadable && !key_equal(a, b, &keys[i])) {
			return keys[i].name;
		}
	}
	return NULL;
}

const char *
config_key_name(size_t i)
{
	return i < N_KEYS ? keys[i].name : NULL;
}

static void
strings_free(char **items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i]);
	}
	free(items);
}

/* Copies the strings of the JSON array arr into a new vector. */
static bool
strings_from_json(const json_t *arr, char ***out, size_t *n_out,
    const char *what, const char *where, struct error *err)
{
	char **items;
	size_t i;
	json_t *v;

	if (!json_is_array(arr)) {
		error_set(err, ERR_CONFIG, "%s: %s must be an array of strings",
		    where, what);
		return false;
	}
	items = calloc(json_array_size(arr) + 1, sizeof(*items));
	if (items == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	json_array_foreach((json_t *)arr, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0) {
			error_set(err, ERR_CONFIG, "%s: %s[%zu] must be a "
			    "non-empty string", where, what, i);
			strings_free(items, i);
			return false;
		}
		items[i] = strdup(json_string_value(v));
		if (items[i] == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
			strings_free(items, i);
			return false;
		}
	}
	*out = items;
	*n_out = json_array_size(arr);
	return true;
}

static void
sites_free(struct config_site *sites, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(sites[i].id);
		free(sites[i].name);
		free(sites[i].write_key);
		strings_free(sites[i].allowed_origins,
		    sites[i].n_allowed_origins);
		if (sites[i].identity_secret != NULL) {
			sodium_memzero(sites[i].identity_secret,
			    strlen(sites[i].identity_secret));
		}
		free(sites[i].identity_secret);
		strings_free(sites[i].server_keys, sites[i].n_server_keys);
	}
	free(sites);
}

/* A copy of the JSON string member name of obj, which must be a non-empty
 * string of at most max bytes. */
static bool
site_string(json_t *obj, const char *name, size_t max, char **out,
    const char *where, size_t idx, struct error *err)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > max) {
		error_set(err, ERR_CONFIG,
		    "%s: sites[%zu].%s must be a non-empty string of at most "
		    "%zu bytes", where, idx, name, max);
		return false;
	}
	*out = strdup(json_string_value(v));
	if (*out == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	return true;
}

static bool
site_id_is_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 63 || !(islower((unsigned char)id[0]) ||
	    isdigit((unsigned char)id[0]))) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!(islower(c) || isdigit(c) || c == '_' || c == '-')) {
			return false;
		}
	}
	return true;
}

static bool
site_key_is_valid(const char *key)
{
	size_t n = strlen(key);

	if (n < 8 || n > 128) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isgraph((unsigned char)key[i])) {
			return false;
		}
	}
	return true;
}

/* The first member of obj not named in names, or NULL. */
static const char *
unknown_key(json_t *obj, const char *const *names, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		size_t j = 0;
		while (j < n && strcmp(k, names[j]) != 0) {
			j++;
		}
		if (j == n) {
			return k;
		}
	}
	return NULL;
}

static bool
is_sha256_hex(const char *s)
{
	size_t n = 0;

	for (; isxdigit((unsigned char)s[n]); n++) {
	}
	return n == 64 && s[n] == '\0';
}

static char *read_secret_file(const char *path, const char *var,
    struct error *err);

static const char *const identity_modes[] = {
	[CONFIG_IDENTITY_OFF] = "off",
	[CONFIG_IDENTITY_OPTIONAL] = "optional",
	[CONFIG_IDENTITY_REQUIRED] = "required",
};

/* The secret in the site's identity_secret, or in the file that
 * identity_secret_file names (for container secrets), into site. */
static bool
site_secret_parse(json_t *obj, size_t idx, const char *where,
    struct config_site *site, struct error *err)
{
	json_t *inline_ = json_object_get(obj, "identity_secret");
	json_t *file = json_object_get(obj, "identity_secret_file");
	char what[64];

	if (inline_ != NULL && file != NULL) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu] sets both "
		    "identity_secret and identity_secret_file", where, idx);
		return false;
	}
	if (file != NULL) {
		if (!json_is_string(file)) {
			error_set(err, ERR_CONFIG, "%s: sites[%zu]."
			    "identity_secret_file must be a path", where, idx);
			return false;
		}
		snprintf(what, sizeof(what), "sites[%zu].identity_secret_file",
		    idx);
		site->identity_secret = read_secret_file(
		    json_string_value(file), what, err);
		return site->identity_secret != NULL;
	}
	if (inline_ != NULL && !json_is_string(inline_)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu].identity_secret "
		    "must be a string", where, idx);
		return false;
	}
	site->identity_secret = strdup(inline_ != NULL ?
	    json_string_value(inline_) : "");
	if (site->identity_secret == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	return true;
}

/* identity_verification, its secret and the server keys of a site. */
static bool
site_identity_parse(json_t *obj, size_t idx, const char *where,
    struct config_site *site, struct error *err)
{
	const char *mode = json_string_value(json_object_get(obj,
	    "identity_verification"));
	json_t *keys_ = json_object_get(obj, "server_keys");
	size_t m = 0, n_modes = sizeof(identity_modes) /
	    sizeof(identity_modes[0]);
	char what[48];

	if (json_object_get(obj, "identity_verification") != NULL) {
		while (m < n_modes && (mode == NULL ||
		    strcmp(mode, identity_modes[m]) != 0)) {
			m++;
		}
		if (m == n_modes) {
			error_set(err, ERR_CONFIG, "%s: sites[%zu]."
			    "identity_verification must be off, optional or "
			    "required", where, idx);
			return false;
		}
	}
	site->identity_verification = (enum config_identity)m;
	if (!site_secret_parse(obj, idx, where, site, err)) {
		return false;
	}
	snprintf(what, sizeof(what), "sites[%zu].server_keys", idx);
	if (keys_ != NULL && !strings_from_json(keys_, &site->server_keys,
	    &site->n_server_keys, what, where, err)) {
		return false;
	}
	for (size_t i = 0; i < site->n_server_keys; i++) {
		if (!is_sha256_hex(site->server_keys[i])) {
			error_set(err, ERR_CONFIG, "%s: %s[%zu] must be the "
			    "SHA-256 of the key, 64 hex digits (never the key "
			    "itself)", where, what, i);
			return false;
		}
	}
	return true;
}

static bool
site_parse(json_t *obj, size_t idx, const char *where,
    struct config_site *site, struct error *err)
{
	static const char *const allowed[] = { "id", "name", "write_key",
		"allowed_origins", "identity_verification", "identity_secret",
		"identity_secret_file", "server_keys" };
	char what[48];
	const char *k;
	json_t *origins;

	if (!json_is_object(obj)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu] must be an object",
		    where, idx);
		return false;
	}
	k = unknown_key(obj, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (k != NULL) {
		error_set(err, ERR_CONFIG, "%s: unknown key 'sites[%zu].%s'",
		    where, idx, k);
		return false;
	}
	if (!site_string(obj, "id", 63, &site->id, where, idx, err) ||
	    !site_string(obj, "name", 200, &site->name, where, idx, err) ||
	    !site_string(obj, "write_key", 128, &site->write_key, where, idx,
	    err)) {
		return false;
	}
	if (!site_id_is_valid(site->id)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu].id must match "
		    "^[a-z0-9][a-z0-9_-]{0,62}$", where, idx);
		return false;
	}
	if (!site_key_is_valid(site->write_key)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu].write_key must be "
		    "8 to 128 printable characters without spaces", where, idx);
		return false;
	}
	if (!site_identity_parse(obj, idx, where, site, err)) {
		return false;
	}
	origins = json_object_get(obj, "allowed_origins");
	if (origins == NULL) {
		return true;
	}
	snprintf(what, sizeof(what), "sites[%zu].allowed_origins", idx);
	if (!strings_from_json(origins, &site->allowed_origins,
	    &site->n_allowed_origins, what, where, err)) {
		return false;
	}
	for (size_t i = 0; i < site->n_allowed_origins; i++) {
		char why[160];
		if (!origin_pattern_is_valid(site->allowed_origins[i], why,
		    sizeof(why))) {
			error_set(err, ERR_CONFIG, "%s: %s[%zu] '%.100s' %s",
			    where, what, i, site->allowed_origins[i], why);
			return false;
		}
	}
	return true;
}

static bool
sites_set(struct config *cfg, json_t *arr, const char *where,
    struct error *err)
{
	struct config_site *sites = NULL;
	size_t n = 0, i;
	json_t *v;

	if (!json_is_array(arr)) {
		error_set(err, ERR_CONFIG, "%s: key 'sites' must be an array",
		    where);
		return false;
	}
	if (json_array_size(arr) > 0) {
		sites = calloc(json_array_size(arr), sizeof(*sites));
		if (sites == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
			return false;
		}
	}
	json_array_foreach(arr, i, v) {
		n = i + 1;
		if (!site_parse(v, i, where, &sites[i], err)) {
			sites_free(sites, n);
			return false;
		}
	}
	sites_free(cfg->sites, cfg->n_sites);
	cfg->sites = sites;
	cfg->n_sites = n;
	return true;
}

static bool
list_set(struct config *cfg, const struct key *k, const json_t *arr,
    const char *where, struct error *err)
{
	struct config_list *list = field(cfg, k), fresh;

	if (!strings_from_json(arr, &fresh.items, &fresh.n, k->name, where,
	    err)) {
		return false;
	}
	strings_free(list->items, list->n);
	*list = fresh;
	return true;
}

/* "a,b,c" (spaces around names ignored) as a JSON array. */
static json_t *
list_from_text(const char *text)
{
	json_t *arr = json_array();
	const char *p = text;

	while (arr != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *q = p;
		while (n > 0 && isspace((unsigned char)*q)) {
			q++;
			n--;
		}
		while (n > 0 && isspace((unsigned char)q[n - 1])) {
			n--;
		}
		/* An item that is not UTF-8 must not vanish silently. */
		if (n > 0 && json_array_append_new(arr, json_stringn(q, n))) {
			json_decref(arr);
			return NULL;
		}
		p = end != NULL ? end + 1 : p + strlen(p);
	}
	return arr;
}

static void
api_keys_free(struct config_api_key *keys_, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys_[i].name);
		free(keys_[i].key_sha256);
		strings_free(keys_[i].sites, keys_[i].n_sites);
	}
	free(keys_);
}

static bool
api_key_parse(json_t *obj, size_t idx, const char *where,
    struct config_api_key *key, struct error *err)
{
	static const char *const allowed[] = { "name", "scope", "key_sha256",
		"sites" };
	const char *k, *scope;
	char what[64];
	json_t *v;

	if (!json_is_object(obj)) {
		error_set(err, ERR_CONFIG, "%s: api_keys[%zu] must be an object",
		    where, idx);
		return false;
	}
	k = unknown_key(obj, allowed, sizeof(allowed) / sizeof(allowed[0]));
	if (k != NULL) {
		error_set(err, ERR_CONFIG, "%s: unknown key 'api_keys[%zu].%s'",
		    where, idx, k);
		return false;
	}
	v = json_object_get(obj, "name");
	scope = json_string_value(json_object_get(obj, "scope"));
	k = json_string_value(json_object_get(obj, "key_sha256"));
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 64) {
		error_set(err, ERR_CONFIG, "%s: api_keys[%zu].name must be a "
		    "non-empty string of at most 64 bytes", where, idx);
		return false;
	}
	if (scope == NULL || (strcmp(scope, "read") != 0 &&
	    strcmp(scope, "admin") != 0)) {
		error_set(err, ERR_CONFIG, "%s: api_keys[%zu].scope must be "
		    "read or admin", where, idx);
		return false;
	}
	if (k == NULL || !is_sha256_hex(k)) {
		error_set(err, ERR_CONFIG, "%s: api_keys[%zu].key_sha256 must be "
		    "the 64 hex digits of the key's SHA-256 (milepost "
		    "hash-key prints them)", where, idx);
		return false;
	}
	key->admin = strcmp(scope, "admin") == 0;
	key->name = strdup(json_string_value(v));
	key->key_sha256 = strdup(k);
	if (key->name == NULL || key->key_sha256 == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	v = json_object_get(obj, "sites");
	snprintf(what, sizeof(what), "api_keys[%zu].sites", idx);
	/* An empty list reads as "no site" to a person and would mean every
	 * site to the code: refuse the ambiguity rather than widen a key. */
	if (json_is_array(v) && json_array_size(v) == 0) {
		error_set(err, ERR_CONFIG, "%s: %s is empty: list the sites the "
		    "key may see, or leave it out for every site", where, what);
		return false;
	}
	return v == NULL || strings_from_json(v, &key->sites, &key->n_sites,
	    what, where, err);
}

static bool
api_keys_set(struct config *cfg, json_t *arr, const char *where,
    struct error *err)
{
	struct config_api_key *keys_ = NULL;
	size_t i;
	json_t *v;

	if (!json_is_array(arr)) {
		error_set(err, ERR_CONFIG, "%s: key 'api_keys' must be an array",
		    where);
		return false;
	}
	keys_ = calloc(json_array_size(arr) + 1, sizeof(*keys_));
	if (keys_ == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	json_array_foreach(arr, i, v) {
		if (!api_key_parse(v, i, where, &keys_[i], err)) {
			api_keys_free(keys_, i + 1);
			return false;
		}
	}
	api_keys_free(cfg->api_keys, cfg->n_api_keys);
	cfg->api_keys = keys_;
	cfg->n_api_keys = json_array_size(arr);
	return true;
}

static bool
int_set(struct config *cfg, const struct key *k, long v, const char *where,
    struct error *err)
{
	if (v < k->min || v > k->max) {
		error_set(err, ERR_CONFIG, "%s: key '%s' must be between %ld and "
		    "%ld", where, k->name, k->min, k->max);
		return false;
	}
	*(long *)field(cfg, k) = v;
	return true;
}

/* KEY_JSON: the value as compact text, for the module that reads it. */
static bool
json_text_set(struct config *cfg, const struct key *k, const json_t *v,
    const char *where, struct error *err)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), **slot;

	(void)where;
	if (text == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	slot = field(cfg, k);
	free(*slot);
	*slot = text;
	return true;
}

static bool
string_set(struct config *cfg, const struct key *k, const char *v,
    const char *where, struct error *err)
{
	char *copy, **slot = field(cfg, k);

	if (k->check != NULL && !k->check(v)) {
		error_set(err, ERR_CONFIG, "%s: key '%s' has an invalid value",
		    where, k->name);
		return false;
	}
	copy = strdup(v);
	if (copy == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	free(*slot);
	*slot = copy;
	return true;
}

static bool key_set_json(struct config *cfg, const struct key *k,
    json_t *v, const char *where, struct error *err);

/* Sets key k from text, as found in the environment or on the command
 * line (and in the defaults column of the table). */
static bool
key_set_text(struct config *cfg, const struct key *k, const char *text,
    const char *where, struct error *err)
{
	json_error_t jerr = { .text = "out of memory" };
	json_t *arr = NULL;
	char *end;
	long v;
	bool ok;

	switch (k->type) {
	case KEY_STRING:
		return string_set(cfg, k, text, where, err);
	case KEY_INT:
		errno = 0;
		v = strtol(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0') {
			error_set(err, ERR_CONFIG, "%s: key '%s' must be an "
			    "integer", where, k->name);
			return false;
		}
		return int_set(cfg, k, v, where, err);
	case KEY_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
			*(bool *)field(cfg, k) = true;
		} else if (strcmp(text, "false") == 0 ||
		    strcmp(text, "0") == 0) {
			*(bool *)field(cfg, k) = false;
		} else {
			error_set(err, ERR_CONFIG, "%s: key '%s' must be true or "
			    "false", where, k->name);
			return false;
		}
		return true;
	case KEY_LIST:
		/* A JSON array or, friendlier in an environment, a comma
		 * list. */
		arr = text[0] == '[' ? json_loads(text, JSON_REJECT_DUPLICATES,
		    &jerr) : list_from_text(text);
		break;
	case KEY_SITES:
	case KEY_API_KEYS:
	case KEY_JSON:
		arr = json_loads(text, JSON_REJECT_DUPLICATES |
		    JSON_DECODE_ANY, &jerr);
		break;
	}
	if (arr == NULL) {
		error_set(err, ERR_CONFIG, "%s: key '%s' is not valid JSON: %s",
		    where, k->name, jerr.text);
		return false;
	}
	ok = key_set_json(cfg, k, arr, where, err);
	json_decref(arr);
	return ok;
}

static bool
key_set_json(struct config *cfg, const struct key *k, json_t *v,
    const char *where, struct error *err)
{
	static const char *const type_names[] = {
		[KEY_STRING] = "a string", [KEY_INT] = "an integer",
		[KEY_BOOL] = "a boolean", [KEY_SITES] = "an array",
		[KEY_LIST] = "an array", [KEY_API_KEYS] = "an array",
		[KEY_JSON] = "JSON",
	};

	switch (k->type) {
	case KEY_STRING:
		if (json_is_string(v)) {
			return string_set(cfg, k, json_string_value(v), where,
			    err);
		}
		break;
	case KEY_INT:
		if (json_is_integer(v)) {
			json_int_t i = json_integer_value(v);
			/* Clamp before narrowing so that int_set reports
			 * the bounds rather than a wrapped value. */
			if (i < k->min) {
				i = (json_int_t)k->min - 1;
			} else if (i > k->max) {
				i = (json_int_t)k->max + 1;
			}
			return int_set(cfg, k, (long)i, where, err);
		}
		break;
	case KEY_BOOL:
		if (json_is_boolean(v)) {
			*(bool *)field(cfg, k) = json_is_true(v);
			return true;
		}
		break;
	case KEY_SITES:
		return sites_set(cfg, v, where, err);
	case KEY_LIST:
		return list_set(cfg, k, v, where, err);
	case KEY_API_KEYS:
		return api_keys_set(cfg, v, where, err);
	case KEY_JSON:
		return json_text_set(cfg, k, v, where, err);
	}
	error_set(err, ERR_CONFIG, "%s: key '%s' must be %s", where, k->name,
	    type_names[k->type]);
	return false;
}

struct config *
config_new(struct error *err)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		if (!key_set_text(cfg, &keys[i], keys[i].default_text,
		    "defaults", err)) {
			config_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL) {
		return;
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].type == KEY_STRING || keys[i].type == KEY_JSON) {
			free(*(char **)field(cfg, &keys[i]));
		}
	}
	sites_free(cfg->sites, cfg->n_sites);
	api_keys_free(cfg->api_keys, cfg->n_api_keys);
	strings_free(cfg->url_strip_params.items, cfg->url_strip_params.n);
	free(cfg);
}

/* A relative path (the plan, the spool) in a configuration file is
 * relative to the file's directory, so that a configuration and its plan
 * can be installed or mounted together and read from anywhere. */
static bool
path_beside(char **field, const json_t *root, const char *key,
    const char *path, struct error *err)
{
	const char *rel = json_string_value(json_object_get(root, key));
	const char *slash = strrchr(path, '/');
	size_t dir, len;
	char *full;

	if (rel == NULL || rel[0] == '\0' || rel[0] == '/' || slash == NULL) {
		return true;
	}
	dir = (size_t)(slash - path) + 1;
	len = dir + strlen(rel) + 1;
	full = malloc(len);
	if (full == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	memcpy(full, path, dir);
	memcpy(full + dir, rel, strlen(rel) + 1);
	free(*field);
	*field = full;
	return true;
}

bool
config_load_file(struct config *cfg, const char *path, struct error *err)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *name;
	bool ok = false;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		error_set(err, ERR_CONFIG, "%s:%d: %s", path, jerr.line,
		    jerr.text);
		return false;
	}
	if (!json_is_object(root)) {
		error_set(err, ERR_CONFIG, "%s: must hold a JSON object", path);
		goto done;
	}
	json_object_foreach(root, name, v) {
		const struct key *k = key_find(name);
		if (k == NULL) {
			error_set(err, ERR_CONFIG, "%s: unknown key '%s'", path,
			    name);
			goto done;
		}
		if (!key_set_json(cfg, k, v, path, err)) {
			goto done;
		}
	}
	ok = path_beside(&cfg->plan, root, "plan", path, err) &&
	    path_beside(&cfg->spool_dir, root, "spool_dir", path, err);
done:
	json_decref(root);
	return ok;
}

/* Reads a secret file, dropping one trailing newline. */
static char *
read_secret_file(const char *path, const char *var, struct error *err)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		error_set(err, ERR_CONFIG, "%s: cannot open %s: %s", var, path,
		    strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		error_set(err, ERR_CONFIG, "%s: cannot read %s (or longer "
		    "than %zu bytes)", var, path, sizeof(buf) - 1);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = '\0';
	}
	if (n > 0 && buf[n - 1] == '\r') {
		buf[--n] = '\0';
	}
	return strdup(buf);
}

bool
config_apply_env(struct config *cfg, const char *(*lookup)(const char *),
    struct error *err)
{
	char var[80], file_var[96], where[112];

	for (size_t i = 0; i < N_KEYS; i++) {
		const char *value;
		char *secret = NULL;
		bool ok;
		size_t j;

		strcpy(var, "MILEPOST_");
		for (j = 0; keys[i].name[j] != '\0'; j++) {
			var[9 + j] = (char)toupper((unsigned char)keys[i].name[j]);
		}
		var[9 + j] = '\0';
		snprintf(file_var, sizeof(file_var), "%s_FILE", var);
		value = lookup(var);
		if (value != NULL) {
			snprintf(where, sizeof(where), "environment %s", var);
		} else if ((value = lookup(file_var)) != NULL) {
			snprintf(where, sizeof(where), "environment %s",
			    file_var);
			secret = read_secret_file(value, file_var, err);
			if (secret == NULL) {
				return false;
			}
			value = secret;
		} else {
			continue;
		}
		ok = key_set_text(cfg, &keys[i], value, where, err);
		free(secret);
		if (!ok) {
			return false;
		}
	}
	return true;
}

bool
config_apply_flag(struct config *cfg, const char *name, const char *value,
    struct error *err)
{
	char key[64], where[96];
	size_t n = strlen(name);
	const struct key *k;

	if (n >= sizeof(key)) {
		error_set(err, ERR_CONFIG, "unknown option --%.40s...", name);
		return false;
	}
	for (size_t i = 0; i <= n; i++) {
		key[i] = name[i] == '-' ? '_' : name[i];
	}
	k = key_find(key);
	if (k == NULL) {
		error_set(err, ERR_CONFIG, "unknown option --%s", name);
		return false;
	}
	snprintf(where, sizeof(where), "option --%s", name);
	return key_set_text(cfg, k, value, where, err);
}

static bool
site_exists(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (strcmp(cfg->sites[i].id, id) == 0) {
			return true;
		}
	}
	return false;
}

static bool
api_keys_validate(const struct config *cfg, struct error *err)
{
	for (size_t i = 0; i < cfg->n_api_keys; i++) {
		const struct config_api_key *k = &cfg->api_keys[i];
		for (size_t j = 0; j < k->n_sites; j++) {
			if (!site_exists(cfg, k->sites[j])) {
				error_set(err, ERR_CONFIG, "api_keys[%zu].sites "
				    "names an unknown site '%s'", i,
				    k->sites[j]);
				return false;
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (strcasecmp(cfg->api_keys[j].key_sha256,
			    k->key_sha256) == 0) {
				error_set(err, ERR_CONFIG, "api_keys[%zu] has "
				    "the same key as api_keys[%zu]", i, j);
				return false;
			}
		}
	}
	return true;
}

/* A site's identity settings: verification needs a secret long enough
 * not to be guessed, and a server key must not be the public write key
 * (that would let every page act as the shop's backend). */
static bool
site_identity_validate(const struct config_site *site, size_t i,
    struct error *err)
{
	size_t secret_len = strlen(site->identity_secret);

	if (site->identity_verification != CONFIG_IDENTITY_OFF &&
	    secret_len == 0) {
		error_set(err, ERR_CONFIG, "sites[%zu].identity_verification "
		    "is %s but the site has no identity_secret", i,
		    identity_modes[site->identity_verification]);
		return false;
	}
	if (secret_len > 0 && secret_len < 16) {
		error_set(err, ERR_CONFIG, "sites[%zu].identity_secret must be "
		    "at least 16 bytes (32 random bytes, hex-encoded, are "
		    "best)", i);
		return false;
	}
	for (size_t k = 0; k < site->n_server_keys; k++) {
		if (privacy_key_matches(site->write_key,
		    site->server_keys[k])) {
			error_set(err, ERR_CONFIG, "sites[%zu].server_keys"
			    "[%zu] is the SHA-256 of the site's write_key: a "
			    "server key must be a secret of its own", i, k);
			return false;
		}
	}
	return true;
}

bool
config_validate(const struct config *cfg, struct error *err)
{
	size_t hash_key_len = strlen(cfg->pii_hash_key);

	if (hash_key_len > 0 && hash_key_len < 16) {
		error_set(err, ERR_CONFIG, "pii_hash_key must be at least 16 "
		    "bytes (32 random bytes, hex-encoded, are best)");
		return false;
	}
	if (!api_keys_validate(cfg, err)) {
		return false;
	}
	if ((cfg->tls_cert_file[0] == '\0') != (cfg->tls_key_file[0] == '\0')) {
		error_set(err, ERR_CONFIG, "tls_cert_file and tls_key_file go "
		    "together: set both or neither");
		return false;
	}
	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (!site_identity_validate(&cfg->sites[i], i, err)) {
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->sites[i].id, cfg->sites[j].id) == 0) {
				error_set(err, ERR_CONFIG, "sites[%zu].id '%s' "
				    "is used twice", i, cfg->sites[i].id);
				return false;
			}
			if (strcmp(cfg->sites[i].write_key,
			    cfg->sites[j].write_key) == 0) {
				error_set(err, ERR_CONFIG, "sites[%zu].write_key "
				    "is the same as sites[%zu].write_key", i, j);
				return false;
			}
		}
	}
	return true;
}
