/* main.c - the milepost command: serve, migrate, version.
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

#include "common/config.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/app.h"
#include "server/db.h"
#include "server/http.h"
#include "server/migrate.h"
#include "server/store.h"
#include "server/writer.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define DEFAULT_CONFIG "config/milepost.json"
#define MAX_FLAGS 64
#define STARTUP_RETRY_MAX_S 5

static const char usage_text[] =
    "usage: milepost [--config FILE] [--KEY VALUE ...] COMMAND\n"
    "\n"
    "commands:\n"
    "  serve     run the collector\n"
    "  migrate   apply pending database migrations and exit\n"
    "  version   print the version\n"
    "\n"
    "Every configuration key can be given as --key-with-dashes VALUE,\n"
    "as MILEPOST_KEY in the environment, or in the JSON file\n"
    "(default " DEFAULT_CONFIG "). See docs/config.md.\n";

static const struct {
	const char *name;
	const char *help;
} command_help[] = {
	{ "serve", "usage: milepost serve [--config FILE] [--KEY VALUE ...]\n"
	  "\nApplies pending migrations (unless migrate_on_start is false),\n"
	  "syncs the configured sites, and serves HTTP on the listen\n"
	  "address until SIGTERM or SIGINT, then finishes the requests in\n"
	  "flight and exits 0.\n" },
	{ "migrate", "usage: milepost migrate [--config FILE] "
	  "[--database-url URL]\n"
	  "\nApplies the migrations built into this binary that the database\n"
	  "lacks, in order, under an advisory lock, and exits.\n" },
	{ "version", "usage: milepost version\n\nPrints the version.\n" },
};

struct args {
	const char *command;
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

/* Defaults, file, environment, flags; then checks. */
static struct config *
config_build(const struct args *a, struct error *err)
{
	const char *path = a->config_path;
	struct config *cfg = config_new(err);
	bool must_exist = true;
	FILE *probe;

	if (cfg == NULL) {
		return NULL;
	}
	if (path == NULL) {
		path = getenv("MILEPOST_CONFIG");
	}
	if (path == NULL) {
		path = DEFAULT_CONFIG;
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
	enum log_level lvl;
	if (log_level_parse(cfg->log_level, &lvl)) {
		log_set_level(lvl);
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
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

/* Migrations, sites and partitions, before serving. */
static bool
prepare_database(const struct config *cfg, struct error *err)
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
	    store_ensure_partitions_ahead(pg, timeutil_now_us(),
	    cfg->partitions_ahead_months, err);
done:
	PQfinish(pg);
	return ok;
}

/* Waits up to seconds for one of the blocked signals; true if one came. */
static bool
signal_wait(const sigset_t *set, long seconds)
{
	struct timespec ts = { seconds, 0 };
	int sig;

	if (seconds < 0) {
		return sigwait(set, &sig) == 0;
	}
	return sigtimedwait(set, NULL, &ts) > 0;
}

static int
cmd_serve(const struct config *cfg, const sigset_t *signals)
{
	struct app app = { .cfg = cfg };
	struct error err = { 0 };
	struct http *http = NULL;
	long delay = 1;

	/* A database that is still starting (as in a compose file) is
	 * waited for; a broken migration is not. */
	while (!prepare_database(cfg, &err)) {
		if (err.code != ERR_DATABASE_UNAVAILABLE) {
			log_error("cannot prepare the database: %s",
			    err.message);
			return EXIT_RUNTIME;
		}
		log_warn("%s; retrying in %lds", err.message, delay);
		if (signal_wait(signals, delay)) {
			return EXIT_SUCCESS;
		}
		delay = delay * 2 > STARTUP_RETRY_MAX_S ? STARTUP_RETRY_MAX_S :
		    delay * 2;
	}
	app.writer = writer_new(cfg, &err);
	if (app.writer == NULL) {
		log_error("cannot start the writer: %s", err.message);
		return EXIT_RUNTIME;
	}
	http = http_new(&app, &err);
	if (http == NULL) {
		log_error("%s", err.message);
		writer_free(app.writer);
		return EXIT_RUNTIME;
	}
	log_info("milepost %s serving on %s with %zu site(s)",
	    MILEPOST_VERSION, cfg->listen, cfg->n_sites);

	signal_wait(signals, -1);
	log_info("stopping: no new connections, finishing requests in "
	    "flight");
	http_quiesce(http);
	if (!http_wait_idle(http, cfg->shutdown_timeout_s * 1000)) {
		log_warn("requests still in flight after %lds; their events "
		    "are answered 503", cfg->shutdown_timeout_s);
	}
	/* Completes every queued item, resuming its request... */
	writer_free(app.writer);
	/* ...so that those get their answer before the daemon closes. */
	http_wait_idle(http, 2000);
	http_free(http);
	log_info("stopped");
	return EXIT_SUCCESS;
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
	if (strcmp(args.command, "serve") != 0 &&
	    strcmp(args.command, "migrate") != 0) {
		fprintf(stderr, "milepost: unknown command '%s'\n\n%s",
		    args.command, usage_text);
		return EXIT_USAGE;
	}

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	cfg = config_build(&args, &err);
	if (cfg == NULL) {
		log_error("configuration: %s", err.message);
		return EXIT_USAGE;
	}
	if (strcmp(args.command, "migrate") == 0) {
		rc = cmd_migrate(cfg);
	} else {
		rc = cmd_serve(cfg, &signals);
	}
	config_free(cfg);
	return rc;
}
