/* qfunnel.h - a funnel counted over the query index (common/qindex.h):
 * the same counts and times as server/api_funnel.c's statement, which
 * docs/api.md defines and which stays the reference (the differential
 * test holds the two together).
 *
 * The index holds no properties, so a step with a property filter, or a
 * prop:KEY breakdown or filter, is not for it: qfunnel_supported says so
 * and the caller asks PostgreSQL. No I/O. */
#ifndef MILEPOST_COMMON_QFUNNEL_H
#define MILEPOST_COMMON_QFUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/funnel.h"
#include "common/qindex.h"

enum qfunnel_order { QFUNNEL_ORDERED, QFUNNEL_STRICT, QFUNNEL_ANY };
enum qfunnel_cohort { QFUNNEL_NO_COHORT, QFUNNEL_WEEK, QFUNNEL_MONTH };

struct qfunnel_spec {
	const struct funnel_step *steps;
	size_t n_steps;
	const struct funnel_step *exclude;	/* their names only */
	size_t n_exclude;
	enum qfunnel_order order;
	bool sessions;				/* unit=sessions */
	int64_t from_us, to_us, window_us;
	struct funnel_dim_ref breakdown;	/* FUNNEL_DIM_NONE: none */
	enum qfunnel_cohort cohort;
	long top;
	const struct funnel_dim_ref *filters;
	size_t n_filters;
};

/* Seconds columns of a step (NAN: NULL, as for the first step). */
enum { QFUNNEL_MEDIAN_PREV, QFUNNEL_P90_PREV, QFUNNEL_MEDIAN_FIRST,
	QFUNNEL_P90_FIRST, QFUNNEL_SECONDS };

/* One group's steps. Both engines fill it; the answer is built from it. */
struct funnel_group {
	char *value;		/* owned; NULL for the overall group */
	long entered[FUNNEL_STEPS_MAX];
	double seconds[FUNNEL_STEPS_MAX][QFUNNEL_SECONDS];
};

/* The overall group, then the groups (breakdown values, "(other)",
 * "(none)", or cohorts) in the order of their values' bytes. */
struct funnel_counts {
	struct funnel_group overall;
	struct funnel_group *groups;
	size_t n_groups;
};

/* Whether the index can answer spec. */
bool qfunnel_supported(const struct qfunnel_spec *spec);

/* Counts spec over ix into out (funnel_counts_finish frees it). False
 * only when out of memory. */
bool qfunnel_run(const struct qindex *ix, const struct qfunnel_spec *spec,
    struct funnel_counts *out);

void funnel_counts_finish(struct funnel_counts *c);

#endif
