/* store.h - the collector's own upkeep of its tables: sites from the
 * configuration, monthly events partitions, the dedup window, retention. */
#ifndef MILEPOST_SERVER_STORE_H
#define MILEPOST_SERVER_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/alert_rule.h"
#include "common/config.h"
#include "common/error.h"

/* Upserts the configured sites and marks the others inactive, in one
 * transaction. */
bool store_sync_sites(PGconn *pg, const struct config *cfg,
    struct error *err);

/* Creates the events partition for month_index (timeutil_month_index) if
 * it is missing. */
/* Makes the configuration's alert rules (alert_rules_from_config) those
 * of source 'config': each created or replaced, the ones no longer
 * configured deleted. One transaction. */
bool store_sync_alert_rules(PGconn *pg, const struct alert_config_rule *rules,
    size_t n, struct error *err);

bool store_ensure_partition(PGconn *pg, int32_t month_index,
    struct error *err);

/* Ensures partitions from the month holding now_us to months_ahead months
 * after it. */
bool store_ensure_partitions_ahead(PGconn *pg, int64_t now_us,
    long months_ahead, struct error *err);

/* Forgets event ids received more than hours ago; *deleted tells how many. */
bool store_prune_event_ids(PGconn *pg, long hours, long *deleted,
    struct error *err);

struct store_retention {
	long dropped_partitions;
	long deleted_events;
	long deleted_rejected;
	long deleted_alert_events;
};

/* Drops events older than retention_days (whole partitions where it can),
 * with the sessions and first times (person_milestones) that old,
 * rejected events older than rejected_retention_days, and alert
 * transitions older than alert_history_retention_days with their webhook
 * deliveries (not while one is still pending); 0 keeps them for ever. */
bool store_apply_retention(PGconn *pg, const struct config *cfg,
    struct store_retention *out, struct error *err);

#endif
