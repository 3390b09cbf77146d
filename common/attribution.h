/* attribution.h - how much of each conversion each touchpoint earns: the
 * rule-based models (first, last, last non-direct, linear, time decay,
 * position based) and a data-driven one (a first-order Markov chain over
 * the touch paths, crediting each value by its removal effect).
 *
 * Pure computation. The caller reads the conversions with their touches
 * and the paths of the people who did not convert, names the values of
 * the dimension by index, and renders the answer. docs/api.md
 * ("GET /api/v1/attribution") defines every model. */
#ifndef MILEPOST_COMMON_ATTRIBUTION_H
#define MILEPOST_COMMON_ATTRIBUTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum attr_model {
	ATTR_FIRST_TOUCH,
	ATTR_LAST_TOUCH,
	ATTR_LAST_NON_DIRECT,
	ATTR_LINEAR,
	ATTR_TIME_DECAY,
	ATTR_POSITION_BASED,
	ATTR_DATA_DRIVEN,
	ATTR_MODEL_COUNT
};

/* "first_touch", ...; the index of a name, or -1. */
const char *attr_model_name(enum attr_model m);
int attr_model_from_name(const char *name, size_t len);

/* One touchpoint (a visit) of a conversion. */
struct attr_touch {
	int64_t ts_us;		/* when the visit started */
	uint32_t value;		/* the dimension's value, by index */
	uint16_t channel;	/* the visit's channel, for paths */
	bool direct;		/* a Direct visit (last_non_direct skips it) */
};

struct attr_params {
	int64_t half_life_us;	/* time_decay: > 0 */
	/* position_based with three touches or more: the first and the last
	 * touch's shares (the middle ones split the rest); with two, the
	 * two share in proportion to these. Each in (0, 1), sum <= 1. */
	double position_first, position_last;
};

/* Marks the ends of a path in attr_add_transitions. */
#define ATTR_START UINT32_MAX	/* before the first touch */
#define ATTR_LOST (UINT32_MAX - 1)	/* after the last, no conversion */

struct attribution;

/* n_values: how many values the touches name (0 .. n_values - 1);
 * none_value: the value a conversion without any touch is credited to
 * (its own index, e.g. "(direct)"). NULL when out of memory. */
struct attribution *attr_new(uint32_t n_values, uint32_t none_value);
void attr_free(struct attribution *a);	/* NULL is fine */

/* One conversion at ts_us worth revenue, with its n touches in time
 * order (copied). False when out of memory or a value is out of range. */
bool attr_add_conversion(struct attribution *a, int64_t ts_us,
    double revenue, const struct attr_touch *touches, size_t n);

/* count transitions from -> to made by people who did not convert, for
 * the data-driven model: from a value or ATTR_START, to a value or
 * ATTR_LOST. False when a value is out of range or out of memory. */
bool attr_add_transitions(struct attribution *a, uint32_t from, uint32_t to,
    double count);

/* Works out the models in mask (bit 1 << model). False when out of
 * memory. */
bool attr_compute(struct attribution *a, const struct attr_params *p,
    unsigned mask);

/* After attr_compute: the conversions and revenue credited to a value by
 * a model. Each computed model's credits sum to the conversions and to
 * the revenue added. */
double attr_credit(const struct attribution *a, enum attr_model m,
    uint32_t value, double *revenue);
/* The data-driven model's removal effect of a value: the share of
 * conversions lost when the value is taken out of the chain (0 .. 1). */
double attr_removal_effect(const struct attribution *a, uint32_t value);

struct attr_facts {
	size_t conversions;
	double revenue;
	double touches_mean, touches_median;	/* touches per conversion */
	/* From the first touch to the conversion, over conversions with a
	 * touch; NaN when there is none. */
	double seconds_mean, seconds_median;
};
void attr_facts(const struct attribution *a, struct attr_facts *out);

/* A path of channels and the conversions that followed it. */
struct attr_path {
	const struct attr_touch *touches;	/* owned by a */
	size_t n;				/* 0: no touch */
	size_t conversions;
};

/* The most frequent channel paths (most conversions first, then by the
 * channels' order), at most max of them into out; how many. Valid until
 * a is freed. False from *ok when out of memory. */
size_t attr_top_paths(const struct attribution *a, struct attr_path *out,
    size_t max, bool *ok);

#endif
