/* qattribution.c - attribution's data (qattribution.h): the shared form,
 * and gathering it from the query index as server/api_attribution.c's
 * statements select it:
 *   - conversions: events of the conversion in [from, to), as their person
 *     resolves through merges;
 *   - visits: those, not bots', of the converting people that started in
 *     [from - the longest lookback, to];
 *   - transitions: per other person, their visits (not bots') started in
 *     [from, to) in order of start, then value. */
#include "common/qattribution.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/attribution.h"
#include "common/bigmem.h"
#include "common/channel.h"
#include "common/counttab.h"
#include "common/strbuf.h"

/* Appends one element of size elem to *arr (n, cap). */
static bool
append(void *arr, size_t *n, size_t *cap, size_t elem, const void *x)
{
	void **p = arr;

	if (*n == *cap) {
		size_t grown = *cap == 0 ? 64 : 2 * *cap;
		void *q = bigmem_realloc(*p, grown * elem);
		if (q == NULL) {
			return false;
		}
		*p = q;
		*cap = grown;
	}
	memcpy((char *)*p + *n * elem, x, elem);
	(*n)++;
	return true;
}

/* Room for cap elements of size elem in *arr at once (virtual memory:
 * only what is written is touched), so appending never copies. */
static bool
reserve(void *arr, size_t *cap, size_t want, size_t elem)
{
	void **p = arr, *q;

	if (want <= *cap) {
		return true;
	}
	if ((q = bigmem_realloc(*p, want * elem)) == NULL) {
		return false;
	}
	*p = q;
	*cap = want;
	return true;
}

void
attr_data_init(struct attr_data *d)
{
	memset(d, 0, sizeof(*d));
	d->values = json_object();
	d->currencies = json_object();
}

void
attr_data_finish(struct attr_data *d)
{
	free(d->convs);
	free(d->visits);
	free(d->steps);
	free(d->names);
	json_decref(d->values);
	json_decref(d->currencies);
	memset(d, 0, sizeof(*d));
}

bool
attr_data_value(struct attr_data *d, const char *value, uint32_t *out)
{
	json_t *id = json_object_get(d->values, value);
	void *iter;

	if (id != NULL) {
		*out = (uint32_t)json_integer_value(id);
		return true;
	}
	if (d->n_values == d->names_cap) {
		uint32_t cap = d->names_cap == 0 ? 64 : 2 * d->names_cap;
		const char **names = realloc(d->names, cap * sizeof(*names));
		if (names == NULL) {
			return false;
		}
		d->names = names;
		d->names_cap = cap;
	}
	if (d->values == NULL || json_object_set_new(d->values, value,
	    json_integer(d->n_values)) != 0 ||
	    (iter = json_object_iter_at(d->values, value)) == NULL) {
		return false;
	}
	/* The object's own copy of the key: stable while it is there. */
	d->names[d->n_values] = json_object_iter_key(iter);
	*out = d->n_values++;
	return true;
}

bool
attr_data_currency(struct attr_data *d, const char *currency)
{
	return d->currencies != NULL && (json_object_get(d->currencies,
	    currency) != NULL || json_object_set_new(d->currencies, currency,
	    json_true()) == 0);
}

bool
attr_data_add_conv(struct attr_data *d, const struct attr_conv *c)
{
	return append(&d->convs, &d->n_convs, &d->convs_cap, sizeof(*c), c);
}

bool
attr_data_add_visit(struct attr_data *d, const struct attr_visit *v)
{
	return append(&d->visits, &d->n_visits, &d->visits_cap, sizeof(*v), v);
}

bool
attr_data_add_step(struct attr_data *d, const struct attr_step *s)
{
	return append(&d->steps, &d->n_steps, &d->steps_cap, sizeof(*s), s);
}

static int
compare_visits(const void *pa, const void *pb)
{
	const struct attr_visit *a = pa, *b = pb;

	if (a->person != b->person) {
		return a->person < b->person ? -1 : 1;
	}
	if (a->ts_us != b->ts_us) {
		return a->ts_us < b->ts_us ? -1 : 1;
	}
	return strcmp(a->session, b->session);
}

static int
compare_convs(const void *pa, const void *pb)
{
	const struct attr_conv *a = pa, *b = pb;

	if (a->person != b->person) {
		return a->person < b->person ? -1 : 1;
	}
	if (a->ts_us != b->ts_us) {
		return a->ts_us < b->ts_us ? -1 : 1;
	}
	return strcmp(a->event_id, b->event_id);
}

void
attr_data_sort(struct attr_data *d)
{
	if (d->n_convs > 1) {
		qsort(d->convs, d->n_convs, sizeof(*d->convs), compare_convs);
	}
	if (d->n_visits > 1) {
		qsort(d->visits, d->n_visits, sizeof(*d->visits),
		    compare_visits);
	}
}

/* Orders rows (n of size bytes, at most GROUPED_ROW_MAX, each beginning
 * with its int64_t person, a slot below n_slots) as cmp does, when cmp
 * orders by person first: placed by person in one pass over counts per
 * slot, then each person's few rows sorted by insertion. A qsort of every row was a quarter of
 * attribution's time at 21.6 M events. False when out of memory. */
_Static_assert(offsetof(struct attr_conv, person) == 0 &&
    offsetof(struct attr_visit, person) == 0, "group_by_slot's person");
#define GROUPED_ROW_MAX 64
_Static_assert(sizeof(struct attr_conv) <= GROUPED_ROW_MAX &&
    sizeof(struct attr_visit) <= GROUPED_ROW_MAX, "group_by_slot's rows");

static bool
group_by_slot(void *rows, size_t n, size_t *cap, size_t size,
    uint32_t n_slots, int (*cmp)(const void *, const void *))
{
	void **p = rows;
	uint32_t *at = calloc((size_t)n_slots + 1, sizeof(*at));
	char *out = bigmem_realloc(NULL, n * size), *in = *p;
	_Alignas(max_align_t) char held[GROUPED_ROW_MAX];
	int64_t person;

	if (at == NULL || out == NULL) {
		free(at);
		free(out);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(&person, in + i * size, sizeof(person));
		at[person + 1]++;
	}
	for (uint32_t slot = 0; slot < n_slots; slot++) {
		at[slot + 1] += at[slot];
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(&person, in + i * size, sizeof(person));
		memcpy(out + (size_t)at[person]++ * size, in + i * size, size);
	}
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		memcpy(held, out + i * size, size);
		for (; j > 0 && cmp(out + (j - 1) * size, held) > 0; j--) {
			memcpy(out + j * size, out + (j - 1) * size, size);
		}
		if (j != i) {
			memcpy(out + j * size, held, size);
		}
	}
	free(*p);
	*p = out;
	*cap = n;
	free(at);
	return true;
}

static int
compare_text(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

size_t
attr_data_currencies(const struct attr_data *d,
    const char *out[QATTR_CURRENCIES_MAX], bool *more)
{
	size_t n = json_object_size(d->currencies), k = 0;
	const char **all = malloc((n + 1) * sizeof(*all));
	const char *key;
	json_t *v;

	*more = n > QATTR_CURRENCIES_MAX;
	if (all == NULL) {
		return 0;
	}
	json_object_foreach((json_t *)d->currencies, key, v) {
		all[k++] = key;
	}
	qsort(all, k, sizeof(*all), compare_text);
	k = k < QATTR_CURRENCIES_MAX ? k : QATTR_CURRENCIES_MAX;
	memcpy(out, all, k * sizeof(*out));
	free(all);
	return k;
}

/* ------------------------------------------------------ from the index */

bool
qattr_supported(const struct qindex *ix, const char *conversion, bool first)
{
	if (first) {
		return false;
	}
	for (size_t id = 0; id < qindex_name_count(ix); id++) {
		if (strcmp(qindex_name_text(ix, (uint16_t)id), conversion) == 0 &&
		    !qindex_name_macro(ix, (uint16_t)id)) {
			return false;
		}
	}
	return true;
}

static const enum qindex_dim plain_dim[] = {
	[QATTR_DIM_CHANNEL] = QINDEX_DIM_CHANNEL,
	[QATTR_DIM_UTM_SOURCE] = QINDEX_DIM_UTM_SOURCE,
	[QATTR_DIM_UTM_MEDIUM] = QINDEX_DIM_UTM_MEDIUM,
	[QATTR_DIM_UTM_CAMPAIGN] = QINDEX_DIM_UTM_CAMPAIGN,
	[QATTR_DIM_LANDING_PATH] = QINDEX_DIM_LANDING_PATH,
};

/* A visit's value for dim, as the statements' COALESCE spell it: the
 * index's string, or for source / medium built in sb. */
static const char *
visit_value(const struct qindex *ix, const struct qindex_visit_info *v,
    enum qattr_dim dim, struct strbuf *sb)
{
	const char *source, *medium, *channel, *referrer;

	if (dim != QATTR_DIM_SOURCE_MEDIUM) {
		const char *s = qindex_string(ix, v->dims[plain_dim[dim]]);
		return s != NULL ? s : "(none)";
	}
	source = qindex_string(ix, v->dims[QINDEX_DIM_UTM_SOURCE]);
	medium = qindex_string(ix, v->dims[QINDEX_DIM_UTM_MEDIUM]);
	channel = qindex_string(ix, v->dims[QINDEX_DIM_CHANNEL]);
	referrer = qindex_string(ix, v->dims[QINDEX_DIM_REFERRER_HOST]);
	if (medium == NULL) {
		medium = channel != NULL && strcmp(channel, "Organic Search") == 0 ?
		    "organic" : referrer != NULL ? "referral" : "(none)";
	}
	strbuf_reset(sb);
	strbuf_appendf(sb, "%s / %s", source != NULL ? source :
	    referrer != NULL ? referrer : "(direct)", medium);
	return strbuf_failed(sb) ? NULL : sb->data;
}

/* Visits' values by the string ids they are made of, so that each text
 * is spelt and looked up in attr_data once, not once a visit. */
struct value_cache {
	const struct qindex *ix;
	enum qattr_dim dim;
	uint32_t organic;		/* "Organic Search"'s string id */
	struct counttab known;		/* key -> attr_data index + 1 (tag) */
	struct strbuf sb;
};

static void
value_cache_init(struct value_cache *c, const struct qindex *ix,
    enum qattr_dim dim)
{
	memset(c, 0, sizeof(*c));
	c->ix = ix;
	c->dim = dim;
	c->organic = qindex_string_find(ix, "Organic Search");
	strbuf_init(&c->sb);
}

static void
value_cache_finish(struct value_cache *c)
{
	counttab_finish(&c->known);
	strbuf_finish(&c->sb);
}

/* What visit_value reads of v, in one key: for source / medium, the
 * source's id (else the referrer's, else 0) and the medium's (else one of
 * the three it defaults to: the ids are below them). */
static int64_t
value_key(const struct value_cache *c, const struct qindex_visit_info *v)
{
	uint32_t source, medium, referrer = v->dims[QINDEX_DIM_REFERRER_HOST];

	if (c->dim != QATTR_DIM_SOURCE_MEDIUM) {
		return v->dims[plain_dim[c->dim]];
	}
	source = v->dims[QINDEX_DIM_UTM_SOURCE] != 0 ?
	    v->dims[QINDEX_DIM_UTM_SOURCE] : referrer;
	medium = v->dims[QINDEX_DIM_UTM_MEDIUM];
	if (medium == 0) {
		medium = c->organic != 0 && v->dims[QINDEX_DIM_CHANNEL] ==
		    c->organic ? UINT32_MAX : referrer != 0 ? UINT32_MAX - 1 :
		    UINT32_MAX - 2;
	}
	return (int64_t)((uint64_t)source << 32 | medium);
}

/* v's value index in d, into *out. */
static bool
value_cache_get(struct value_cache *c, struct attr_data *d,
    const struct qindex_visit_info *v, uint32_t *out)
{
	int64_t key = value_key(c, v);
	struct counttab_entry *e;
	const char *text;

	if (c->known.n > 0 && (e = counttab_find(&c->known, key))->used) {
		*out = (uint32_t)(e->tag - 1);
		return true;
	}
	if ((text = visit_value(c->ix, v, c->dim, &c->sb)) == NULL ||
	    !attr_data_value(d, text, out) || !counttab_add(&c->known, key, 1)) {
		return false;
	}
	counttab_find(&c->known, key)->tag = (size_t)*out + 1;
	return true;
}

static void
uuid_text(const uint8_t id[16], char out[QATTR_EVENT_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			out[k++] = '-';
		}
		out[k++] = hex[id[i] >> 4];
		out[k++] = hex[id[i] & 15];
	}
	out[k] = '\0';
}

/* A visit of a transition: its person, start, and value. */
struct hop {
	uint32_t root, value;
	int64_t ts;
};

/* The transitions' visits, bucketed by person, so that putting them in
 * order costs a sort of each person's few visits, where a sort of them
 * all took most of the data-driven model's time. next[r] is where person
 * r's next visit goes: once all are in, their end, so person r's are
 * hop[next[r - 1] .. next[r]) (from 0 for the first). */
struct hops {
	struct hop *hop;
	uint32_t *next;		/* visits are at most 2^31 (qindex.h) */
	size_t n, n_people;
};

static void
hops_finish(struct hops *h)
{
	free(h->hop);
	free(h->next);
}

/* Whether the visit vi of root is one of a transition: not a
 * converter's, started in the range. */
static bool
is_hop(const struct qattr_spec *spec, const struct qindex_visit_info *vi,
    const bool *converted, uint32_t root)
{
	return spec->transitions && !converted[root] &&
	    vi->started_at >= spec->from_us && vi->started_at < spec->to_us;
}

/* Room for each person's transition visits (a first pass over the
 * visits: counts). */
static bool
hops_layout(const struct qindex *ix, const struct qattr_spec *spec,
    const uint32_t *root_of, const bool *converted, struct hops *h)
{
	struct qindex_stats st;

	qindex_stats(ix, &st);
	h->n_people = st.people;
	if ((h->next = calloc(st.people + 1, sizeof(*h->next))) == NULL) {
		return false;
	}
	for (uint32_t v = 0; v < st.visits; v++) {
		struct qindex_visit_info vi;
		qindex_visit(ix, v, &vi);
		if (vi.stored && !vi.bot && is_hop(spec, &vi, converted,
		    root_of[vi.person])) {
			h->next[root_of[vi.person]]++;
		}
	}
	/* Each person's count becomes where their first visit goes. */
	for (size_t r = 0; r < st.people; r++) {
		uint32_t count = h->next[r];
		h->next[r] = (uint32_t)h->n;
		h->n += count;
	}
	return (h->hop = bigmem_realloc(NULL, (h->n + 1) *
	    sizeof(*h->hop))) != NULL;
}

struct ranked {
	const char *name;
	uint32_t value;
};

static int
compare_ranked(const void *pa, const void *pb)
{
	return strcmp(((const struct ranked *)pa)->name,
	    ((const struct ranked *)pb)->name);
}

/* The transitions of hops[0..n) (sorted), counted, into d. */
static bool
add_hops(struct attr_data *d, const struct hop *hops, size_t n)
{
	struct counttab counts = { 0 };
	bool ok = true;

	for (size_t i = 0; ok && i < n; i++) {
		bool first = i == 0 || hops[i - 1].root != hops[i].root;
		bool last = i + 1 == n || hops[i + 1].root != hops[i].root;
		uint32_t from = first ? ATTR_START : hops[i - 1].value;
		ok = counttab_add(&counts, (int64_t)((uint64_t)from << 32 |
		    (uint64_t)hops[i].value << 1 | last), 1) != NULL;
	}
	for (size_t i = 0; ok && i < counts.cap; i++) {
		const struct counttab_entry *e = &counts.slot[i];
		uint64_t key = (uint64_t)e->key;
		if (e->used) {
			ok = attr_data_add_step(d, &(struct attr_step){
				(uint32_t)(key >> 32), (uint32_t)(key >> 1) &
				0x7fffffff, (key & 1) != 0, (double)e->count });
		}
	}
	counttab_finish(&counts);
	return ok;
}

/* The transitions of h, counted into d once each person's visits are
 * in order of start, then value in byte order (the statement's window
 * order). */
static bool
count_transitions(struct attr_data *d, struct hops *h)
{
	struct ranked *rank = malloc((d->n_values + 1) * sizeof(*rank));
	uint32_t *rank_of = malloc((d->n_values + 1) * sizeof(*rank_of));
	bool ok = rank != NULL && rank_of != NULL;

	for (uint32_t i = 0; ok && i < d->n_values; i++) {
		rank[i] = (struct ranked){ d->names[i], i };
	}
	if (ok) {
		qsort(rank, d->n_values, sizeof(*rank), compare_ranked);
		for (uint32_t i = 0; i < d->n_values; i++) {
			rank_of[rank[i].value] = i;
		}
	}
	for (size_t r = 0, start = 0; ok && r < h->n_people; start = h->next[r++]) {
		struct hop *run = h->hop + start;
		size_t n = h->next[r] - start;
		for (size_t i = 1; i < n; i++) {
			struct hop x = run[i];
			size_t j = i;
			while (j > 0 && (x.ts != run[j - 1].ts ? x.ts < run[j - 1].ts :
			    rank_of[x.value] < rank_of[run[j - 1].value])) {
				run[j] = run[j - 1];
				j--;
			}
			run[j] = x;
		}
	}
	ok = ok && add_hops(d, h->hop, h->n);
	free(rank);
	free(rank_of);
	return ok;
}

/* The visits attribution reads: those of converters in their lookback
 * into d, and the transitions' into their people's places in h. */
static bool
gather_visits(const struct qindex *ix, const struct qattr_spec *spec,
    const uint32_t *root_of, const bool *converted,
    struct value_cache *values, struct attr_data *d, struct hops *h)
{
	struct qindex_stats st;
	bool ok = true;

	qindex_stats(ix, &st);
	for (uint32_t v = 0; ok && v < st.visits; v++) {
		struct qindex_visit_info vi;
		const char *channel;
		uint32_t root;
		qindex_visit(ix, v, &vi);
		if (!vi.stored || vi.bot) {
			continue;
		}
		root = root_of[vi.person];
		if (is_hop(spec, &vi, converted, root)) {
			struct hop *at = &h->hop[h->next[root]++];
			at->root = root;
			at->ts = vi.started_at;
			ok = value_cache_get(values, d, &vi, &at->value);
			continue;
		}
		if (!converted[root] ||
		    vi.started_at < spec->from_us - spec->lookback_us ||
		    vi.started_at > spec->to_us) {
			continue;
		}
		channel = qindex_string(ix, vi.dims[QINDEX_DIM_CHANNEL]);
		struct attr_visit visit = {
			.person = root,
			.ts_us = vi.started_at,
			.session = vi.session_id,
			.channel = channel_from_name(channel != NULL ? channel : ""),
		};
		ok = value_cache_get(values, d, &vi, &visit.value) &&
		    attr_data_add_visit(d, &visit);
	}
	return ok;
}

bool
qattr_gather(const struct qindex *ix, const struct qattr_spec *spec,
    struct attr_data *d)
{
	struct qindex_stats st;
	size_t n_convs;
	const struct qindex_conversion *c = qindex_conversions(ix, &n_convs);
	size_t n_names = qindex_name_count(ix);
	bool *wanted = calloc(n_names + 1, sizeof(bool)), *converted;
	uint32_t *root_of;
	struct hops hops = { 0 };
	struct value_cache values;
	bool ok;

	value_cache_init(&values, ix, spec->dim);
	qindex_stats(ix, &st);
	converted = calloc(st.people + 1, sizeof(bool));
	/* Every slot's root in one small array, read in order once, rather
	 * than through the bigger person slots at each visit's. */
	root_of = malloc((st.people + 1) * sizeof(*root_of));
	ok = wanted != NULL && converted != NULL && root_of != NULL &&
	    d->values != NULL && d->currencies != NULL;
	for (uint32_t p = 0; ok && p < st.people; p++) {
		root_of[p] = qindex_person_root(ix, p);
	}
	for (size_t id = 0; ok && id < n_names; id++) {
		wanted[id] = strcmp(qindex_name_text(ix, (uint16_t)id),
		    spec->conversion) == 0;
	}
	for (size_t i = 0; ok && i < n_convs; i++) {
		struct attr_conv conv;
		uint32_t root;
		if (!wanted[c[i].name] || c[i].ts < spec->from_us ||
		    c[i].ts >= spec->to_us) {
			continue;
		}
		root = root_of[c[i].person];
		converted[root] = true;
		conv.person = root;
		conv.ts_us = c[i].ts;
		conv.revenue = isfinite(c[i].revenue) ? c[i].revenue : 0;
		uuid_text(c[i].event_id, conv.event_id);
		ok = attr_data_add_conv(d, &conv) && (c[i].currency == 0 ||
		    attr_data_currency(d, qindex_string(ix, c[i].currency)));
	}
	/* At most every visit is a converter's: at 21.6 M events growing
	 * the array by doubling was a sixth of attribution's time, copies
	 * and page faults. Only a hint: refused, it grows as it fills. */
	if (ok) {
		(void)reserve(&d->visits, &d->visits_cap, st.visits + 1,
		    sizeof(*d->visits));
	}
	ok = ok && (!spec->transitions || hops_layout(ix, spec, root_of,
	    converted, &hops));
	ok = ok && gather_visits(ix, spec, root_of, converted, &values, d,
	    &hops);
	ok = ok && (!spec->transitions || count_transitions(d, &hops));
	ok = ok && group_by_slot(&d->convs, d->n_convs, &d->convs_cap,
	    sizeof(*d->convs), st.people, compare_convs) &&
	    group_by_slot(&d->visits, d->n_visits, &d->visits_cap,
	    sizeof(*d->visits), st.people, compare_visits);
	value_cache_finish(&values);
	hops_finish(&hops);
	free(root_of);
	free(wanted);
	free(converted);
	return ok;
}
