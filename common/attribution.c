/* attribution.c - the attribution models over conversions and their
 * touches; see attribution.h and docs/api.md.
 *
 * The data-driven model is a first-order Markov chain whose states are
 * the dimension's values plus start, conversion and lost. Each value's
 * removal effect is the share of the chain's conversion probability that
 * goes when the value's state leads nowhere (to lost); the conversions
 * are shared out in proportion to the removal effects. Revenue is shared
 * the same way over a chain whose conversion transitions carry, from each
 * state, the mean revenue of the conversions that followed it: with one
 * touch per path both give exactly what the single-touch models give. */
#include "common/attribution.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/channel.h"
#include "common/counttab.h"
#include "common/stats.h"

static const char *const model_names[ATTR_MODEL_COUNT] = {
	[ATTR_FIRST_TOUCH] = "first_touch",
	[ATTR_LAST_TOUCH] = "last_touch",
	[ATTR_LAST_NON_DIRECT] = "last_non_direct",
	[ATTR_LINEAR] = "linear",
	[ATTR_TIME_DECAY] = "time_decay",
	[ATTR_POSITION_BASED] = "position_based",
	[ATTR_DATA_DRIVEN] = "data_driven",
};

/* Gauss-Seidel stops when no state moved by more than this (relative to
 * the largest reward), or after SOLVE_ROUNDS_MAX rounds: every state of
 * the chain reaches an absorbing one, so it converges geometrically. */
#define SOLVE_EPSILON 1e-14
#define SOLVE_ROUNDS_MAX 100000

struct conversion {
	int64_t ts_us;
	double revenue;
	size_t first, n;	/* its touches in a->touches */
};

/* A transition of the chain; merged and sorted by from before solving. */
struct edge {
	uint32_t from, to;	/* a value, ATTR_START or ATTR_LOST */
	double count;
};

struct attribution {
	uint32_t n_values, none_value;
	struct conversion *convs;
	size_t n_convs, cap_convs;
	struct attr_touch *touches;
	size_t n_touches, cap_touches;
	struct edge *edges;		/* of the people who did not convert */
	size_t n_edges, cap_edges;
	double revenue;
	/* [model][value]: conversions and revenue credited. */
	double *credit, *credit_revenue;
	double *removal;		/* [value] */
};

const char *
attr_model_name(enum attr_model m)
{
	return (unsigned)m < ATTR_MODEL_COUNT ? model_names[m] : NULL;
}

int
attr_model_from_name(const char *name, size_t len)
{
	for (int m = 0; m < ATTR_MODEL_COUNT; m++) {
		if (strlen(model_names[m]) == len &&
		    memcmp(model_names[m], name, len) == 0) {
			return m;
		}
	}
	return -1;
}

/* Makes room for one more of size bytes in *items (count n, capacity
 * *cap). */
static bool
grow(void *items, size_t n, size_t *cap, size_t size)
{
	void **p = items;
	size_t want;
	void *bigger;

	if (n < *cap) {
		return true;
	}
	want = *cap > 0 ? *cap * 2 : 64;
	bigger = realloc(*p, want * size);
	if (bigger == NULL) {
		return false;
	}
	*p = bigger;
	*cap = want;
	return true;
}

struct attribution *
attr_new(uint32_t n_values, uint32_t none_value)
{
	struct attribution *a;

	if (none_value >= n_values || n_values >= ATTR_LOST) {
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return NULL;
	}
	a->n_values = n_values;
	a->none_value = none_value;
	a->credit = calloc((size_t)ATTR_MODEL_COUNT * n_values,
	    sizeof(*a->credit));
	a->credit_revenue = calloc((size_t)ATTR_MODEL_COUNT * n_values,
	    sizeof(*a->credit_revenue));
	a->removal = calloc(n_values, sizeof(*a->removal));
	if (a->credit == NULL || a->credit_revenue == NULL ||
	    a->removal == NULL) {
		attr_free(a);
		return NULL;
	}
	return a;
}

void
attr_free(struct attribution *a)
{
	if (a == NULL) {
		return;
	}
	free(a->convs);
	free(a->touches);
	free(a->edges);
	free(a->credit);
	free(a->credit_revenue);
	free(a->removal);
	free(a);
}

bool
attr_add_conversion(struct attribution *a, int64_t ts_us, double revenue,
    const struct attr_touch *touches, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (touches[i].value >= a->n_values) {
			return false;
		}
		if (!grow(&a->touches, a->n_touches + i, &a->cap_touches,
		    sizeof(*a->touches))) {
			return false;
		}
	}
	if (!grow(&a->convs, a->n_convs, &a->cap_convs, sizeof(*a->convs))) {
		return false;
	}
	if (n > 0) {
		memcpy(a->touches + a->n_touches, touches, n * sizeof(*touches));
	}
	a->convs[a->n_convs++] = (struct conversion){ ts_us, revenue,
		a->n_touches, n };
	a->n_touches += n;
	a->revenue += revenue;
	return true;
}

static bool
valid_state(const struct attribution *a, uint32_t s, uint32_t end)
{
	return s < a->n_values || s == end;
}

bool
attr_add_transitions(struct attribution *a, uint32_t from, uint32_t to,
    double count)
{
	if (!valid_state(a, from, ATTR_START) || !valid_state(a, to, ATTR_LOST) ||
	    !(count >= 0) ||
	    !grow(&a->edges, a->n_edges, &a->cap_edges, sizeof(*a->edges))) {
		return false;
	}
	a->edges[a->n_edges++] = (struct edge){ from, to, count };
	return true;
}

/* ------------------------------------------------------ rule-based */

static void
credit_touch(struct attribution *a, enum attr_model m, uint32_t value,
    double share, const struct conversion *c)
{
	size_t at = (size_t)m * a->n_values + value;

	a->credit[at] += share;
	a->credit_revenue[at] += share * c->revenue;
}

/* One conversion's shares under model m: touch i gets weight[i] over the
 * sum of weights. */
static void
credit_weights(struct attribution *a, enum attr_model m,
    const struct conversion *c, const double *weight)
{
	const struct attr_touch *t = a->touches + c->first;
	double sum = 0;

	for (size_t i = 0; i < c->n; i++) {
		sum += weight[i];
	}
	for (size_t i = 0; i < c->n; i++) {
		credit_touch(a, m, t[i].value, weight[i] / sum, c);
	}
}

static void
credit_rules(struct attribution *a, const struct attr_params *p,
    unsigned mask, const struct conversion *c, double *weight)
{
	const struct attr_touch *t = a->touches + c->first;
	size_t n = c->n, last_nd = n - 1;

	if (n == 0) {
		for (int m = 0; m < ATTR_DATA_DRIVEN; m++) {
			if (mask & (1u << m)) {
				credit_touch(a, m, a->none_value, 1, c);
			}
		}
		return;
	}
	if (mask & (1u << ATTR_FIRST_TOUCH)) {
		credit_touch(a, ATTR_FIRST_TOUCH, t[0].value, 1, c);
	}
	if (mask & (1u << ATTR_LAST_TOUCH)) {
		credit_touch(a, ATTR_LAST_TOUCH, t[n - 1].value, 1, c);
	}
	if (mask & (1u << ATTR_LAST_NON_DIRECT)) {
		/* Direct earns only when there is nothing else. */
		for (size_t i = n; i-- > 0;) {
			if (!t[i].direct) {
				last_nd = i;
				break;
			}
		}
		credit_touch(a, ATTR_LAST_NON_DIRECT, t[last_nd].value, 1, c);
	}
	if (mask & (1u << ATTR_LINEAR)) {
		for (size_t i = 0; i < n; i++) {
			weight[i] = 1;
		}
		credit_weights(a, ATTR_LINEAR, c, weight);
	}
	if (mask & (1u << ATTR_TIME_DECAY)) {
		/* Halved every half-life before the conversion. Measured
		 * from the last touch, which changes no share, so that long
		 * lookbacks over short half-lives do not underflow. */
		for (size_t i = 0; i < n; i++) {
			weight[i] = exp2(-(double)(t[n - 1].ts_us - t[i].ts_us) /
			    (double)p->half_life_us);
		}
		credit_weights(a, ATTR_TIME_DECAY, c, weight);
	}
	if (mask & (1u << ATTR_POSITION_BASED)) {
		for (size_t i = 0; i < n; i++) {
			weight[i] = n > 2 ? (1 - p->position_first -
			    p->position_last) / (double)(n - 2) : 0;
		}
		weight[0] = n > 1 ? p->position_first : 1;
		if (n > 1) {
			weight[n - 1] = p->position_last;
		}
		credit_weights(a, ATTR_POSITION_BASED, c, weight);
	}
}

/* ------------------------------------------------------ data-driven */

/* The chain in compressed rows: the transitions out of state s (a value,
 * or n_values for start) are row[s] .. row[s + 1] of to/prob; conv[s] is
 * the probability of converting next and reward[s] what a conversion
 * from s is worth. */
struct chain {
	uint32_t n;		/* values; state n is start */
	size_t *row;
	uint32_t *to;
	double *prob;
	double *conv, *reward;
	double *x;		/* what each state is worth, being solved */
};

static void
chain_free(struct chain *ch)
{
	free(ch->row);
	free(ch->to);
	free(ch->prob);
	free(ch->conv);
	free(ch->reward);
	free(ch->x);
}

static int
compare_edges(const void *pa, const void *pb)
{
	const struct edge *a = pa, *b = pb;
	/* Start sorts after the values (it is state n). */
	uint64_t fa = a->from, fb = b->from;

	if (fa != fb) {
		return fa < fb ? -1 : 1;
	}
	return a->to < b->to ? -1 : a->to > b->to;
}

static uint32_t
state_of(const struct attribution *a, uint32_t s)
{
	return s == ATTR_START ? a->n_values : s;
}

/* Adds x to its transition among e[0..*n), or as the next; false when
 * out of memory. Equal transitions meet in a table: sorting one edge per
 * touch to merge them was an eighth of attribution's time at 21.6 M
 * events. */
static bool
merge_edge(struct counttab *seen, struct edge *e, size_t *n,
    const struct edge *x)
{
	struct counttab_entry *at = counttab_add(seen,
	    (int64_t)((uint64_t)x->from << 32 | x->to), 1);

	if (at == NULL) {
		return false;
	}
	if (at->count == 1) {
		at->tag = (*n)++;
		e[at->tag] = (struct edge){ x->from, x->to, 0 };
	}
	e[at->tag].count += x->count;
	return true;
}

/* Adds the transitions of the converting paths to the others', then
 * builds the chain. Conversion transitions are kept apart (to is the
 * conversion itself, a state of no row). */
static bool
chain_build(struct attribution *a, struct chain *ch)
{
	uint32_t n = a->n_values;
	size_t n_edges = a->n_edges, k = 0;
	double *out_total = NULL, *conv_count = NULL, *conv_revenue = NULL;
	struct edge *e = NULL;
	struct counttab seen = { 0 };
	bool ok = false;

	memset(ch, 0, sizeof(*ch));
	ch->n = n;
	for (size_t i = 0; i < a->n_convs; i++) {
		n_edges += a->convs[i].n > 0 ? a->convs[i].n : 1;
	}
	e = malloc((n_edges > 0 ? n_edges : 1) * sizeof(*e));
	out_total = calloc((size_t)n + 1, sizeof(*out_total));
	conv_count = calloc((size_t)n + 1, sizeof(*conv_count));
	conv_revenue = calloc((size_t)n + 1, sizeof(*conv_revenue));
	ch->row = calloc((size_t)n + 2, sizeof(*ch->row));
	ch->conv = calloc((size_t)n + 1, sizeof(*ch->conv));
	ch->reward = calloc((size_t)n + 1, sizeof(*ch->reward));
	ch->x = calloc((size_t)n + 1, sizeof(*ch->x));
	if (e == NULL || out_total == NULL || conv_count == NULL ||
	    conv_revenue == NULL || ch->row == NULL || ch->conv == NULL ||
	    ch->reward == NULL || ch->x == NULL) {
		goto done;
	}
	for (size_t i = 0; i < a->n_edges; i++) {
		if (!merge_edge(&seen, e, &k, &a->edges[i])) {
			goto done;
		}
	}
	for (size_t i = 0; i < a->n_convs; i++) {
		const struct conversion *c = &a->convs[i];
		const struct attr_touch *t = a->touches + c->first;
		uint32_t prev = ATTR_START, last = c->n > 0 ?
		    t[c->n - 1].value : a->none_value;

		for (size_t j = 0; j < c->n; j++) {
			if (!merge_edge(&seen, e, &k, &(struct edge){ prev,
			    t[j].value, 1 })) {
				goto done;
			}
			prev = t[j].value;
		}
		if (c->n == 0 && !merge_edge(&seen, e, &k, &(struct edge){
		    ATTR_START, a->none_value, 1 })) {
			goto done;
		}
		conv_count[last] += 1;
		conv_revenue[last] += c->revenue;
	}
	/* The few distinct transitions in order; count what leaves each
	 * state. */
	size_t m = k;
	qsort(e, m, sizeof(*e), compare_edges);
	for (size_t i = 0; i < m; i++) {
		out_total[state_of(a, e[i].from)] += e[i].count;
	}
	for (uint32_t s = 0; s < n; s++) {
		out_total[s] += conv_count[s];
	}
	ch->to = malloc((m > 0 ? m : 1) * sizeof(*ch->to));
	ch->prob = malloc((m > 0 ? m : 1) * sizeof(*ch->prob));
	if (ch->to == NULL || ch->prob == NULL) {
		goto done;
	}
	size_t r = 0;
	for (uint32_t s = 0; s <= n; s++) {
		ch->row[s] = r;
		for (; r < m && state_of(a, e[r].from) == s; r++) {
			/* Lost is no state: what leads there is worth 0. */
			ch->to[r] = e[r].to == ATTR_LOST ? UINT32_MAX : e[r].to;
			ch->prob[r] = e[r].count / out_total[s];
		}
		if (s < n && out_total[s] > 0) {
			ch->conv[s] = conv_count[s] / out_total[s];
			ch->reward[s] = conv_count[s] > 0 ?
			    conv_revenue[s] / conv_count[s] : 0;
		}
	}
	ch->row[n + 1] = r;
	ok = true;
done:
	counttab_finish(&seen);
	free(e);
	free(out_total);
	free(conv_count);
	free(conv_revenue);
	return ok;
}

/* What start is worth when removed (a value, or UINT32_MAX for none)
 * leads nowhere: with revenue false, the probability of converting; with
 * it, the expected revenue. */
static double
chain_solve(struct chain *ch, uint32_t removed, bool revenue)
{
	double scale = 1;

	for (uint32_t s = 0; s < ch->n; s++) {
		ch->x[s] = 0;
		if (revenue && fabs(ch->reward[s]) > scale) {
			scale = fabs(ch->reward[s]);
		}
	}
	for (int round = 0; round < SOLVE_ROUNDS_MAX; round++) {
		double moved = 0;

		for (uint32_t s = 0; s < ch->n; s++) {
			double v = 0;

			if (s == removed) {
				continue;
			}
			for (size_t r = ch->row[s]; r < ch->row[s + 1]; r++) {
				if (ch->to[r] != UINT32_MAX) {
					v += ch->prob[r] * ch->x[ch->to[r]];
				}
			}
			v += ch->conv[s] * (revenue ? ch->reward[s] : 1);
			moved = fmax(moved, fabs(v - ch->x[s]));
			ch->x[s] = v;
		}
		if (moved <= SOLVE_EPSILON * scale) {
			break;
		}
	}
	double start = 0;
	for (size_t r = ch->row[ch->n]; r < ch->row[ch->n + 1]; r++) {
		if (ch->to[r] != UINT32_MAX && ch->to[r] != removed) {
			start += ch->prob[r] * ch->x[ch->to[r]];
		}
	}
	return start;
}

/* Shares total out over the values in proportion to effect[] (the
 * conversions' shares when every effect is 0). */
static void
share_out(struct attribution *a, double *out, const double *effect,
    double total)
{
	double sum = 0;

	for (uint32_t v = 0; v < a->n_values; v++) {
		sum += effect[v];
	}
	for (uint32_t v = 0; v < a->n_values; v++) {
		out[v] = sum > 0 ? total * effect[v] / sum : 0;
	}
}

static bool
credit_data_driven(struct attribution *a)
{
	/* Zeroed: chain_free runs also when chain_build did not. */
	struct chain ch = { 0 };
	double *effect_revenue = calloc(a->n_values, sizeof(double));
	double *credit = a->credit + (size_t)ATTR_DATA_DRIVEN * a->n_values;
	double *credit_revenue = a->credit_revenue +
	    (size_t)ATTR_DATA_DRIVEN * a->n_values;
	bool ok = effect_revenue != NULL && chain_build(a, &ch);

	if (ok) {
		double base = chain_solve(&ch, UINT32_MAX, false);
		double base_revenue = chain_solve(&ch, UINT32_MAX, true);

		for (uint32_t v = 0; v < a->n_values; v++) {
			/* A value no path visits loses nothing. */
			bool visited = ch.row[v] < ch.row[v + 1] || ch.conv[v] > 0;

			a->removal[v] = visited && base > 0 ?
			    fmax(0, 1 - chain_solve(&ch, v, false) / base) : 0;
			effect_revenue[v] = visited && base_revenue != 0 ?
			    fmax(0, 1 - chain_solve(&ch, v, true) / base_revenue) : 0;
		}
		share_out(a, credit, a->removal, (double)a->n_convs);
		/* Revenue follows the revenue chain; if that says nothing
		 * (no revenue, or refunds cancelling it), the conversions'
		 * shares. */
		share_out(a, credit_revenue, effect_revenue, a->revenue);
		double check = 0;
		for (uint32_t v = 0; v < a->n_values; v++) {
			check += credit_revenue[v];
		}
		if (check == 0 && a->revenue != 0) {
			share_out(a, credit_revenue, a->removal, a->revenue);
		}
	}
	chain_free(&ch);
	free(effect_revenue);
	return ok;
}

bool
attr_compute(struct attribution *a, const struct attr_params *p,
    unsigned mask)
{
	size_t most = 1;
	double *weight;

	memset(a->credit, 0, (size_t)ATTR_MODEL_COUNT * a->n_values *
	    sizeof(*a->credit));
	memset(a->credit_revenue, 0, (size_t)ATTR_MODEL_COUNT * a->n_values *
	    sizeof(*a->credit_revenue));
	memset(a->removal, 0, a->n_values * sizeof(*a->removal));
	for (size_t i = 0; i < a->n_convs; i++) {
		if (a->convs[i].n > most) {
			most = a->convs[i].n;
		}
	}
	weight = malloc(most * sizeof(*weight));
	if (weight == NULL) {
		return false;
	}
	for (size_t i = 0; i < a->n_convs; i++) {
		credit_rules(a, p, mask, &a->convs[i], weight);
	}
	free(weight);
	return (mask & (1u << ATTR_DATA_DRIVEN)) == 0 || credit_data_driven(a);
}

double
attr_credit(const struct attribution *a, enum attr_model m, uint32_t value,
    double *revenue)
{
	size_t at = (size_t)m * a->n_values + value;

	*revenue = a->credit_revenue[at];
	return a->credit[at];
}

double
attr_removal_effect(const struct attribution *a, uint32_t value)
{
	return a->removal[value];
}

/* ------------------------------------------------------ paths */

void
attr_facts(const struct attribution *a, struct attr_facts *out)
{
	int64_t *v = malloc((a->n_convs > 0 ? a->n_convs : 1) * sizeof(*v));
	double sum = 0;
	size_t k = 0;

	memset(out, 0, sizeof(*out));
	out->conversions = a->n_convs;
	out->revenue = a->revenue;
	out->seconds_mean = out->seconds_median = NAN;
	out->touches_mean = out->touches_median = NAN;
	if (v == NULL || a->n_convs == 0) {
		free(v);
		return;
	}
	for (size_t i = 0; i < a->n_convs; i++) {
		v[i] = (int64_t)a->convs[i].n;
		sum += (double)v[i];
	}
	out->touches_mean = sum / (double)a->n_convs;
	out->touches_median = stats_median_scaled(v, a->n_convs, 1);
	sum = 0;
	for (size_t i = 0; i < a->n_convs; i++) {
		const struct conversion *c = &a->convs[i];
		if (c->n > 0) {
			v[k] = c->ts_us - a->touches[c->first].ts_us;
			sum += (double)v[k++] / 1e6;
		}
	}
	if (k > 0) {
		out->seconds_mean = sum / (double)k;
		out->seconds_median = stats_median_scaled(v, k, 1e6);
	}
	free(v);
}

static int
compare_path_channels(const void *pa, const void *pb)
{
	const struct attr_path *a = pa, *b = pb;

	for (size_t i = 0; i < a->n && i < b->n; i++) {
		if (a->touches[i].channel != b->touches[i].channel) {
			return a->touches[i].channel < b->touches[i].channel ?
			    -1 : 1;
		}
	}
	return a->n < b->n ? -1 : a->n > b->n;
}

/* Whether path x goes before y in the answer: more conversions, then
 * the channels' order. */
static bool
path_before(const struct attr_path *x, const struct attr_path *y)
{
	if (x->conversions != y->conversions) {
		return x->conversions > y->conversions;
	}
	return compare_path_channels(x, y) < 0;
}

/* Puts path among the best *n (at most max) of top, in order. */
static void
offer_path(struct attr_path *top, size_t *n, size_t max,
    const struct attr_path *path)
{
	size_t at = *n;

	if (max == 0 || (*n == max && !path_before(path, &top[max - 1]))) {
		return;
	}
	if (*n < max) {
		(*n)++;
	} else {
		at = max - 1;
	}
	for (; at > 0 && path_before(path, &top[at - 1]); at--) {
		top[at] = top[at - 1];
	}
	top[at] = *path;
}

/* A path of at most PATH_PACKED touches as one number in the channels'
 * order (compare_path_channels): each channel plus one in 4 bits, the
 * first touch highest, 0 past the last (so a prefix comes first). */
#define PATH_PACKED 15
_Static_assert(CHANNEL_COUNT_ < 15, "a channel in 4 bits");

static bool
path_packed(const struct attr_path *p, int64_t *key)
{
	uint64_t k = 0;

	if (p->n > PATH_PACKED) {
		return false;
	}
	for (size_t i = 0; i < p->n; i++) {
		if (p->touches[i].channel >= 15) {
			return false;
		}
		k |= (uint64_t)(p->touches[i].channel + 1u) << (60 - 4 * i);
	}
	*key = (int64_t)(k >> 1);	/* in int64_t's range, order kept */
	return true;
}

/* Equal paths are counted in a hash table by their packed form (a sort
 * of every conversion's path was a fifth of attribution's time at 21.6 M
 * events); the rare longer ones are sorted. The best max are kept as the
 * counts come. */
size_t
attr_top_paths(const struct attribution *a, struct attr_path *out,
    size_t max, bool *ok)
{
	struct attr_path *longer = malloc((a->n_convs > 0 ? a->n_convs : 1) *
	    sizeof(*longer));
	struct counttab same = { 0 };
	size_t n_longer = 0, n_out = 0;

	*ok = longer != NULL;
	for (size_t i = 0; *ok && i < a->n_convs; i++) {
		struct attr_path path = { a->touches + a->convs[i].first,
			a->convs[i].n, 1 };
		struct counttab_entry *e;
		int64_t key;
		if (!path_packed(&path, &key)) {
			longer[n_longer++] = path;
		} else if ((*ok = (e = counttab_add(&same, key, 1)) != NULL) &&
		    e->count == 1) {
			e->tag = i;
		}
	}
	for (size_t i = 0; *ok && i < same.cap; i++) {
		const struct counttab_entry *e = &same.slot[i];
		if (e->used) {
			const struct conversion *c = &a->convs[e->tag];
			offer_path(out, &n_out, max, &(struct attr_path){
			    a->touches + c->first, c->n, (size_t)e->count });
		}
	}
	if (*ok && n_longer > 1) {
		qsort(longer, n_longer, sizeof(*longer), compare_path_channels);
	}
	for (size_t i = 0; *ok && i < n_longer; i++) {
		struct attr_path run = longer[i];
		for (; i + 1 < n_longer &&
		    compare_path_channels(&run, &longer[i + 1]) == 0; i++) {
			run.conversions++;
		}
		offer_path(out, &n_out, max, &run);
	}
	free(longer);
	counttab_finish(&same);
	return *ok ? n_out : 0;
}
