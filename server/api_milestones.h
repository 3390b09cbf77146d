/* api_milestones.h - GET /api/v1/milestones (read key): each planned
 * event's people, events and micro-conversion rate per period, and its
 * plan target's attainment and pace. docs/api.md has the answer. */
#ifndef MILEPOST_SERVER_API_MILESTONES_H
#define MILEPOST_SERVER_API_MILESTONES_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "server/app.h"
#include "server/query_index.h"

struct request;

void api_milestones(struct request *req, struct app *app);

/* Counting as GET /api/v1/milestones does, for other parts of the daemon
 * (alerts): from the index r holds when it has one, else in the caller's
 * transaction (api_snapshot_begin). */
struct milestones_period {
	int64_t start_us;
	long people, events;
};

/* name's people and events per interval ("hour", "day", "week") in
 * [from_us, to_us): the periods that had any, in no set order, at most
 * max into out, *n of them. */
bool milestones_count(PGconn *pg, const struct query_index_read *r,
    const char *site, const char *name,
    const char *interval, int64_t from_us, int64_t to_us,
    struct milestones_period *out, size_t max, size_t *n,
    struct error *err);

/* name's micro-conversion rate (its people over everyone's with any
 * event) in the last complete target period ("day", "week", "month")
 * before to_us, and how many people had any event then. */
bool milestones_target_rate(PGconn *pg, const struct query_index_read *r,
    const char *site, const char *name,
    const char *period, int64_t to_us, double *rate, long *people,
    struct error *err);

#endif
