/* qfunnel.c - funnels over the query index (qfunnel.h).
 *
 * One pass over the units (people or visits) finds each one's entry and
 * the time it reached each step, as the statement does (docs/api.md):
 *   - the entry is the unit's first event of step 1 (order any: of any
 *     step) in [from, to); filters and the breakdown read it and its
 *     visit, and a unit whose entry fails a filter is out;
 *   - ordered: step k is reached at the first event of step k at or after
 *     step k-1's time and at most window after the entry; strict: and
 *     with no planned event (milestone, macro, secondary) strictly
 *     between step k-1's time and it; any: the k-th earliest of the
 *     steps' first times in [entry, entry + window], ties by step;
 *   - a unit with an excluded event strictly between its entry and the
 *     last step it reached is out.
 * A second pass over what the first kept groups it: the top breakdown
 * values by entrants keep their name, the rest is "(other)", no value
 * "(none)". Over people, the first pass runs in two threads when there
 * are many (qindex_scan_people): the order of the units kept changes
 * nothing that follows (counts, selections, ranks by count and text). */
#include "common/qfunnel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/bigmem.h"
#include "common/counttab.h"
#include "common/qmilestones.h"
#include "common/stats.h"
#include "common/timeutil.h"

#define DAY_US (86400 * TIMEUTIL_US_PER_SEC)

static const enum qindex_dim dim_of[FUNNEL_DIM_COUNT] = {
	[FUNNEL_DIM_CHANNEL] = QINDEX_DIM_CHANNEL,
	[FUNNEL_DIM_UTM_SOURCE] = QINDEX_DIM_UTM_SOURCE,
	[FUNNEL_DIM_UTM_MEDIUM] = QINDEX_DIM_UTM_MEDIUM,
	[FUNNEL_DIM_UTM_CAMPAIGN] = QINDEX_DIM_UTM_CAMPAIGN,
	[FUNNEL_DIM_DEVICE] = QINDEX_DIM_DEVICE,
	[FUNNEL_DIM_BROWSER] = QINDEX_DIM_BROWSER,
	[FUNNEL_DIM_LANDING_PATH] = QINDEX_DIM_LANDING_PATH,
};

/* Group keys besides values: (other) and (none) sort after nothing in
 * particular; they are named when the groups are built. */
#define KEY_NONE INT64_MIN
#define KEY_OTHER (INT64_MIN + 1)

bool
qfunnel_supported(const struct qfunnel_spec *spec)
{
	for (size_t i = 0; i < spec->n_steps; i++) {
		if (spec->steps[i].key[0] != '\0') {
			return false;
		}
	}
	for (size_t i = 0; i < spec->n_filters; i++) {
		if (spec->filters[i].dim == FUNNEL_DIM_PROP) {
			return false;
		}
	}
	return spec->breakdown.dim != FUNNEL_DIM_PROP;
}

/* What each name id means for this funnel. */
struct prep {
	size_t n_names;
	uint16_t *steps;	/* bit k: reaches step k + 1 */
	bool *excluded, *planned;
	uint32_t filter_value[FUNNEL_FILTERS_MAX];
	bool nobody;		/* a filter's value is nowhere */
};

static bool
in_step(const struct funnel_step *st, const char *name)
{
	char one[EVENT_NAME_MAX + 1];

	for (size_t k = 0; funnel_step_event(st, k, one); k++) {
		if (strcmp(one, name) == 0) {
			return true;
		}
	}
	return false;
}

static bool
prep_init(struct prep *p, const struct qindex *ix,
    const struct qfunnel_spec *spec)
{
	p->n_names = qindex_name_count(ix);
	p->steps = calloc(p->n_names + 1, sizeof(*p->steps));
	p->excluded = calloc(p->n_names + 1, sizeof(bool));
	p->planned = calloc(p->n_names + 1, sizeof(bool));
	if (p->steps == NULL || p->excluded == NULL || p->planned == NULL) {
		return false;
	}
	for (size_t id = 0; id < p->n_names; id++) {
		const char *name = qindex_name_text(ix, (uint16_t)id);
		for (size_t k = 0; k < spec->n_steps; k++) {
			if (in_step(&spec->steps[k], name)) {
				p->steps[id] |= (uint16_t)(1u << k);
			}
		}
		for (size_t k = 0; k < spec->n_exclude; k++) {
			p->excluded[id] |= strcmp(spec->exclude[k].name, name) == 0;
		}
		p->planned[id] = qindex_name_kind(ix, (uint16_t)id) ==
		    QINDEX_KIND_PLANNED;
	}
	for (size_t i = 0; i < spec->n_filters; i++) {
		p->filter_value[i] = qindex_string_find(ix,
		    spec->filters[i].value);
		p->nobody |= p->filter_value[i] == 0;
	}
	return true;
}

static void
prep_finish(struct prep *p)
{
	free(p->steps);
	free(p->excluded);
	free(p->planned);
}

/* The first index of the events at the time of ev[i] (ties come in no
 * set order: a step may be any of them). */
static size_t
tie_start(const struct qindex_event *ev, size_t i)
{
	while (i > 0 && qindex_event_ts(&ev[i - 1]) == qindex_event_ts(&ev[i])) {
		i--;
	}
	return i;
}

/* Ordered and strict: the index of the event at which step k (from 0) is
 * reached after step k - 1 was at ev[*at]'s time, into *at; false if it
 * is not. */
static bool
next_step(const struct prep *p, const struct qindex_event *ev, size_t n,
    size_t k, size_t *at, int64_t until, bool strict)
{
	int64_t prev = qindex_event_ts(&ev[*at]), block_ts = 0;
	bool blocked = false;

	for (size_t i = tie_start(ev, *at); i < n && qindex_event_ts(&ev[i]) <= until; i++) {
		if (blocked && block_ts < qindex_event_ts(&ev[i])) {
			return false;
		}
		if (p->steps[qindex_event_name(&ev[i])] & (1u << k)) {
			*at = i;
			return true;
		}
		if (strict && !blocked && p->planned[qindex_event_name(&ev[i])] &&
		    qindex_event_ts(&ev[i]) > prev) {
			blocked = true;
			block_ts = qindex_event_ts(&ev[i]);
		}
	}
	return false;
}

struct step_time {
	int64_t t;
	size_t step;
};

static int
compare_step_time(const void *pa, const void *pb)
{
	const struct step_time *a = pa, *b = pb;

	if (a->t != b->t) {
		return a->t < b->t ? -1 : 1;
	}
	return (a->step > b->step) - (a->step < b->step);
}

/* Any order: the steps' first times from the entry at ev[entry] on,
 * sorted, into t; how many steps were reached. */
static size_t
any_steps(const struct prep *p, const struct qindex_event *ev, size_t n,
    size_t entry, int64_t until, size_t n_steps, int64_t *t)
{
	struct step_time first[FUNNEL_STEPS_MAX];
	uint16_t seen = 0, all = (uint16_t)((1u << n_steps) - 1);
	size_t reached = 0;

	for (size_t i = tie_start(ev, entry); i < n && qindex_event_ts(&ev[i]) <= until &&
	    seen != all; i++) {
		uint16_t fresh = p->steps[qindex_event_name(&ev[i])] & (uint16_t)~seen;
		for (size_t k = 0; fresh != 0 && k < n_steps; k++) {
			if (fresh & (1u << k)) {
				first[reached++] = (struct step_time){ qindex_event_ts(&ev[i]), k };
			}
		}
		seen |= fresh;
	}
	qsort(first, reached, sizeof(first[0]), compare_step_time);
	for (size_t k = 0; k < reached; k++) {
		t[k] = first[k].t;
	}
	return reached;
}

/* The group key of the entry ev: a string id (KEY_NONE for no value),
 * a cohort's first day, or 0. */
static int64_t
group_key(const struct qindex *ix, const struct qfunnel_spec *spec,
    const struct qindex_event *ev)
{
	if (spec->cohort != QFUNNEL_NO_COHORT) {
		return qperiod_start(spec->cohort == QFUNNEL_WEEK ? QPERIOD_WEEK :
		    QPERIOD_MONTH, qindex_event_ts(ev)) / DAY_US;
	}
	if (spec->breakdown.dim == FUNNEL_DIM_NONE) {
		return 0;
	}
	uint32_t id = qindex_event_dim(ix, ev, dim_of[spec->breakdown.dim]);
	return id == 0 ? KEY_NONE : id;
}

/* a before b in PostgreSQL's ascending order of text (bytes: COLLATE
 * "C"), NULL last. */
static int
compare_text_nulls_last(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		return (a == NULL) - (b == NULL);
	}
	return strcmp(a, b);
}

/* Of two candidate entries at the same time, whether a comes first: the
 * statement orders them by visit, device and browser. */
static bool
entry_before(const struct qindex *ix, const struct qindex_event *a,
    const struct qindex_event *b)
{
	int c = compare_text_nulls_last(qindex_event_session(ix, a),
	    qindex_event_session(ix, b));

	for (int d = QINDEX_DIM_DEVICE; c == 0 && d <= QINDEX_DIM_BROWSER; d++) {
		c = compare_text_nulls_last(qindex_string(ix, qindex_event_dim(ix,
		    a, (enum qindex_dim)d)), qindex_string(ix, qindex_event_dim(ix,
		    b, (enum qindex_dim)d)));
	}
	return c < 0;
}

/* The units kept: how many entered per group key, and a row (group
 * key, steps reached, their times) for each that reached a second step:
 * only those have durations, and most units stop at the first. */
struct units {
	struct counttab entered;	/* group key -> units */
	int64_t *rows;			/* stride n_steps + 2 */
	size_t n, cap, stride;
};

/* Room for need rows in all. */
static bool
units_reserve(struct units *u, size_t need)
{
	size_t cap = u->cap == 0 ? 1024 : u->cap;
	int64_t *rows;

	if (need <= u->cap) {
		return true;
	}
	while (cap < need) {
		cap *= 2;
	}
	if ((rows = bigmem_realloc(u->rows, cap * u->stride *
	    sizeof(*rows))) == NULL) {
		return false;
	}
	u->rows = rows;
	u->cap = cap;
	return true;
}

static bool
units_add(struct units *u, int64_t key, size_t reached, const int64_t *t)
{
	if (!counttab_add(&u->entered, key, 1)) {
		return false;
	}
	if (reached < 2) {
		return true;
	}
	if (!units_reserve(u, u->n + 1)) {
		return false;
	}
	int64_t *row = u->rows + u->n++ * u->stride;
	row[0] = key;
	row[1] = (int64_t)reached;
	memcpy(row + 2, t, reached * sizeof(*t));
	return true;
}

/* Adds b's units to a's. */
static bool
units_merge(struct units *a, const struct units *b)
{
	for (size_t i = 0; i < b->entered.cap; i++) {
		const struct counttab_entry *e = &b->entered.slot[i];
		if (e->used && !counttab_add(&a->entered, e->key, e->count)) {
			return false;
		}
	}
	if (b->n == 0) {
		return true;
	}
	if (!units_reserve(a, a->n + b->n)) {
		return false;
	}
	memcpy(a->rows + a->n * a->stride, b->rows, b->n * b->stride *
	    sizeof(*b->rows));
	a->n += b->n;
	return true;
}

static void
units_finish(struct units *u)
{
	counttab_finish(&u->entered);
	free(u->rows);
}

/* One unit: its row in u if it entered and was not left out. */
static bool
count_unit(const struct qindex *ix, const struct qfunnel_spec *spec,
    const struct prep *p, const struct qindex_event *ev, size_t n,
    struct units *u)
{
	uint16_t entry_mask = spec->order == QFUNNEL_ANY ? 0xffff : 1;
	int64_t t[FUNNEL_STEPS_MAX], until;
	size_t entry = 0, reached;

	while (entry < n && qindex_event_ts(&ev[entry]) < spec->to_us &&
	    (p->steps[qindex_event_name(&ev[entry])] & entry_mask) == 0) {
		entry++;
	}
	if (entry == n || qindex_event_ts(&ev[entry]) >= spec->to_us) {
		return true;
	}
	for (size_t j = entry + 1; j < n && qindex_event_ts(&ev[j]) == qindex_event_ts(&ev[entry]); j++) {
		if ((p->steps[qindex_event_name(&ev[j])] & entry_mask) != 0 &&
		    entry_before(ix, &ev[j], &ev[entry])) {
			entry = j;
		}
	}
	for (size_t i = 0; i < spec->n_filters; i++) {
		if (qindex_event_dim(ix, &ev[entry],
		    dim_of[spec->filters[i].dim]) != p->filter_value[i]) {
			return true;
		}
	}
	until = qindex_event_ts(&ev[entry]) + spec->window_us;
	if (spec->order == QFUNNEL_ANY) {
		reached = any_steps(p, ev, n, entry, until, spec->n_steps, t);
	} else {
		size_t at = entry;
		t[0] = qindex_event_ts(&ev[entry]);
		for (reached = 1; reached < spec->n_steps && next_step(p, ev, n,
		    reached, &at, until, spec->order == QFUNNEL_STRICT);
		    reached++) {
			t[reached] = qindex_event_ts(&ev[at]);
		}
	}
	for (size_t i = entry + 1; i < n && qindex_event_ts(&ev[i]) < t[reached - 1]; i++) {
		if (p->excluded[qindex_event_name(&ev[i])] && qindex_event_ts(&ev[i]) > t[0]) {
			return true;
		}
	}
	return units_add(u, group_key(ix, spec, &ev[entry]), reached, t);
}

/* ---------------------------------------------------------- grouping */

/* The text of a group key. */
static char *
key_text(const struct qindex *ix, const struct qfunnel_spec *spec,
    int64_t key)
{
	char day[TIMEUTIL_RFC3339_LEN];

	if (key == KEY_NONE) {
		return strdup("(none)");
	}
	if (key == KEY_OTHER) {
		return strdup("(other)");
	}
	if (spec->cohort != QFUNNEL_NO_COHORT) {
		timeutil_format_rfc3339(key * DAY_US, day);
		day[10] = '\0';
		return strdup(day);
	}
	return strdup(qindex_string(ix, (uint32_t)key));
}

struct ranked {
	const struct counttab_entry *k;
	const char *text;
};

static int
compare_ranked(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;

	if (a->k->count != b->k->count) {
		return a->k->count > b->k->count ? -1 : 1;
	}
	return strcmp(a->text, b->text);
}

static int
compare_groups(const void *pa, const void *pb)
{
	return strcmp(((const struct funnel_group *)pa)->value,
	    ((const struct funnel_group *)pb)->value);
}

/* The groups' keys: the top values (cohorts: all) keep their own group,
 * the others share (other); the entry's tag says which. */
static bool
make_groups(const struct qindex *ix, const struct qfunnel_spec *spec,
    struct counttab *keys, struct funnel_counts *out)
{
	struct ranked *rank = calloc(keys->n + 1, sizeof(*rank));
	size_t n = 0, kept = 0;
	bool other = false, ok = false;
	int64_t *group_key = calloc(keys->n + 2, sizeof(*group_key));

	if (rank == NULL || group_key == NULL) {
		goto done;
	}
	for (size_t i = 0; i < keys->cap; i++) {
		const struct counttab_entry *k = &keys->slot[i];
		if (k->used && k->key != KEY_NONE) {
			rank[n].k = k;
			if ((rank[n].text = key_text(ix, spec, k->key)) == NULL) {
				goto done;
			}
			n++;
		}
	}
	qsort(rank, n, sizeof(*rank), compare_ranked);
	out->groups = calloc(n + 2, sizeof(*out->groups));
	if (out->groups == NULL) {
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct counttab_entry *k = counttab_find(keys, rank[i].k->key);
		if (spec->cohort != QFUNNEL_NO_COHORT || i < (size_t)spec->top) {
			k->tag = kept;
			group_key[kept++] = k->key;
		} else {
			other = true;
			k->tag = SIZE_MAX;	/* (other), numbered below */
		}
	}
	if (other) {
		group_key[kept++] = KEY_OTHER;
	}
	if (counttab_find(keys, KEY_NONE)->used) {
		counttab_find(keys, KEY_NONE)->tag = kept;
		group_key[kept++] = KEY_NONE;
	}
	for (size_t i = 0; i < keys->cap; i++) {
		if (keys->slot[i].used && keys->slot[i].tag == SIZE_MAX) {
			keys->slot[i].tag = kept - 1 - (size_t)(group_key[kept
			    - 1] == KEY_NONE);
		}
	}
	for (size_t g = 0; g < kept; g++) {
		if ((out->groups[g].value = key_text(ix, spec, group_key[g])) ==
		    NULL) {
			goto done;
		}
		out->n_groups++;
	}
	ok = true;
done:
	for (size_t i = 0; rank != NULL && i < n; i++) {
		free((char *)rank[i].text);
	}
	free(rank);
	free(group_key);
	return ok;
}

/* ----------------------------------------------------------- figures */

/* The step columns of every group (groups[0..n_groups), the entrants of
 * each key in its entry's tag, the row i in group_of[i]; NULL: none) and
 * of everyone (all): the entrants from the keys, then two passes over
 * the rows: one counts the later steps, one gathers their durations for
 * the percentiles. Slot n_groups is everyone's. */
static bool
fill_groups(const struct qfunnel_spec *spec, const struct units *u,
    const size_t *group_of, struct funnel_group *groups, size_t n_groups,
    struct funnel_group *all)
{
	static const double pct[2] = { 0.5, 0.9 };
	size_t steps = spec->n_steps, slots = (n_groups + 1) * steps, total = 0;
	/* Per slot (group, step), where its next duration from the previous
	 * step goes, and from the first. */
	size_t *at = calloc(2 * slots + 1, sizeof(*at));
	int64_t *d = NULL;
	bool ok = at != NULL;

	for (size_t g = 0; g <= n_groups; g++) {
		struct funnel_group *fg = g < n_groups ? &groups[g] : all;
		memset(fg->entered, 0, sizeof(fg->entered));
		for (size_t k = 0; k < steps; k++) {
			for (int c = 0; c < QFUNNEL_SECONDS; c++) {
				fg->seconds[k][c] = NAN;
			}
		}
	}
	for (size_t i = 0; i < u->entered.cap; i++) {
		const struct counttab_entry *e = &u->entered.slot[i];
		if (e->used) {
			all->entered[0] += e->count;
			if (group_of != NULL) {
				groups[e->tag].entered[0] += e->count;
			}
		}
	}
	for (size_t i = 0; ok && i < u->n; i++) {
		size_t reached = (size_t)u->rows[i * u->stride + 1];
		for (size_t k = 1; k < reached; k++) {
			all->entered[k]++;
			if (group_of != NULL) {
				groups[group_of[i]].entered[k]++;
			}
		}
	}
	for (size_t g = 0; ok && g <= n_groups; g++) {
		const struct funnel_group *fg = g < n_groups ? &groups[g] : all;
		for (size_t k = 1; k < steps; k++) {
			size_t slot = g * steps + k, m = (size_t)fg->entered[k];
			at[2 * slot] = total;
			at[2 * slot + 1] = total + m;
			total += 2 * m;
		}
	}
	ok = ok && (d = bigmem_realloc(NULL, (total + 1) * sizeof(*d))) != NULL;
	for (size_t i = 0; ok && i < u->n; i++) {
		const int64_t *row = u->rows + i * u->stride;
		size_t reached = (size_t)row[1];
		for (size_t k = 1; k < reached; k++) {
			size_t slot[2] = { n_groups * steps + k, group_of != NULL ?
			    group_of[i] * steps + k : SIZE_MAX };
			for (int j = 0; j < 2 && slot[j] != SIZE_MAX; j++) {
				d[at[2 * slot[j]]++] = row[2 + k] - row[2 + k - 1];
				d[at[2 * slot[j] + 1]++] = row[2 + k] - row[2];
			}
		}
	}
	for (size_t g = 0; ok && g <= n_groups; g++) {
		struct funnel_group *fg = g < n_groups ? &groups[g] : all;
		for (size_t k = 1; k < steps; k++) {
			size_t slot = g * steps + k, m = (size_t)fg->entered[k];
			/* The cursors stopped at their regions' ends. */
			int64_t *prev = d + at[2 * slot] - m;
			int64_t *first = d + at[2 * slot + 1] - m;
			if (m == 0) {
				continue;
			}
			/* Median then p90: the enum's order. */
			stats_percentiles_cont_us(prev, m, pct, 2,
			    &fg->seconds[k][QFUNNEL_MEDIAN_PREV]);
			stats_percentiles_cont_us(first, m, pct, 2,
			    &fg->seconds[k][QFUNNEL_MEDIAN_FIRST]);
		}
	}
	free(d);
	free(at);
	return ok;
}

static bool
group_units(const struct qindex *ix, const struct qfunnel_spec *spec,
    struct units *u, struct funnel_counts *out)
{
	size_t *group_of = bigmem_realloc(NULL, (u->n + 1) *
	    sizeof(*group_of));
	bool ok = group_of != NULL;

	/* The entrants per key rank the groups and tag each key's. */
	ok = ok && (u->entered.n == 0 || make_groups(ix, spec, &u->entered,
	    out));
	for (size_t i = 0; ok && i < u->n; i++) {
		group_of[i] = counttab_find(&u->entered,
		    u->rows[i * u->stride])->tag;
	}
	ok = ok && fill_groups(spec, u, group_of, out->groups, out->n_groups,
	    &out->overall);
	if (ok && out->n_groups > 1) {
		qsort(out->groups, out->n_groups, sizeof(*out->groups),
		    compare_groups);
	}
	free(group_of);
	return ok;
}

/* The first pass over a scan's units, into u. */
struct part {
	const struct qindex *ix;
	const struct qfunnel_spec *spec;
	const struct prep *p;
	struct units u;
};

static bool
run_part(void *ctx, struct qindex_scan *scan)
{
	struct part *pt = ctx;
	const struct qindex_event *ev;
	size_t n;

	/* Room for every unit at once: virtual memory (most people never
	 * reach a second step, so most of it is never touched), and at 21.6 M
	 * events doubling it copied as much as the scan read. Only a hint:
	 * refused, the rows grow as they come. */
	(void)units_reserve(&pt->u, pt->u.n + qindex_scan_units_max(scan));
	while (qindex_scan_next(scan, &ev, &n)) {
		if (!count_unit(pt->ix, pt->spec, pt->p, ev, n, &pt->u)) {
			return false;
		}
	}
	return true;
}

/* The first pass (over people, in two halves when there are many); the
 * units into u. */
static bool
first_pass(const struct qindex *ix, const struct qfunnel_spec *spec,
    const struct prep *p, struct units *u)
{
	struct part one = { ix, spec, p, *u }, two = one;
	int64_t hi = spec->to_us + spec->window_us;
	bool ok, halves = false;

	if (spec->sessions) {
		struct qindex_scan *scan = qindex_scan_new(ix, true, spec->from_us,
		    hi);
		ok = scan != NULL && run_part(&one, scan) &&
		    !qindex_scan_failed(scan);
		qindex_scan_free(scan);
	} else {
		ok = qindex_scan_people(ix, spec->from_us, hi, run_part,
		    (void *const[2]){ &one, &two }, &halves);
		ok = ok && (!halves || units_merge(&one.u, &two.u));
		units_finish(&two.u);
	}
	*u = one.u;
	return ok;
}

bool
qfunnel_run(const struct qindex *ix, const struct qfunnel_spec *spec,
    struct funnel_counts *out)
{
	struct prep p = { 0 };
	struct units u = { .stride = spec->n_steps + 2 };
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!prep_init(&p, ix, spec)) {
		goto done;
	}
	if (!p.nobody && !first_pass(ix, spec, &p, &u)) {
		goto done;
	}
	if (spec->breakdown.dim != FUNNEL_DIM_NONE ||
	    spec->cohort != QFUNNEL_NO_COHORT ? !group_units(ix, spec, &u, out) :
	    !fill_groups(spec, &u, NULL, NULL, 0, &out->overall)) {
		goto done;
	}
	ok = true;
done:
	if (!ok) {
		funnel_counts_finish(out);
	}
	prep_finish(&p);
	units_finish(&u);
	return ok;
}

void
funnel_counts_finish(struct funnel_counts *c)
{
	for (size_t i = 0; i < c->n_groups; i++) {
		free(c->groups[i].value);
	}
	free(c->groups);
	free(c->overall.value);
	memset(c, 0, sizeof(*c));
}
