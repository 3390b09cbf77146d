/* Configuration layers, errors naming the key, and docs/config.md kept in
 * step with the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"

static const char *docs_path;

/* A fake environment for config_apply_env. */
static const char *const *fake_env;

static const char *
fake_lookup(const char *name)
{
	for (size_t i = 0; fake_env[i] != NULL; i += 2) {
		if (strcmp(fake_env[i], name) == 0) {
			return fake_env[i + 1];
		}
	}
	return NULL;
}

static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/milepost-test-XXXXXX");
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text as a config file; returns the result and the error. */
static bool
load_text(const char *text, struct config **out, struct error *err)
{
	char *path = write_temp(text);
	struct config *cfg = config_new(err);
	bool ok = config_load_file(cfg, path, err);

	unlink(path);
	free(path);
	*out = cfg;
	return ok;
}

static void
test_defaults(void **state)
{
	struct error err;
	struct config *cfg = config_new(&err);

	(void)state;
	assert_non_null(cfg);
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_int_equal(cfg->max_body_bytes, 524288);
	assert_int_equal(cfg->max_batch_events, 500);
	assert_true(cfg->migrate_on_start);
	assert_int_equal(cfg->n_sites, 0);
	config_free(cfg);
}

static void
test_file_values_and_sites(void **state)
{
	struct config *cfg;
	struct error err;

	(void)state;
	assert_true(load_text("{\"listen\":\"0.0.0.0:9000\",\"http_threads\":4,"
	    "\"migrate_on_start\":false,\"sites\":[{\"id\":\"shop\","
	    "\"name\":\"Shop\",\"write_key\":\"wk_shop_123\","
	    "\"allowed_origins\":[\"https://a.example\"]}]}", &cfg, &err));
	assert_string_equal(cfg->listen, "0.0.0.0:9000");
	assert_int_equal(cfg->http_threads, 4);
	assert_false(cfg->migrate_on_start);
	assert_int_equal(cfg->n_sites, 1);
	assert_string_equal(cfg->sites[0].write_key, "wk_shop_123");
	assert_int_equal(cfg->sites[0].n_allowed_origins, 1);
	assert_string_equal(cfg->sites[0].allowed_origins[0],
	    "https://a.example");
	assert_true(config_validate(cfg, &err));
	config_free(cfg);
}

static void
expect_file_error(const char *text, const char *needle)
{
	struct config *cfg;
	struct error err = { 0 };

	if (load_text(text, &cfg, &err)) {
		fail_msg("accepted %s", text);
	}
	assert_int_equal(err.code, ERR_CONFIG);
	if (strstr(err.message, needle) == NULL) {
		fail_msg("error '%s' does not mention '%s'", err.message, needle);
	}
	config_free(cfg);
}

static void
test_file_errors_name_the_key(void **state)
{
	(void)state;
	expect_file_error("{\"lisen\":\"x\"}", "unknown key 'lisen'");
	expect_file_error("{\"http_threads\":\"two\"}", "'http_threads' must "
	    "be an integer");
	expect_file_error("{\"http_threads\":1000}", "'http_threads' must be "
	    "between 1 and 64");
	expect_file_error("{\"http_threads\":99999999999999}", "between");
	expect_file_error("{\"migrate_on_start\":1}", "'migrate_on_start' "
	    "must be a boolean");
	expect_file_error("{\"log_level\":\"loud\"}", "'log_level'");
	expect_file_error("{\"sites\":{}}", "'sites' must be an array");
	expect_file_error("{\"sites\":[{\"id\":\"Shop!\",\"name\":\"n\","
	    "\"write_key\":\"wk_12345678\"}]}", "sites[0].id");
	expect_file_error("{\"sites\":[{\"id\":\"shop\",\"name\":\"n\","
	    "\"write_key\":\"short\"}]}", "sites[0].write_key");
	expect_file_error("{\"sites\":[{\"id\":\"shop\",\"name\":\"n\","
	    "\"write_key\":\"wk_12345678\",\"color\":1}]}", "sites[0].color");
	expect_file_error("{\"sites\":[{\"id\":\"shop\",\"name\":\"n\","
	    "\"write_key\":\"wk_12345678\",\"allowed_origins\":["
	    "\"https://shop.example/\"]}]}", "sites[0].allowed_origins[0]");
	expect_file_error("{\"listen\":", "");
	expect_file_error("[1]", "JSON object");
}

static void
test_env_overrides_file_and_flags_override_env(void **state)
{
	static const char *const env[] = {
		"MILEPOST_LISTEN", "127.0.0.1:7000",
		"MILEPOST_MAX_BODY_BYTES", "2048",
		NULL,
	};
	struct config *cfg;
	struct error err;

	(void)state;
	assert_true(load_text("{\"listen\":\"127.0.0.1:6000\"}", &cfg, &err));
	fake_env = env;
	assert_true(config_apply_env(cfg, fake_lookup, &err));
	assert_string_equal(cfg->listen, "127.0.0.1:7000");
	assert_int_equal(cfg->max_body_bytes, 2048);
	assert_true(config_apply_flag(cfg, "listen", "127.0.0.1:7001", &err));
	assert_string_equal(cfg->listen, "127.0.0.1:7001");
	assert_true(config_apply_flag(cfg, "max-batch-events", "7", &err));
	assert_int_equal(cfg->max_batch_events, 7);
	assert_false(config_apply_flag(cfg, "max-batch-events", "7x", &err));
	assert_non_null(strstr(err.message, "max-batch-events"));
	assert_false(config_apply_flag(cfg, "no-such-key", "1", &err));
	assert_non_null(strstr(err.message, "no-such-key"));
	config_free(cfg);
}

static void
test_env_file_secret_and_bad_env(void **state)
{
	char *secret = write_temp("postgresql:///secretdb\n");
	const char *env_ok[] = { "MILEPOST_DATABASE_URL_FILE", secret, NULL };
	static const char *const env_bad[] = {
		"MILEPOST_MIGRATE_ON_START", "maybe", NULL };
	struct error err;
	struct config *cfg = config_new(&err);

	(void)state;
	fake_env = env_ok;
	assert_true(config_apply_env(cfg, fake_lookup, &err));
	assert_string_equal(cfg->database_url, "postgresql:///secretdb");
	fake_env = env_bad;
	assert_false(config_apply_env(cfg, fake_lookup, &err));
	assert_non_null(strstr(err.message, "MILEPOST_MIGRATE_ON_START"));
	unlink(secret);
	free(secret);
	config_free(cfg);
}

static void
test_duplicate_sites_rejected(void **state)
{
	struct config *cfg;
	struct error err;

	(void)state;
	assert_true(load_text("{\"sites\":[{\"id\":\"a\",\"name\":\"A\","
	    "\"write_key\":\"wk_same_key\"},{\"id\":\"b\",\"name\":\"B\","
	    "\"write_key\":\"wk_same_key\"}]}", &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "write_key"));
	config_free(cfg);
}

/* Identity verification and server keys: modes and hashes are checked
 * at load, and a server key that is the write key, or verification
 * without a secret, at validation. */
static void
test_site_identity_settings(void **state)
{
	static const char site[] = "{\"sites\":[{\"id\":\"shop\","
	    "\"name\":\"n\",\"write_key\":\"wk_12345678\",";
	char text[512], *secret_path;
	struct config *cfg;
	struct error err;

	(void)state;
	snprintf(text, sizeof(text), "%s\"server_keys\":[\"wk_12345678\"]}]}",
	    site);
	expect_file_error(text, "sites[0].server_keys[0]");
	snprintf(text, sizeof(text), "%s\"identity_verification\":\"on\"}]}",
	    site);
	expect_file_error(text, "sites[0].identity_verification");

	snprintf(text, sizeof(text), "%s\"server_keys\":[\"%s\"]}]}", site,
	    "621c012b60bd4c2b5cb1abf38a274482151516bbf27cd472ddc675c58cc04fdb");
	assert_true(load_text(text, &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "sites[0].server_keys[0] is the "
	    "SHA-256 of the site's write_key"));
	config_free(cfg);

	snprintf(text, sizeof(text), "%s\"identity_verification\":"
	    "\"required\"}]}", site);
	assert_true(load_text(text, &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "no identity_secret"));
	config_free(cfg);

	secret_path = write_temp("a-secret-of-more-than-16-bytes\n");
	snprintf(text, sizeof(text), "%s\"identity_verification\":"
	    "\"optional\",\"identity_secret_file\":\"%s\"}]}", site,
	    secret_path);
	assert_true(load_text(text, &cfg, &err));
	assert_true(config_validate(cfg, &err));
	assert_int_equal(cfg->sites[0].identity_verification,
	    CONFIG_IDENTITY_OPTIONAL);
	assert_string_equal(cfg->sites[0].identity_secret,
	    "a-secret-of-more-than-16-bytes");
	config_free(cfg);
	unlink(secret_path);
	free(secret_path);
}

/* The limits are off or generous by default, and TLS takes both files. */
static void
test_limits_and_tls(void **state)
{
	struct config *cfg;
	struct error err;

	(void)state;
	cfg = config_new(&err);
	assert_non_null(cfg);
	assert_int_equal(cfg->max_json_depth, 32);
	assert_int_equal(cfg->max_string_bytes, 65536);
	assert_int_equal(cfg->max_connections_per_ip, 0);
	/* Rate limits ship on (docs/operations.md, "Rate limits"). */
	assert_int_equal(cfg->rate_limit_per_ip, 100);
	assert_int_equal(cfg->rate_limit_burst_per_ip, 1000);
	assert_int_equal(cfg->rate_limit_per_key, 2000);
	assert_int_equal(cfg->rate_limit_burst_per_key, 20000);
	assert_int_equal(cfg->request_timeout_s, 30);
	assert_true(config_validate(cfg, &err));
	config_free(cfg);

	assert_false(load_text("{\"max_json_depth\":1}", &cfg, &err));
	assert_non_null(strstr(err.message, "max_json_depth"));
	config_free(cfg);
	assert_true(load_text("{\"tls_cert_file\":\"/c.pem\"}", &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "tls_key_file"));
	config_free(cfg);
	assert_true(load_text("{\"tls_cert_file\":\"/c.pem\","
	    "\"tls_key_file\":\"/k.pem\"}", &cfg, &err));
	assert_true(config_validate(cfg, &err));
	config_free(cfg);
}

#define SHA_A "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
#define SHA_B "B665A45920422F9D417E4867EFDC4FB8A04A1F3FFF1FA07E998E86F7F7A27AE3"

static void
test_privacy_and_api_keys(void **state)
{
	static const char *const env[] = {
		"MILEPOST_URL_STRIP_PARAMS", " email , token,,x ",
		"MILEPOST_CONSENT_MODE", "anonymous", NULL,
	};
	struct config *cfg;
	struct error err;

	(void)state;
	cfg = config_new(&err);
	assert_string_equal(cfg->consent_mode, "drop");
	assert_false(cfg->honor_dnt);
	assert_true(cfg->url_strip_params.n > 5);
	fake_env = env;
	assert_true(config_apply_env(cfg, fake_lookup, &err));
	assert_string_equal(cfg->consent_mode, "anonymous");
	assert_int_equal(cfg->url_strip_params.n, 3);
	assert_string_equal(cfg->url_strip_params.items[0], "email");
	assert_string_equal(cfg->url_strip_params.items[1], "token");
	assert_string_equal(cfg->url_strip_params.items[2], "x");
	assert_true(config_apply_flag(cfg, "url-strip-params", "[\"a b\"]",
	    &err));
	assert_int_equal(cfg->url_strip_params.n, 1);
	assert_string_equal(cfg->url_strip_params.items[0], "a b");
	config_free(cfg);

	assert_true(load_text("{\"sites\":[{\"id\":\"shop\",\"name\":"
	    "\"n\",\"write_key\":\"wk_12345678\"}],\"api_keys\":["
	    "{\"name\":\"dash\",\"scope\":\"read\",\"key_sha256\":\""
	    SHA_A "\",\"sites\":[\"shop\"]},{\"name\":\"ops\",\"scope\":"
	    "\"admin\",\"key_sha256\":\"" SHA_B "\"}]}", &cfg, &err));
	assert_int_equal(cfg->n_api_keys, 2);
	assert_false(cfg->api_keys[0].admin);
	assert_true(cfg->api_keys[1].admin);
	assert_int_equal(cfg->api_keys[0].n_sites, 1);
	assert_int_equal(cfg->api_keys[1].n_sites, 0);
	assert_true(config_validate(cfg, &err));
	config_free(cfg);

	expect_file_error("{\"consent_mode\":\"maybe\"}", "consent_mode");
	expect_file_error("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"write\",\"key_sha256\":\"" SHA_A "\"}]}", "scope");
	expect_file_error("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"read\",\"key_sha256\":\"abc\"}]}", "key_sha256");
	expect_file_error("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"read\",\"key\":\"plaintext\"}]}", "api_keys[0].key");
	expect_file_error("{\"url_strip_params\":[1]}", "url_strip_params[0]");
	expect_file_error("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"read\",\"key_sha256\":\"" SHA_A "\",\"sites\":[]}]}",
	    "api_keys[0].sites is empty");

	/* Unknown site in a key, the same key twice, a short hash key. */
	assert_true(load_text("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"read\",\"key_sha256\":\"" SHA_A "\",\"sites\":[\"blog\"]}]}",
	    &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "blog"));
	config_free(cfg);
	assert_true(load_text("{\"api_keys\":[{\"name\":\"a\",\"scope\":"
	    "\"read\",\"key_sha256\":\"" SHA_A "\"},{\"name\":\"b\","
	    "\"scope\":\"admin\",\"key_sha256\":\"" SHA_A "\"}]}", &cfg,
	    &err));
	assert_false(config_validate(cfg, &err));
	config_free(cfg);
	assert_true(load_text("{\"pii_hash_key\":\"short\"}", &cfg, &err));
	assert_false(config_validate(cfg, &err));
	assert_non_null(strstr(err.message, "pii_hash_key"));
	config_free(cfg);
}

static void
test_fixed_key_changes(void **state)
{
	struct error err;
	struct config *a = config_new(&err), *b = config_new(&err);

	(void)state;
	assert_null(config_fixed_key_changed(a, b));
	/* Reloadable keys may change... */
	assert_true(config_apply_flag(b, "plan", "config/plan.json", &err));
	assert_true(config_apply_flag(b, "consent-mode", "anonymous", &err));
	assert_true(config_apply_flag(b, "log-level", "debug", &err));
	assert_null(config_fixed_key_changed(a, b));
	/* ...the others are named. */
	assert_true(config_apply_flag(b, "listen", "0.0.0.0:1", &err));
	assert_string_equal(config_fixed_key_changed(a, b), "listen");
	config_free(a);
	config_free(b);
}

static void
test_every_key_is_documented(void **state)
{
	static char docs[65536];
	FILE *f = fopen(docs_path, "r");
	size_t n;

	(void)state;
	assert_non_null(f);
	n = fread(docs, 1, sizeof(docs) - 1, f);
	fclose(f);
	docs[n] = '\0';
	for (size_t i = 0; config_key_name(i) != NULL; i++) {
		char cell[96];
		snprintf(cell, sizeof(cell), "| `%s` |", config_key_name(i));
		if (strstr(docs, cell) == NULL) {
			fail_msg("docs/config.md has no row for '%s'",
			    config_key_name(i));
		}
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_values_and_sites),
		cmocka_unit_test(test_file_errors_name_the_key),
		cmocka_unit_test(test_env_overrides_file_and_flags_override_env),
		cmocka_unit_test(test_env_file_secret_and_bad_env),
		cmocka_unit_test(test_duplicate_sites_rejected),
		cmocka_unit_test(test_site_identity_settings),
		cmocka_unit_test(test_limits_and_tls),
		cmocka_unit_test(test_privacy_and_api_keys),
		cmocka_unit_test(test_fixed_key_changes),
		cmocka_unit_test(test_every_key_is_documented),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s docs/config.md\n", argv[0]);
		return 2;
	}
	docs_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
