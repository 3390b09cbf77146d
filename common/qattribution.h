/* qattribution.h - what attribution reads, from either engine: the
 * conversions, the visits of the people who converted, and for the
 * data-driven model the transitions between the visits of those who did
 * not. server/api_attribution.c fills it from PostgreSQL (the reference)
 * or has qattr_gather fill it from the query index, then shares the
 * credit out (common/attribution.h). No I/O. */
#ifndef MILEPOST_COMMON_QATTRIBUTION_H
#define MILEPOST_COMMON_QATTRIBUTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qindex.h"

#define QATTR_CURRENCIES_MAX 8
#define QATTR_NO_TOUCH "(direct)"
#define QATTR_EVENT_ID_LEN 37

/* What a visit is credited as. */
enum qattr_dim {
	QATTR_DIM_CHANNEL,
	QATTR_DIM_UTM_SOURCE,
	QATTR_DIM_UTM_MEDIUM,
	QATTR_DIM_UTM_CAMPAIGN,
	QATTR_DIM_SOURCE_MEDIUM,
	QATTR_DIM_LANDING_PATH,
	QATTR_DIM_COUNT
};

/* person, first in both rows: who converted or visited, as resolved
 * through merges; their id from PostgreSQL, their root's slot from the
 * index. Either groups a person's rows, which is all attribution needs. */
struct attr_conv {
	int64_t person, ts_us;
	char event_id[QATTR_EVENT_ID_LEN];
	double revenue;
};

struct attr_visit {
	int64_t person, ts_us;
	const char *session;		/* borrowed from the source */
	uint32_t value;			/* attr_data_value's index */
	int channel;			/* -1: a name channel.c does not know */
};

/* A transition of the data-driven model: from a value or ATTR_START to a
 * value, and whether nothing followed. */
struct attr_step {
	uint32_t from, to;
	bool last;
	double count;
};

struct attr_data {
	struct attr_conv *convs;
	size_t n_convs, convs_cap;
	struct attr_visit *visits;
	size_t n_visits, visits_cap;
	struct attr_step *steps;
	size_t n_steps, steps_cap;
	json_t *values;			/* value -> its index */
	const char **names;		/* [index] -> value (keys of values) */
	uint32_t n_values, names_cap;
	json_t *currencies;		/* the set seen */
};

void attr_data_init(struct attr_data *d);
void attr_data_finish(struct attr_data *d);
/* The index of value, given on first sight; false when out of memory. */
bool attr_data_value(struct attr_data *d, const char *value, uint32_t *out);
bool attr_data_currency(struct attr_data *d, const char *currency);
bool attr_data_add_conv(struct attr_data *d, const struct attr_conv *c);
bool attr_data_add_visit(struct attr_data *d, const struct attr_visit *v);
bool attr_data_add_step(struct attr_data *d, const struct attr_step *s);
/* Sorts the conversions and the visits by person and time (then event
 * id, session), as the credit is shared out. qattr_gather's come in that
 * order. */
void attr_data_sort(struct attr_data *d);
/* The currencies in byte order, at most QATTR_CURRENCIES_MAX of them
 * into out; whether there were more. */
size_t attr_data_currencies(const struct attr_data *d,
    const char *out[QATTR_CURRENCIES_MAX], bool *more);

struct qattr_spec {
	const char *conversion;
	int64_t from_us, to_us;
	int64_t lookback_us;		/* the longest of every channel's */
	enum qattr_dim dim;
	bool transitions;		/* for the data-driven model */
};

/* Whether the index holds what attribution to conversion needs: the
 * properties of its events, which it keeps for macro conversions only.
 * conversions=first needs the first times ingest recorded, which it
 * does not hold. */
bool qattr_supported(const struct qindex *ix, const char *conversion,
    bool first);

/* Fills d (attr_data_init'ed) from ix, in attr_data_sort's order. */
bool qattr_gather(const struct qindex *ix, const struct qattr_spec *spec,
    struct attr_data *d);

#endif
