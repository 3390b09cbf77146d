/* qmilestones.c - milestones per period over the query index
 * (qmilestones.h): one pass over each person's events in the range,
 * counting events per name and period, and people once per name and
 * period (a cell remembers the last person it counted). */
#include "common/qmilestones.h"

#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

#define HOUR_US (3600 * TIMEUTIL_US_PER_SEC)
#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)

bool
qperiod_parse(const char *name, enum qperiod *out)
{
	static const char *const names[] = { "hour", "day", "week", "month" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum qperiod)i;
			return true;
		}
	}
	return false;
}

int64_t
qperiod_start(enum qperiod p, int64_t us)
{
	int64_t day = us / DAY_US - (us % DAY_US < 0);

	switch (p) {
	case QPERIOD_WEEK:
		/* 1970-01-01 was a Thursday; weeks start on Monday. */
		return (day - (((day + 3) % 7) + 7) % 7) * DAY_US;
	case QPERIOD_MONTH:
		return timeutil_month_start_us(timeutil_month_index(us));
	case QPERIOD_HOUR:
		return (us / HOUR_US - (us % HOUR_US < 0)) * HOUR_US;
	default:
		return day * DAY_US;
	}
}

int64_t
qperiod_next(enum qperiod p, int64_t start)
{
	switch (p) {
	case QPERIOD_WEEK:
		return start + 7 * DAY_US;
	case QPERIOD_MONTH:
		return timeutil_month_start_us(timeutil_month_index(start) + 1);
	case QPERIOD_HOUR:
		return start + HOUR_US;
	default:
		return start + DAY_US;
	}
}

bool
milestones_counts_alloc(struct milestones_counts *out, size_t n,
    size_t n_names)
{
	memset(out, 0, sizeof(*out));
	out->n_periods = n;
	out->n_names = n_names;
	out->start = calloc(n + 1, sizeof(*out->start));
	out->complete = calloc(n + 1, sizeof(*out->complete));
	out->active = calloc(n + 1, sizeof(*out->active));
	out->people = calloc(n * n_names + 1, sizeof(*out->people));
	out->events = calloc(n * n_names + 1, sizeof(*out->events));
	if (out->start == NULL || out->complete == NULL || out->active == NULL ||
	    out->people == NULL || out->events == NULL) {
		milestones_counts_finish(out);
		return false;
	}
	return true;
}

bool
milestones_counts_init(struct milestones_counts *out, enum qperiod p,
    size_t n_names, int64_t from_us, int64_t to_us, int64_t now_us)
{
	size_t n = 0;
	int64_t end = to_us < now_us ? to_us : now_us;

	for (int64_t s = qperiod_start(p, from_us); s < to_us;
	    s = qperiod_next(p, s)) {
		n++;
	}
	if (!milestones_counts_alloc(out, n, n_names)) {
		return false;
	}
	n = 0;
	for (int64_t s = qperiod_start(p, from_us); s < to_us;
	    s = qperiod_next(p, s)) {
		out->start[n] = s;
		out->complete[n++] = s >= from_us && qperiod_next(p, s) <= end;
	}
	return true;
}

void
milestones_counts_finish(struct milestones_counts *c)
{
	free(c->start);
	free(c->complete);
	free(c->active);
	free(c->people);
	free(c->events);
	memset(c, 0, sizeof(*c));
}

long
milestones_period_of(const struct milestones_counts *c, int64_t start)
{
	size_t lo = 0, hi = c->n_periods;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->start[mid] == start) {
			return (long)mid;
		}
		if (c->start[mid] < start) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -1;
}

/* For each name id of ix, its index among names, or -1. */
static long *
name_map(const struct qindex *ix, const char *const *names, size_t n_names)
{
	size_t n = qindex_name_count(ix);
	long *map = malloc((n + 1) * sizeof(*map));

	for (size_t id = 0; map != NULL && id < n; id++) {
		map[id] = -1;
		for (size_t i = 0; i < n_names; i++) {
			if (strcmp(qindex_name_text(ix, (uint16_t)id), names[i]) == 0) {
				map[id] = (long)i;
			}
		}
	}
	return map;
}

/* What one scan counts: into its own counts (the second half's are
 * added to the first's). */
struct tally {
	const long *map;
	const struct milestones_counts *layout;
	long *active, *people, *events;
	size_t *seen;		/* the last person counted in each cell, from 1 */
};

static bool
count_people(void *ctx, struct qindex_scan *scan)
{
	struct tally *t = ctx;
	size_t np = t->layout->n_periods, person = 0;
	const int64_t *start = t->layout->start;
	const struct qindex_event *ev;
	size_t n;

	while (qindex_scan_next(scan, &ev, &n)) {
		size_t at = 0, counted = SIZE_MAX;
		person++;
		for (size_t i = 0; i < n; i++) {
			/* Events come in time order: the period only moves on,
			 * and the person is active in it once. */
			while (at + 1 < np && qindex_event_ts(&ev[i]) >= start[at + 1]) {
				at++;
			}
			if (counted != at) {
				counted = at;
				t->active[at]++;
			}
			long k = t->map[qindex_event_name(&ev[i])];
			if (k < 0) {
				continue;
			}
			size_t cell = (size_t)k * np + at;
			t->events[cell]++;
			if (t->seen[cell] != person) {
				t->seen[cell] = person;
				t->people[cell]++;
			}
		}
	}
	return true;
}

bool
qmilestones_run(const struct qindex *ix, const char *const *names,
    int64_t from_us, int64_t to_us, struct milestones_counts *out)
{
	size_t np = out->n_periods, cells = out->n_names * np;
	long *map = name_map(ix, names, out->n_names);
	/* The second half's counts and both halves' marks in one block. */
	long *counts = calloc(np + 2 * cells + 1, sizeof(*counts));
	size_t *seen = calloc(2 * cells + 1, sizeof(*seen));
	struct tally one = { map, out, out->active, out->people, out->events,
		seen };
	struct tally two = { map, out, counts, counts + np, counts + np + cells,
		seen + cells };
	bool ok = map != NULL && counts != NULL && seen != NULL, halves = false;

	ok = ok && qindex_scan_people(ix, from_us, to_us, count_people,
	    (void *const[2]){ &one, &two }, &halves);
	for (size_t i = 0; ok && halves && i < np; i++) {
		out->active[i] += two.active[i];
	}
	for (size_t i = 0; ok && halves && i < cells; i++) {
		out->people[i] += two.people[i];
		out->events[i] += two.events[i];
	}
	free(seen);
	free(counts);
	free(map);
	return ok;
}

void
milestones_target_window(enum qperiod p, int64_t to_us, int64_t now_us,
    int64_t *start, int64_t *end)
{
	*end = qperiod_start(p, to_us < now_us ? to_us : now_us);
	*start = p == QPERIOD_MONTH ?
	    timeutil_month_start_us(timeutil_month_index(*end) - 1) :
	    *end - (qperiod_next(p, *end) - *end);
}

bool
milestones_target_from_counts(const struct milestones_counts *c,
    enum qperiod c_kind, enum qperiod p, struct milestones_target *out)
{
	long at = c_kind == p ? milestones_period_of(c, out->start) : -1;

	if (at < 0 || !c->complete[at] || qperiod_next(p, out->start) !=
	    out->end) {
		return false;
	}
	out->active = c->active[at];
	for (size_t k = 0; k < c->n_names; k++) {
		out->people[k] = c->people[k * c->n_periods + (size_t)at];
	}
	return true;
}

/* What one scan of a target window counts (the second half's are added
 * to the first's). */
struct target_tally {
	const long *map;
	size_t n_names;
	long active;
	long *people;
	bool *did;
};

static bool
count_target(void *ctx, struct qindex_scan *scan)
{
	struct target_tally *t = ctx;
	const struct qindex_event *ev;
	size_t n;

	while (qindex_scan_next(scan, &ev, &n)) {
		t->active++;
		memset(t->did, 0, t->n_names * sizeof(*t->did));
		for (size_t i = 0; i < n; i++) {
			long k = t->map[qindex_event_name(&ev[i])];
			if (k >= 0 && !t->did[k]) {
				t->did[k] = true;
				t->people[k]++;
			}
		}
	}
	return true;
}

bool
qmilestones_target(const struct qindex *ix, const char *const *names,
    size_t n_names, struct milestones_target *out)
{
	long *map = name_map(ix, names, n_names);
	long *people = calloc(n_names + 1, sizeof(*people));
	bool *did = calloc(2 * n_names + 1, sizeof(*did));
	struct target_tally one = { map, n_names, 0, out->people, did };
	struct target_tally two = { map, n_names, 0, people, did + n_names };
	bool ok = map != NULL && people != NULL && did != NULL, halves = false;

	ok = ok && qindex_scan_people(ix, out->start, out->end, count_target,
	    (void *const[2]){ &one, &two }, &halves);
	out->active = one.active + (halves ? two.active : 0);
	for (size_t k = 0; ok && halves && k < n_names; k++) {
		out->people[k] += people[k];
	}
	free(did);
	free(people);
	free(map);
	return ok;
}
