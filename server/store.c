/* store.c - sites, partitions and dedup upkeep. */
#include "server/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/db.h"
#include "server/pgarray.h"

static char *
origins_json(const struct config_site *site)
{
	json_t *arr = json_array();
	char *text;

	for (size_t i = 0; arr != NULL && i < site->n_allowed_origins; i++) {
		json_array_append_new(arr,
		    json_string(site->allowed_origins[i]));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

static char *
site_ids_json(const struct config *cfg)
{
	json_t *arr = json_array();
	char *text;

	for (size_t i = 0; arr != NULL && i < cfg->n_sites; i++) {
		json_array_append_new(arr, json_string(cfg->sites[i].id));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

static bool
upsert_site(PGconn *pg, const struct config_site *site, struct error *err)
{
	char *origins = origins_json(site);
	const char *params[] = { site->id, site->name, site->write_key,
		origins };
	bool ok;

	if (origins == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	ok = db_exec(pg, "INSERT INTO sites (id, name, write_key, "
	    "allowed_origins) VALUES ($1, $2, $3, ARRAY(SELECT "
	    "jsonb_array_elements_text($4::jsonb))) "
	    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
	    "write_key = EXCLUDED.write_key, "
	    "allowed_origins = EXCLUDED.allowed_origins, active = true, "
	    "updated_at = now()", 4, params, err);
	free(origins);
	return ok;
}

bool
store_sync_sites(PGconn *pg, const struct config *cfg, struct error *err)
{
	struct error ignored;
	char *ids = NULL;

	if (!db_exec(pg, "BEGIN", 0, NULL, err)) {
		return false;
	}
	ids = site_ids_json(cfg);
	if (ids == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	/* Retired sites first, so that a key moved to a new site does not
	 * collide with its old owner. */
	if (!db_exec(pg, "UPDATE sites SET active = false, updated_at = now(), "
	    "write_key = 'retired:' || id WHERE active AND id NOT IN "
	    "(SELECT jsonb_array_elements_text($1::jsonb))", 1,
	    (const char *const[]){ ids }, err)) {
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (!upsert_site(pg, &cfg->sites[i], err)) {
			goto fail;
		}
	}
	if (!db_exec(pg, "COMMIT", 0, NULL, err)) {
		goto fail;
	}
	free(ids);
	log_info("synchronised %zu site(s) from the configuration",
	    cfg->n_sites);
	return true;
fail:
	free(ids);
	db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
	return false;
}

/* A configured rule, replacing what the site had under its name (a rule
 * saved over the API included: the configuration wins). */
static const char config_rule_sql[] = "INSERT INTO alert_rules (site_id,"
    " name, rule, source) VALUES ($1, $2, $3::jsonb, 'config')"
    " ON CONFLICT (site_id, name) DO UPDATE SET rule = EXCLUDED.rule,"
    " source = 'config', updated_at = now()"
    " WHERE alert_rules.rule IS DISTINCT FROM EXCLUDED.rule"
    " OR alert_rules.source <> 'config'";
/* The configured rules no longer configured: $1 sites, $2 names. */
static const char config_rules_gone_sql[] = "DELETE FROM alert_rules"
    " WHERE source = 'config' AND (site_id, name) NOT IN"
    " (SELECT * FROM unnest($1::text[], $2::text[]))";

bool
store_sync_alert_rules(PGconn *pg, const struct alert_config_rule *rules,
    size_t n, struct error *err)
{
	struct pgarray sites, names;
	struct error ignored;
	bool ok = false;

	pgarray_init(&sites);
	pgarray_init(&names);
	if (!db_exec(pg, "BEGIN", 0, NULL, err)) {
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *doc = alert_rule_json(&rules[i].rule);
		char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
		const char *params[] = { rules[i].site, rules[i].rule.name, text };
		bool fine = text != NULL && db_exec(pg, config_rule_sql, 3, params,
		    err);

		if (text == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
		}
		free(text);
		json_decref(doc);
		if (!fine) {
			goto done;
		}
		pgarray_add_text(&sites, rules[i].site);
		pgarray_add_text(&names, rules[i].rule.name);
	}
	const char *gone[] = { pgarray_value(&sites), pgarray_value(&names) };
	if (gone[0] == NULL || gone[1] == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto done;
	}
	ok = db_exec(pg, config_rules_gone_sql, 2, gone, err) &&
	    db_exec(pg, "COMMIT", 0, NULL, err);
	if (ok) {
		log_info("synchronised %zu alert rule(s) from the configuration",
		    n);
	}
done:
	if (!ok) {
		db_exec(pg, "ROLLBACK", 0, NULL, &ignored);
	}
	pgarray_finish(&sites);
	pgarray_finish(&names);
	return ok;
}

bool
store_ensure_partition(PGconn *pg, int32_t month_index, struct error *err)
{
	char at[TIMEUTIL_RFC3339_LEN];
	const char *params[] = { at };

	timeutil_format_rfc3339(timeutil_month_start_us(month_index), at);
	return db_exec(pg, "SELECT milepost_ensure_event_partition("
	    "$1::timestamptz)", 1, params, err);
}

bool
store_ensure_partitions_ahead(PGconn *pg, int64_t now_us, long months_ahead,
    struct error *err)
{
	int32_t first = timeutil_month_index(now_us);

	for (int32_t m = first; m <= first + months_ahead; m++) {
		if (!store_ensure_partition(pg, m, err)) {
			return false;
		}
	}
	return true;
}

bool
store_prune_event_ids(PGconn *pg, long hours, long *deleted,
    struct error *err)
{
	char h[24];
	const char *params[] = { h };
	PGresult *res;

	snprintf(h, sizeof(h), "%ld", hours);
	res = db_query(pg, "DELETE FROM event_ids WHERE received_at < now() - "
	    "make_interval(hours => $1::int)", 1, params, err);
	if (res == NULL) {
		return false;
	}
	*deleted = atol(PQcmdTuples(res));
	PQclear(res);
	return true;
}

/* Events before the cutoff; the query index is told (migrations/0015)
 * in the same statement, when any went. */
static const char events_retention_sql[] =
	"WITH c AS (SELECT now() - make_interval(days => $1::int) AS cutoff),"
	" r AS (SELECT r.* FROM c, milepost_apply_retention(c.cutoff) r),"
	" logged AS (INSERT INTO index_changes (events_before)"
	" SELECT c.cutoff FROM c, r"
	" WHERE r.dropped_partitions > 0 OR r.deleted_events > 0)"
	" SELECT dropped_partitions, deleted_events FROM r";

/* Sessions whose last event, and first times whose event, is past
 * retention; with its last sessions, a person none of whose events is left
 * (under its own person_id or one merged into it) loses its ids and merges
 * too. Its people are found through the sessions that go, and each is
 * checked by index (events_person, sessions_person, person_merges_into),
 * so that the hourly run costs what ages out, not the tables. The
 * statement sees sessions as they were before its delete, hence the cutoff
 * in the check of the sessions left. */
static const char *const derived_retention_sql[] = {
	"WITH gone AS (DELETE FROM sessions"
	" WHERE last_at < now() - make_interval(days => $1::int)"
	" RETURNING site_id, person_id),"
	" logged AS (INSERT INTO index_changes (sessions_before)"
	" SELECT now() - make_interval(days => $1::int)"
	" WHERE EXISTS (SELECT 1 FROM gone)),"
	" emptied AS (SELECT DISTINCT g.site_id, g.person_id FROM gone g"
	" WHERE NOT EXISTS (SELECT 1 FROM sessions s"
	"  WHERE s.person_id = g.person_id AND s.site_id = g.site_id"
	"  AND s.last_at >= now() - make_interval(days => $1::int))"
	" AND NOT EXISTS (SELECT 1 FROM events e"
	"  WHERE e.person_id = g.person_id AND e.site_id = g.site_id)"
	" AND NOT EXISTS (SELECT 1 FROM person_merges m JOIN events e"
	"  ON e.person_id = m.from_person AND e.site_id = m.site_id"
	"  WHERE m.site_id = g.site_id AND m.into_person = g.person_id)),"
	" merges AS (DELETE FROM person_merges m USING emptied p"
	"  WHERE m.site_id = p.site_id AND m.into_person = p.person_id)"
	" DELETE FROM identities i USING emptied p"
	" WHERE i.person_id = p.person_id AND i.site_id = p.site_id",
	"DELETE FROM person_milestones WHERE first_at < now() - "
	"make_interval(days => $1::int)",
};

/* A transition goes with its deliveries, once none is left to make. */
static const char alert_retention_sql[] =
	"WITH gone AS ("
	" DELETE FROM alert_events e"
	" WHERE at < now() - make_interval(days => $1::int)"
	" AND NOT EXISTS (SELECT 1 FROM alert_deliveries d"
	"  WHERE d.site_id = e.site_id AND d.event_id = e.id"
	"  AND d.status = 'pending')"
	" RETURNING site_id, id),"
	" calls AS (DELETE FROM alert_deliveries d USING gone g"
	"  WHERE d.site_id = g.site_id AND d.event_id = g.id)"
	" SELECT count(*) FROM gone";

/* Runs sql, which counts what it deleted, with days as $1, adding the
 * count to *count. */
static bool
delete_older(PGconn *pg, const char *sql, long days, long *count,
    struct error *err)
{
	char text[24];
	const char *params[] = { text };
	PGresult *res;

	snprintf(text, sizeof(text), "%ld", days);
	res = db_query(pg, sql, 1, params, err);
	if (res == NULL) {
		return false;
	}
	*count += atol(PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) :
	    PQcmdTuples(res));
	PQclear(res);
	return true;
}

bool
store_apply_retention(PGconn *pg, const struct config *cfg,
    struct store_retention *out, struct error *err)
{
	char days[24];
	const char *params[] = { days };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	snprintf(days, sizeof(days), "%ld", cfg->retention_days);
	if (cfg->retention_days > 0) {
		res = db_query(pg, events_retention_sql, 1, params, err);
		if (res == NULL) {
			return false;
		}
		out->dropped_partitions = atol(PQgetvalue(res, 0, 0));
		out->deleted_events = atol(PQgetvalue(res, 0, 1));
		PQclear(res);
		/* What ingest derived from those events goes with them. */
		for (size_t i = 0; i < sizeof(derived_retention_sql) /
		    sizeof(derived_retention_sql[0]); i++) {
			if (!db_exec(pg, derived_retention_sql[i], 1, params,
			    err)) {
				return false;
			}
		}
	}
	if (cfg->rejected_retention_days > 0 && !delete_older(pg,
	    "DELETE FROM rejected_events WHERE "
	    "received_at < now() - make_interval(days => $1::int)",
	    cfg->rejected_retention_days, &out->deleted_rejected, err)) {
		return false;
	}
	return cfg->alert_history_retention_days == 0 || delete_older(pg,
	    alert_retention_sql, cfg->alert_history_retention_days,
	    &out->deleted_alert_events, err);
}
