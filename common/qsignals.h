/* qsignals.h - which actions go with the conversion, over the query
 * index: what server/api_signals.c's statement counts (the reference;
 * docs/api.md defines it), in the form both engines fill. No I/O. */
#ifndef MILEPOST_COMMON_QSIGNALS_H
#define MILEPOST_COMMON_QSIGNALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qindex.h"

struct signal_count {
	long people;		/* did the action in [from, to) */
	long converted;		/* converted within window of their first */
	long converted_first;	/* of them, converted from their first event */
	double median_seconds;	/* action to conversion; NAN: none */
};

struct signals_counts {
	long people, converted;		/* everyone active in [from, to) */
	struct signal_count *actions;	/* owned, one per action asked */
	size_t n_actions;
};

/* Counts over ix: the population active in [from_us, to_us), converted
 * when conversion follows their first event within window_us; per action,
 * those who did it, from their first time doing it. */
bool qsignals_run(const struct qindex *ix, const char *const *actions,
    size_t n_actions, const char *conversion, int64_t from_us, int64_t to_us,
    int64_t window_us, struct signals_counts *out);

void signals_counts_finish(struct signals_counts *c);

#endif
