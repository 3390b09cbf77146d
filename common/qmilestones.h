/* qmilestones.h - people and events per period for planned events, over
 * the query index: what server/api_milestones.c's statements count (the
 * reference; docs/api.md defines it), in the form both engines fill.
 *
 * Periods are UTC days, ISO weeks (from Monday) and months, as
 * PostgreSQL's date_trunc cuts them. No I/O. */
#ifndef MILEPOST_COMMON_QMILESTONES_H
#define MILEPOST_COMMON_QMILESTONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qindex.h"

enum qperiod { QPERIOD_HOUR, QPERIOD_DAY, QPERIOD_WEEK, QPERIOD_MONTH };

/* The period date_trunc names ("hour", "day", "week", "month"); false if
 * none. */
bool qperiod_parse(const char *name, enum qperiod *out);

/* The start of the period holding us, and of the one after start. */
int64_t qperiod_start(enum qperiod p, int64_t us);
int64_t qperiod_next(enum qperiod p, int64_t start);

/* The periods that meet [from, to) and, per name and period, the people
 * and events; people with any event per period when asked for. */
struct milestones_counts {
	size_t n_periods, n_names;
	int64_t *start;		/* each period's start (microseconds) */
	bool *complete;		/* whole in the range and over at now */
	long *active;		/* people with any event */
	long *people, *events;	/* [name * n_periods + period] */
};

/* Room for n_periods periods (starts and flags the caller's to set) and
 * n_names names, counts zeroed; false when out of memory. */
bool milestones_counts_alloc(struct milestones_counts *out, size_t n_periods,
    size_t n_names);
/* Lays out out for the periods of [from_us, to_us) at now_us (zeroed
 * counts); false when out of memory. The SQL path fills it too. */
bool milestones_counts_init(struct milestones_counts *out, enum qperiod p,
    size_t n_names, int64_t from_us, int64_t to_us, int64_t now_us);
void milestones_counts_finish(struct milestones_counts *c);
/* The period index of start, or -1. */
long milestones_period_of(const struct milestones_counts *c, int64_t start);

/* Counts names over ix into out (laid out by milestones_counts_init). */
bool qmilestones_run(const struct qindex *ix, const char *const *names,
    int64_t from_us, int64_t to_us, struct milestones_counts *out);

/* A target period's last complete one before min(to, now), [start, end):
 * the people with any event in it and those with each name. */
struct milestones_target {
	int64_t start, end;
	long active;
	long *people;		/* per name, owned */
};

/* The window of the last complete period p before min(to_us, now_us). */
void milestones_target_window(enum qperiod p, int64_t to_us, int64_t now_us,
    int64_t *start, int64_t *end);

/* Fills out (start, end set) from c when its window is one of c's
 * complete periods and c counts periods of kind p (c_kind): the same
 * people, without a second pass. False when it is not. */
bool milestones_target_from_counts(const struct milestones_counts *c,
    enum qperiod c_kind, enum qperiod p, struct milestones_target *out);

/* Counts the window of out (start, end set) over ix. */
bool qmilestones_target(const struct qindex *ix, const char *const *names,
    size_t n_names, struct milestones_target *out);

#endif
