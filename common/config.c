/* config.c - the configuration table and its four layers. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum key_type {
	KEY_STRING,
	KEY_INT,
	KEY_BOOL,
	KEY_SITES,
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *default_text;	/* parsed like an environment value */
	long min, max;
	bool (*check)(const char *value);
};

static bool check_log_level(const char *value);

#define FIELD(f) offsetof(struct config, f)

/* Alphabetical; docs/config.md lists the same keys. */
static const struct key keys[] = {
	{ "connection_timeout_s", KEY_INT, FIELD(connection_timeout_s), "30",
	  1, 3600, NULL },
	{ "database_url", KEY_STRING, FIELD(database_url),
	  "postgresql:///milepost", 0, 0, NULL },
	{ "dedup_window_hours", KEY_INT, FIELD(dedup_window_hours), "168", 1,
	  8760, NULL },
	{ "http_threads", KEY_INT, FIELD(http_threads), "2", 1, 64, NULL },
	{ "listen", KEY_STRING, FIELD(listen), "127.0.0.1:8080", 0, 0, NULL },
	{ "log_level", KEY_STRING, FIELD(log_level), "info", 0, 0,
	  check_log_level },
	{ "max_batch_events", KEY_INT, FIELD(max_batch_events), "500", 1,
	  100000, NULL },
	{ "max_body_bytes", KEY_INT, FIELD(max_body_bytes), "524288", 1024,
	  67108864, NULL },
	{ "max_connections", KEY_INT, FIELD(max_connections), "1024", 16,
	  65536, NULL },
	{ "migrate_on_start", KEY_BOOL, FIELD(migrate_on_start), "true", 0, 0,
	  NULL },
	{ "partitions_ahead_months", KEY_INT, FIELD(partitions_ahead_months),
	  "2", 1, 24, NULL },
	{ "retry_after_s", KEY_INT, FIELD(retry_after_s), "5", 1, 3600, NULL },
	{ "shutdown_timeout_s", KEY_INT, FIELD(shutdown_timeout_s), "10", 1,
	  600, NULL },
	{ "sites", KEY_SITES, FIELD(sites), "[]", 0, 0, NULL },
	{ "writer_batch_max_events", KEY_INT, FIELD(writer_batch_max_events),
	  "1000", 1, 100000, NULL },
	{ "writer_batch_max_wait_ms", KEY_INT, FIELD(writer_batch_max_wait_ms),
	  "2", 0, 1000, NULL },
	{ "writer_threads", KEY_INT, FIELD(writer_threads), "2", 1, 16, NULL },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static bool
check_log_level(const char *value)
{
	enum log_level lvl;

	return log_level_parse(value, &lvl);
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

const char *
config_key_name(size_t i)
{
	return i < N_KEYS ? keys[i].name : NULL;
}

static void
sites_free(struct config_site *sites, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(sites[i].id);
		free(sites[i].name);
		free(sites[i].write_key);
		for (size_t j = 0; j < sites[i].n_allowed_origins; j++) {
			free(sites[i].allowed_origins[j]);
		}
		free(sites[i].allowed_origins);
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

static bool
site_parse(json_t *obj, size_t idx, const char *where,
    struct config_site *site, struct error *err)
{
	static const char *const allowed[] = { "id", "name", "write_key",
		"allowed_origins" };
	const char *k;
	json_t *v, *origins;
	size_t j;

	if (!json_is_object(obj)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu] must be an object",
		    where, idx);
		return false;
	}
	json_object_foreach(obj, k, v) {
		bool known = false;
		for (j = 0; j < sizeof(allowed) / sizeof(allowed[0]); j++) {
			known = known || strcmp(k, allowed[j]) == 0;
		}
		if (!known) {
			error_set(err, ERR_CONFIG,
			    "%s: unknown key 'sites[%zu].%s'", where, idx, k);
			return false;
		}
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
	origins = json_object_get(obj, "allowed_origins");
	if (origins == NULL) {
		return true;
	}
	if (!json_is_array(origins)) {
		error_set(err, ERR_CONFIG, "%s: sites[%zu].allowed_origins must "
		    "be an array of strings", where, idx);
		return false;
	}
	site->allowed_origins = calloc(json_array_size(origins) + 1,
	    sizeof(char *));
	if (site->allowed_origins == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	json_array_foreach(origins, j, v) {
		if (!json_is_string(v)) {
			error_set(err, ERR_CONFIG, "%s: sites[%zu]."
			    "allowed_origins[%zu] must be a string", where, idx,
			    j);
			return false;
		}
		site->allowed_origins[j] = strdup(json_string_value(v));
		if (site->allowed_origins[j] == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
			return false;
		}
		site->n_allowed_origins = j + 1;
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

/* Sets key k from text, as found in the environment or on the command
 * line (and in the defaults column of the table). */
static bool
key_set_text(struct config *cfg, const struct key *k, const char *text,
    const char *where, struct error *err)
{
	json_error_t jerr;
	json_t *arr;
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
	case KEY_SITES:
		arr = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		if (arr == NULL) {
			error_set(err, ERR_CONFIG, "%s: key '%s' is not valid "
			    "JSON: %s", where, k->name, jerr.text);
			return false;
		}
		ok = sites_set(cfg, arr, where, err);
		json_decref(arr);
		return ok;
	}
	return false;
}

static bool
key_set_json(struct config *cfg, const struct key *k, json_t *v,
    const char *where, struct error *err)
{
	static const char *const type_names[] = {
		[KEY_STRING] = "a string", [KEY_INT] = "an integer",
		[KEY_BOOL] = "a boolean", [KEY_SITES] = "an array",
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
		if (keys[i].type == KEY_STRING) {
			free(*(char **)field(cfg, &keys[i]));
		}
	}
	sites_free(cfg->sites, cfg->n_sites);
	free(cfg);
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
	ok = true;
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

bool
config_validate(const struct config *cfg, struct error *err)
{
	for (size_t i = 0; i < cfg->n_sites; i++) {
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
