/* main.c - the milepost command: serve, migrate, check-plan, hash-key,
 * version.
 *
 * The only place that exits. Signals are blocked before any thread starts
 * and waited for here, so libmicrohttpd's and the writer's threads never
 * see them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/plan.h"
#include "common/privacy.h"
#include "common/timeutil.h"
#include "server/alerter.h"
#include "server/deliverer.h"
#include "server/webhook.h"
#include "server/app.h"
#include "server/db.h"
#include "server/http.h"
#include "server/migrate.h"
#include "server/query.h"
#include "server/query_index.h"
#include "server/store.h"
#include "server/spool.h"
#include "server/spool_replay.h"
#include "server/visitor.h"
#include "server/writer.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
/* A checkout's configuration, when no installed one is found. */
#define DEFAULT_CONFIG "config/milepost.json"
#define MAX_FLAGS 64
#define STARTUP_RETRY_MAX_S 5
/* How soon to try again when the day's salt could not be loaded. */
#define SALT_RETRY_S 30

static const char usage_text[] =
    "usage: milepost [--config FILE] [--KEY VALUE ...] COMMAND\n"
    "\n"
    "commands:\n"
    "  serve             run the collector\n"
    "  migrate           apply pending database migrations and exit\n"
    "  check-plan FILE   lint a tracking plan\n"
    "  hash-key          print the SHA-256 of an API key read from stdin\n"
    "  version           print the version\n"
    "\n"
    "Every configuration key can be given as --key-with-dashes VALUE,\n"
    "as MILEPOST_KEY in the environment, or in the JSON file (default:\n"
    "the installed etc/milepost/milepost.json beside the binary, else\n"
    MILEPOST_INSTALLED_CONFIG ", else " DEFAULT_CONFIG ").\n"
    "See docs/config.md.\n";

static const struct {
	const char *name;
	const char *help;
} command_help[] = {
	{ "serve", "usage: milepost serve [--config FILE] [--KEY VALUE ...]\n"
	  "\nApplies pending migrations (unless migrate_on_start is false),\n"
	  "syncs the configured sites, and serves HTTP on the listen\n"
	  "address until SIGTERM or SIGINT, then finishes the requests in\n"
	  "flight and exits 0. SIGHUP reloads the configuration and the\n"
	  "tracking plan; a reload with problems is refused and the rules\n"
	  "in force stay.\n" },
	{ "check-plan", "usage: milepost check-plan FILE\n"
	  "\nLints the tracking plan in FILE and prints every problem as\n"
	  "'PATH: message'. Exits 0 when the plan is clean, 1 when it has\n"
	  "problems, 2 on usage errors. See docs/plan.md.\n" },
	{ "hash-key", "usage: milepost hash-key < key-file\n"
	  "\nReads an API key (one line) from standard input and prints the\n"
	  "SHA-256 to put in api_keys[].key_sha256. The key itself is never\n"
	  "stored.\n" },
	{ "migrate", "usage: milepost migrate [--config FILE] "
	  "[--database-url URL]\n"
	  "\nApplies the migrations built into this binary that the database\n"
	  "lacks, in order, under an advisory lock, and exits.\n" },
	{ "version", "usage: milepost version\n\nPrints the version.\n" },
};

struct args {
	const char *command;
	const char *operand;	/* check-plan's FILE */
	const char *config_path;
	bool help;
	size_t n_flags;
	const char *flag_names[MAX_FLAGS];
	const char *flag_values[MAX_FLAGS];
	char flag_storage[MAX_FLAGS][64];
};

/* Splits argv into the command, --config, --help and key flags. */
static bool
args_parse(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *value;
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			a->help = true;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			if (a->command != NULL && a->operand == NULL &&
			    strcmp(a->command, "check-plan") == 0) {
				a->operand = arg;
				continue;
			}
			if (a->command != NULL) {
				fprintf(stderr, "milepost: unexpected argument "
				    "'%s'\n", arg);
				return false;
			}
			a->command = arg;
			continue;
		}
		arg += 2;
		eq = strchr(arg, '=');
		if (eq != NULL) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(stderr, "milepost: --%s needs a value\n", arg);
			return false;
		}
		size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (nlen >= sizeof(a->flag_storage[0]) ||
		    a->n_flags == MAX_FLAGS) {
			fprintf(stderr, "milepost: unknown option --%s\n", arg);
			return false;
		}
		memcpy(a->flag_storage[a->n_flags], arg, nlen);
		a->flag_storage[a->n_flags][nlen] = '\0';
		if (strcmp(a->flag_storage[a->n_flags], "config") == 0) {
			a->config_path = value;
			continue;
		}
		a->flag_names[a->n_flags] = a->flag_storage[a->n_flags];
		a->flag_values[a->n_flags] = value;
		a->n_flags++;
	}
	return true;
}

static const char *
env_lookup(const char *name)
{
	return getenv(name);
}

static void
apply_log_level(const struct config *cfg)
{
	enum log_level lvl;

	if (log_level_parse(cfg->log_level, &lvl)) {
		log_set_level(lvl);
	}
}

/* The configuration file when none is named: the one installed with the
 * binary (found from the binary's own location, so that an installed tree
 * works wherever it was copied or unpacked), else the one at the install
 * path, else a checkout's. Into buf. */
static const char *
default_config(char *buf, size_t size)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(buf, size, "%s/%s", exe, MILEPOST_CONFIG_FROM_BIN);
			if (access(buf, R_OK) == 0) {
				return buf;
			}
		}
	}
	snprintf(buf, size, "%s", access(MILEPOST_INSTALLED_CONFIG, R_OK) == 0 ?
	    MILEPOST_INSTALLED_CONFIG : DEFAULT_CONFIG);
	return buf;
}

/* Defaults, file, environment, flags; then checks. */
static struct config *
config_build(const struct args *a, struct error *err)
{
	const char *path = a->config_path;
	struct config *cfg = config_new(err);
	char found[4200];
	bool must_exist = true;
	FILE *probe;

	if (cfg == NULL) {
		return NULL;
	}
	if (path == NULL) {
		path = getenv("MILEPOST_CONFIG");
	}
	if (path == NULL) {
		path = default_config(found, sizeof(found));
		must_exist = false;
	}
	probe = fopen(path, "r");
	if (probe != NULL) {
		fclose(probe);
		if (!config_load_file(cfg, path, err)) {
			goto fail;
		}
	} else if (must_exist) {
		error_set(err, ERR_CONFIG, "cannot open config file %s: %s",
		    path, strerror(errno));
		goto fail;
	}
	if (!config_apply_env(cfg, env_lookup, err)) {
		goto fail;
	}
	for (size_t i = 0; i < a->n_flags; i++) {
		if (!config_apply_flag(cfg, a->flag_names[i],
		    a->flag_values[i], err)) {
			goto fail;
		}
	}
	if (!config_validate(cfg, err)) {
		goto fail;
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

static void
problems_print(FILE *out, const struct plan_problems *probs)
{
	for (size_t i = 0; i < probs->n; i++) {
		fprintf(out, "%s: %s\n", probs->items[i].path,
		    probs->items[i].message);
	}
	if (probs->dropped > 0) {
		fprintf(out, "... and %zu more problems\n", probs->dropped);
	}
}

static int
cmd_check_plan(const char *path)
{
	struct plan_problems probs;
	struct plan *plan;

	if (path == NULL) {
		fputs("usage: milepost check-plan FILE\n", stderr);
		return EXIT_USAGE;
	}
	if (access(path, R_OK) != 0) {
		fprintf(stderr, "milepost: cannot read %s: %s\n", path,
		    strerror(errno));
		return EXIT_USAGE;
	}
	if (!privacy_init(NULL)) {
		return EXIT_RUNTIME;
	}
	plan_problems_init(&probs);
	plan = plan_load_file(path, &probs);
	if (plan == NULL) {
		problems_print(stdout, &probs);
		fprintf(stdout, "%s: %zu problem(s)\n", path,
		    probs.n + probs.dropped);
		plan_problems_finish(&probs);
		return EXIT_RUNTIME;
	}
	printf("plan OK: %zu events in %zu phases, version %ld\n",
	    plan_event_count(plan), plan_phase_count(plan), plan_version(plan));
	plan_free(plan);
	plan_problems_finish(&probs);
	return EXIT_SUCCESS;
}

static int
cmd_hash_key(void)
{
	char key[512], hex[PRIVACY_HEX_LEN];
	size_t n;

	if (!privacy_init(NULL) || fgets(key, sizeof(key), stdin) == NULL) {
		fputs("milepost: hash-key reads the key from standard input\n",
		    stderr);
		return EXIT_USAGE;
	}
	n = strcspn(key, "\r\n");
	if (key[n] == '\0' && !feof(stdin)) {
		fputs("milepost: an API key has at most 500 characters\n",
		    stderr);
		privacy_wipe(key, sizeof(key));
		return EXIT_USAGE;
	}
	key[n] = '\0';
	if (n < 16) {
		fputs("milepost: an API key should have at least 16 "
		    "characters (e.g. openssl rand -hex 24)\n", stderr);
		privacy_wipe(key, sizeof(key));
		return EXIT_USAGE;
	}
	privacy_key_sha256_hex(key, hex);
	privacy_wipe(key, sizeof(key));
	printf("%s\n", hex);
	return EXIT_SUCCESS;
}

/* The plan cfg names (or the default one), checked against what it needs
 * from the configuration. Logs every problem. */
static struct plan *
plan_for(const struct config *cfg, struct error *err)
{
	struct plan_problems probs;
	struct plan *plan;

	if (cfg->plan[0] == '\0') {
		plan = plan_new_default();
		if (plan == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
		}
		return plan;
	}
	plan_problems_init(&probs);
	plan = plan_load_file(cfg->plan, &probs);
	for (size_t i = 0; i < probs.n; i++) {
		log_at(LVL_ERROR, NULL, "plan %s: %s: %s", cfg->plan,
		    probs.items[i].path, probs.items[i].message);
	}
	if (plan == NULL) {
		error_set(err, ERR_PLAN, "the plan %s has %zu problem(s) (run "
		    "milepost check-plan %s)", cfg->plan,
		    probs.n + probs.dropped, cfg->plan);
	} else if (plan_needs_hash_key(plan) && cfg->pii_hash_key[0] == '\0') {
		error_set(err, ERR_PLAN, "the plan %s hashes PII properties: "
		    "set pii_hash_key", cfg->plan);
		plan_free(plan);
		plan = NULL;
	}
	plan_problems_finish(&probs);
	return plan;
}

static int
cmd_migrate(const struct config *cfg)
{
	struct error err = { 0 };
	int applied = 0;
	PGconn *pg = db_connect(cfg->database_url, &err);

	if (pg == NULL || !migrate_apply(pg, &applied, &err)) {
		log_error("migrate failed: %s", err.message);
		PQfinish(pg);
		return EXIT_RUNTIME;
	}
	PQfinish(pg);
	log_info("database schema at version %d (%d migration(s) applied)",
	    migrate_latest_version(), applied);
	return EXIT_SUCCESS;
}

/* Migrations, sites, partitions and the day's salt, before serving. */
static bool
prepare_database(const struct config *cfg,
    const struct alert_config_rule *alerts, size_t n_alerts,
    struct visitor_salt *salt, struct error *err)
{
	PGconn *pg = db_connect(cfg->database_url, err);
	int version = 0;
	bool ok = false;

	if (pg == NULL) {
		return false;
	}
	if (cfg->migrate_on_start) {
		if (!migrate_apply(pg, NULL, err)) {
			goto done;
		}
	} else if (!migrate_current_version(pg, &version, err)) {
		goto done;
	} else if (version < migrate_latest_version()) {
		error_set(err, ERR_MIGRATION, "schema is at version %d, this "
		    "binary needs %d: run milepost migrate", version,
		    migrate_latest_version());
		goto done;
	}
	ok = store_sync_sites(pg, cfg, err) &&
	    store_sync_alert_rules(pg, alerts, n_alerts, err) &&
	    store_ensure_partitions_ahead(pg, timeutil_now_us(),
	    cfg->partitions_ahead_months, err) &&
	    visitor_salt_refresh(salt, pg, timeutil_now_us(), err);
done:
	PQfinish(pg);
	return ok;
}

/* Waits up to seconds (forever if negative) for one of the blocked
 * signals; returns it, or 0 when the time ran out. */
static int
signal_wait(const sigset_t *set, long seconds)
{
	struct timespec ts = { seconds, 0 };
	int sig;

	if (seconds < 0) {
		return sigwait(set, &sig) == 0 ? sig : 0;
	}
	sig = sigtimedwait(set, NULL, &ts);
	return sig > 0 ? sig : 0;
}

/* Loads the day's salt (and, after a reload, the sites and alert rules)
 * with a connection of its own: the writer's are busy. */
static bool
refresh_database(const struct config *boot, const struct config *cfg,
    const struct alert_config_rule *alerts, size_t n_alerts,
    struct visitor_salt *salt)
{
	struct error err = { 0 };
	PGconn *pg = db_connect(boot->database_url, &err);
	bool ok = pg != NULL &&
	    (cfg == NULL || (store_sync_sites(pg, cfg, &err) &&
	    store_sync_alert_rules(pg, alerts, n_alerts, &err))) &&
	    visitor_salt_refresh(salt, pg, timeutil_now_us(), &err);

	if (!ok) {
		log_warn("cannot refresh the visitor salt%s: %s", cfg != NULL ?
		    ", sites and alert rules" : "", err.message);
	}
	PQfinish(pg);
	return ok;
}

/* SIGHUP: the configuration and plan again, all or nothing. */
static void
reload(struct app *app, const struct args *a)
{
	struct error err = { 0 };
	struct config *cfg = config_build(a, &err);
	struct channel_rules *rules = NULL;
	struct alert_config_rule *alerts = NULL;
	size_t n_alerts = 0;
	struct app_state *state;
	struct plan *plan;
	const char *fixed;

	atomic_fetch_add(&app->counters.reloads, 1);
	plan = cfg != NULL ? plan_for(cfg, &err) : NULL;
	rules = plan != NULL ? channel_rules_new(cfg->channel_rules, &err) :
	    NULL;
	if (rules != NULL && !alert_rules_from_config(cfg, plan, &alerts,
	    &n_alerts, &err)) {
		channel_rules_free(rules);
		rules = NULL;
	}
	if (rules == NULL) {
		plan_free(plan);
		plan = NULL;
	}
	if (plan == NULL) {
		atomic_fetch_add(&app->counters.reload_failures, 1);
		state = app_state_get(app);
		log_error("reload refused, the rules in force stay (plan "
		    "version %ld): %s", plan_version(state->plan), err.message);
		app_state_put(state);
		config_free(cfg);
		return;
	}
	fixed = config_fixed_key_changed(app->cfg, cfg);
	if (fixed != NULL) {
		log_warn("reload: %s changed, which takes effect only after a "
		    "restart", fixed);
	}
	refresh_database(app->cfg, cfg, alerts, n_alerts, app->salt);
	free(alerts);
	state = app_state_new(cfg, plan, rules);
	if (state == NULL) {
		atomic_fetch_add(&app->counters.reload_failures, 1);
		log_error("reload refused: out of memory");
		return;
	}
	app_state_swap(app, state);
	apply_log_level(state->cfg);
	log_info("reloaded: plan version %ld (%zu events), %zu site(s), "
	    "%zu API key(s)", plan_version(state->plan),
	    plan_event_count(state->plan), state->cfg->n_sites,
	    state->cfg->n_api_keys);
}

/* Seconds until just after the next UTC midnight, when a new salt is due. */
static long
seconds_to_next_day(void)
{
	long now = (long)(timeutil_now_us() / TIMEUTIL_US_PER_SEC);

	return 86400 - now % 86400 + 1;
}

/* Serves until SIGTERM or SIGINT; SIGHUP reloads, and the day's salt is
 * renewed at midnight. */
static void
serve_loop(struct app *app, const struct args *a, const sigset_t *signals)
{
	bool salt_ok = true;

	for (;;) {
		int sig = signal_wait(signals, salt_ok ?
		    seconds_to_next_day() : SALT_RETRY_S);
		if (sig == SIGHUP) {
			reload(app, a);
			continue;
		}
		if (sig != 0) {
			return;
		}
		salt_ok = refresh_database(app->cfg, NULL, NULL, 0, app->salt);
	}
}

static int
cmd_serve(const struct args *a, struct config *cfg, const sigset_t *signals)
{
	struct app app = { .cfg = cfg };
	struct app_state *boot;
	struct error err = { 0 };
	struct channel_rules *rules;
	struct http *http = NULL;
	struct alerter *alerter = NULL;
	struct deliverer *deliverer = NULL;
	struct alert_config_rule *alerts = NULL;
	size_t n_alerts = 0;
	struct plan *plan;
	long delay = 1;
	int rc = EXIT_RUNTIME, sig;

	pthread_mutex_init(&app.lock, NULL);
	plan = plan_for(cfg, &err);
	rules = plan != NULL ? channel_rules_new(cfg->channel_rules, &err) :
	    NULL;
	if (rules == NULL || !privacy_init(&err) ||
	    (app.salt = visitor_salt_new()) == NULL || !webhook_init()) {
		if (err.code == ERR_NONE) {
			error_set(&err, ERR_INTERNAL, "out of memory, or libcurl "
			    "did not start");
		}
		log_error("cannot start: %s", err.message);
		plan_free(plan);
		channel_rules_free(rules);
		config_free(cfg);
		return EXIT_RUNTIME;
	}
	/* The boot state holds cfg, which app.cfg borrows until the end. */
	boot = app_state_new(cfg, plan, rules);
	if (boot == NULL) {
		log_error("cannot start: out of memory");
		goto done;
	}
	app.state = boot;
	boot = app_state_get(&app);
	if (!alert_rules_from_config(cfg, plan, &alerts, &n_alerts, &err)) {
		log_error("cannot start: %s", err.message);
		goto done;
	}
	/* A database that is still starting (as in a compose file) is
	 * waited for; a broken migration is not. */
	while (!prepare_database(cfg, alerts, n_alerts, app.salt, &err)) {
		if (err.code != ERR_DATABASE_UNAVAILABLE) {
			log_error("cannot prepare the database: %s",
			    err.message);
			goto done;
		}
		log_warn("%s; retrying in %lds", err.message, delay);
		sig = signal_wait(signals, delay);
		if (sig == SIGINT || sig == SIGTERM) {
			rc = EXIT_SUCCESS;
			goto done;
		}
		delay = delay * 2 > STARTUP_RETRY_MAX_S ? STARTUP_RETRY_MAX_S :
		    delay * 2;
	}
	if (cfg->spool_dir[0] != '\0' && (app.spool = spool_open(
	    cfg->spool_dir, cfg->spool_max_bytes, &err)) == NULL) {
		log_error("cannot open the spool: %s", err.message);
		goto done;
	}
	app.writer = writer_new(cfg, &err);
	if (app.writer == NULL) {
		log_error("cannot start the writer: %s", err.message);
		goto done;
	}
	if (app.spool != NULL && (app.spool_replay = spool_replay_new(
	    app.spool, app.writer, &err)) == NULL) {
		log_error("%s", err.message);
		writer_free(app.writer);
		goto done;
	}
	app.index = query_index_new(cfg);
	if (!query_index_start(app.index)) {
		log_warn("the query index cannot start: PostgreSQL answers "
		    "every query");
		query_index_free(app.index);
		app.index = NULL;
	}
	app.queries = query_pool_new(cfg, &err);
	alerter = app.queries != NULL ? alerter_new(&app, &err) : NULL;
	deliverer = alerter != NULL ? deliverer_new(&app, &err) : NULL;
	http = deliverer != NULL ? http_new(&app, &err) : NULL;
	if (http == NULL) {
		log_error("%s", err.message);
		deliverer_free(deliverer);
		alerter_free(alerter);
		query_pool_free(app.queries);
		query_index_free(app.index);
		spool_replay_free(app.spool_replay);
		writer_free(app.writer);
		goto done;
	}
	log_info("milepost %s serving on %s with %zu site(s), plan version %ld "
	    "(%zu events)", MILEPOST_VERSION, cfg->listen, cfg->n_sites,
	    plan_version(plan), plan_event_count(plan));

	serve_loop(&app, a, signals);
	log_info("stopping: no new connections, finishing requests in "
	    "flight");
	http_quiesce(http);
	if (!http_wait_idle(http, cfg->shutdown_timeout_s * 1000)) {
		log_warn("requests still in flight after %lds; their events "
		    "are answered 503", cfg->shutdown_timeout_s);
	}
	/* An alert sweep in progress finishes on the pool first; a webhook
	 * being called, within its timeout. */
	deliverer_free(deliverer);
	alerter_free(alerter);
	/* Answers the API calls still queued; a replay still running
	 * finishes first, with the writer still there to take it. */
	query_pool_free(app.queries);
	query_index_free(app.index);
	/* A spool file being replayed stays for the next start from the
	 * record its replay stopped at. */
	spool_replay_free(app.spool_replay);
	/* Completes every queued item, resuming its request (which may
	 * still spool it)... */
	writer_free(app.writer);
	/* ...so that those get their answer before the daemon closes. */
	http_wait_idle(http, 2000);
	http_free(http);
	log_info("stopped");
	rc = EXIT_SUCCESS;
done:
	spool_close(app.spool);
	free(alerts);
	webhook_cleanup();
	app_state_put(app.state);
	app_state_put(boot);
	visitor_salt_free(app.salt);
	pthread_mutex_destroy(&app.lock);
	return rc;
}

static int
print_help(const char *command)
{
	for (size_t i = 0; command != NULL &&
	    i < sizeof(command_help) / sizeof(command_help[0]); i++) {
		if (strcmp(command_help[i].name, command) == 0) {
			fputs(command_help[i].help, stdout);
			return EXIT_SUCCESS;
		}
	}
	fputs(usage_text, stdout);
	return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct error err = { 0 };
	sigset_t signals;
	struct args args;
	int rc;

	if (!args_parse(argc, argv, &args)) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (args.help) {
		return print_help(args.command);
	}
	if (args.command == NULL) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(args.command, "version") == 0) {
		printf("milepost %s\n", MILEPOST_VERSION);
		return EXIT_SUCCESS;
	}
	if (strcmp(args.command, "check-plan") == 0) {
		return cmd_check_plan(args.operand);
	}
	if (strcmp(args.command, "hash-key") == 0) {
		return cmd_hash_key();
	}
	if (strcmp(args.command, "serve") != 0 &&
	    strcmp(args.command, "migrate") != 0) {
		fprintf(stderr, "milepost: unknown command '%s'\n\n%s",
		    args.command, usage_text);
		return EXIT_USAGE;
	}

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	cfg = config_build(&args, &err);
	if (cfg == NULL) {
		log_error("configuration: %s", err.message);
		return EXIT_USAGE;
	}
	apply_log_level(cfg);
	if (strcmp(args.command, "migrate") == 0) {
		rc = cmd_migrate(cfg);
		config_free(cfg);
		return rc;
	}
	return cmd_serve(&args, cfg, &signals);	/* takes cfg over */
}
