/* people.c - people and sessions of a batch, decided in the writer. */
#include "server/people.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/strbuf.h"
#include "server/copy_row.h"
#include "server/pgarray.h"
#include "server/writer.h"

/* Separates a cache key's parts; ids never contain it unescaped in a way
 * that matters, as keys only ever compare for equality with keys built
 * the same way. */
#define KEY_SEP '\x1f'

/* One event of the batch. */
struct ev {
	const struct people_event *pe;
	const struct strbuf *text;	/* the item's people_text */
	const char *rows;		/* the item's events rows */
	size_t row_start;
	const char *site, *anon, *user, *sid, *src, *name;
	int64_t person;			/* 0: none (no ids) or not known yet */
	int64_t anon_person;		/* the device's, when known */
	bool lookup;			/* in the lookup's parameters */
	bool stored;			/* already stored: dedup drops it */
	const char *session;		/* decided; NULL: none */
};

/* The events of one device ('a'), client session ('c'), or person known
 * only by a user id ('u'); kind 0 for events without any id. */
struct stream {
	char kind;
	size_t first, n;		/* in order[] */
	bool known;			/* the stored session is known */
	int64_t checked_ms;		/* when, if from the cache */
	bool has_stored;
	struct people_fact stored;	/* the session it may continue */
	bool has_latest;
	struct people_fact latest;	/* after this batch, for the cache */
};

/* A session the batch touched: a row of the store's sessions. */
struct touched {
	const char *session;
	const struct ev *head;		/* its earliest event in the batch */
	/* The head's time if it gives the landing, else the stored start:
	 * never earlier than the stored one, which only moves earlier. */
	int64_t started_us;
	int64_t last_us;
	int events;
	bool landing;			/* head gives the landing */
	bool client;			/* the session id is the client's */
};

struct people_batch {
	struct people_cache *cache;
	bool dedup;			/* rows take COPY_ROW_EVENT_DEDUP_COLUMNS */
	int64_t timeout_us;
	struct ev *evs;
	size_t n_evs;
	size_t *order;			/* evs by stream, then time */
	struct stream *streams;
	size_t n_streams;
	long merged, refused;
	struct strbuf events;
	/* Parameters of the lookup and of the store (people.h): column i
	 * of the rows, one element each. */
	struct pgarray lookup[PEOPLE_LOOKUP_PARAMS];
	struct pgarray store[PEOPLE_STORE_PARAMS];
	size_t n_lookup, n_sessions, n_milestones;
	struct strbuf key;		/* scratch */
	char **names;			/* new session ids, owned */
	size_t n_names;
	struct touched *touched;	/* sessions touched, for the store */
	size_t n_touched;
};

static const char *
text_at(const struct strbuf *text, size_t off)
{
	return off > 0 ? text->data + off - 1 : NULL;
}

/* Appends s to text, answering its offset + 1 (0 for NULL or ""). */
static size_t
text_add(struct strbuf *text, const char *s)
{
	size_t off;

	if (s == NULL || s[0] == '\0') {
		return 0;
	}
	off = text->len + 1;
	strbuf_append(text, s, strlen(s) + 1);
	return off;
}

/* Appends to text what milepost_source_key() answers for an event's
 * enrichment texts (which the stored sessions' source_key was computed
 * with), answering its offset + 1 (0 for none), as text_add does. */
static size_t
source_key_add(struct strbuf *text, const char *const texts[ENRICH_TEXTS])
{
	static const int parts[] = { ENRICH_TEXT_UTM_SOURCE,
		ENRICH_TEXT_UTM_MEDIUM, ENRICH_TEXT_UTM_CAMPAIGN,
		ENRICH_TEXT_CLICK_ID_KIND, ENRICH_TEXT_REFERRER_HOST };
	const size_t n = sizeof(parts) / sizeof(parts[0]);
	size_t off = text->len + 1;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		any = any || texts[parts[i]][0] != '\0';
	}
	if (!any) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			strbuf_append_char(text, KEY_SEP);
		}
		strbuf_append_str(text, texts[parts[i]]);
	}
	strbuf_append_char(text, '\0');
	return off;
}

bool
people_note_event(struct writer_item *item, const char *site_id,
    const char *request_id, size_t index, const struct event *ev,
    const struct enrichment *enr)
{
	size_t prev_request;
	struct people_event *pe;
	const char *texts[ENRICH_TEXTS];

	if (item->n_people == item->cap_people) {
		size_t cap = item->cap_people > 0 ? item->cap_people * 2 : 8;
		pe = realloc(item->people, cap * sizeof(*pe));
		if (pe == NULL) {
			return false;
		}
		item->people = pe;
		item->cap_people = cap;
	}
	pe = &item->people[item->n_people];
	prev_request = item->n_people > 0 ? pe[-1].request_id : 0;
	*pe = (struct people_event){
		.row_end = item->events.len,
		.ts_us = ev->ts_us,
		.milestone = ev->kind != NULL && ev->type != EVENT_IDENTIFY &&
		    !enr->ua.bot,
	};
	memcpy(pe->event_id, ev->event_id, sizeof(pe->event_id));
	enrich_texts(enr, texts);
	pe->site_id = text_add(&item->people_text, site_id);
	pe->anonymous_id = text_add(&item->people_text, ev->anonymous_id);
	pe->user_id = text_add(&item->people_text, ev->user_id);
	pe->session_id = text_add(&item->people_text, ev->session_id);
	pe->source_key = source_key_add(&item->people_text, texts);
	pe->name = text_add(&item->people_text, ev->name);
	pe->url = text_add(&item->people_text, ev->url);
	for (size_t i = 0; i < ENRICH_TEXTS; i++) {
		pe->landing[i] = text_add(&item->people_text, texts[i]);
	}
	pe->bot = enr->ua.bot;
	pe->id_given = !ev->event_id_generated;
	pe->trust = ev->trust;
	pe->claim = text_add(&item->people_text, ev->claim);
	/* An item's events mostly share one request: its id is kept once. */
	pe->request_id = prev_request != 0 && request_id != NULL &&
	    !strbuf_failed(&item->people_text) &&
	    strcmp(text_at(&item->people_text, prev_request), request_id) == 0 ?
	    prev_request : text_add(&item->people_text, request_id);
	pe->index = index;
	if (strbuf_failed(&item->people_text)) {
		return false;
	}
	item->n_people++;
	return true;
}

/* ------------------------------------------------------------ the cache */

static void
key_begin(struct strbuf *key, char kind, char sub, const char *site)
{
	strbuf_reset(key);
	strbuf_append_char(key, kind);
	strbuf_append_char(key, sub);
	strbuf_append_str(key, site);
	strbuf_append_char(key, KEY_SEP);
}

/* The person of an id: kind 'u' (user) or 'a' (anonymous). */
static const struct strbuf *
key_identity(struct strbuf *key, char kind, const char *site, const char *id)
{
	key_begin(key, 'i', kind, site);
	strbuf_append_str(key, id);
	return key;
}

/* The latest session of a stream: kind 'a' or 'c'. */
static const struct strbuf *
key_stream(struct strbuf *key, char kind, const char *site, const char *id)
{
	key_begin(key, 's', kind, site);
	strbuf_append_str(key, id);
	return key;
}

static const struct strbuf *
key_milestone(struct strbuf *key, const char *site, int64_t person,
    const char *name)
{
	key_begin(key, 'm', '-', site);
	strbuf_appendf(key, "%" PRId64, person);
	strbuf_append_char(key, KEY_SEP);
	strbuf_append_str(key, name);
	return key;
}

static bool
cache_get(struct people_batch *b, const struct strbuf *key,
    struct people_fact *out)
{
	return !strbuf_failed(key) && key->len > 0 &&
	    people_cache_get(b->cache, key->data, key->len, out);
}

static void
cache_put(struct people_batch *b, const struct strbuf *key,
    const struct people_fact *fact)
{
	if (!strbuf_failed(key) && key->len > 0) {
		people_cache_put(b->cache, key->data, key->len, fact);
	}
}

/* The person of an id from the cache, 0 if unknown. */
static int64_t
cached_person(struct people_batch *b, char kind, const char *site,
    const char *id)
{
	struct people_fact f = { 0 };

	if (id == NULL ||
	    !cache_get(b, key_identity(&b->key, kind, site, id), &f)) {
		return 0;
	}
	people_fact_finish(&f);
	return f.person;
}

/* ------------------------------------------------------------- planning */

static char
stream_kind(const struct ev *e)
{
	if (e->stored) {
		return 0;
	}
	return e->sid != NULL ? 'c' : e->anon != NULL ? 'a' :
	    e->user != NULL ? 'u' : 0;
}

static const char *
stream_id(const struct ev *e)
{
	switch (stream_kind(e)) {
	case 'c': return e->sid;
	case 'a': return e->anon;
	case 'u': return e->user;
	default: return "";
	}
}

static int
strcmp_null(const char *a, const char *b)
{
	return a == NULL ? (b == NULL ? 0 : -1) : b == NULL ? 1 :
	    strcmp(a, b);
}

static bool
streq_null(const char *a, const char *b)
{
	return strcmp_null(a, b) == 0;
}

/* qsort has no context argument; the batch being sorted is per thread. */
static _Thread_local const struct ev *sorting;

static int
compare_events(const void *pa, const void *pb)
{
	const struct ev *a = &sorting[*(const size_t *)pa];
	const struct ev *b = &sorting[*(const size_t *)pb];
	int c;

	if ((c = strcmp(a->site, b->site)) != 0 ||
	    (c = stream_kind(a) - stream_kind(b)) != 0 ||
	    (c = strcmp(stream_id(a), stream_id(b))) != 0) {
		return c;
	}
	if (a->pe->ts_us != b->pe->ts_us) {
		return a->pe->ts_us < b->pe->ts_us ? -1 : 1;
	}
	return strcmp(a->pe->event_id, b->pe->event_id);
}

static bool
same_stream(const struct ev *a, const struct ev *b)
{
	return strcmp(a->site, b->site) == 0 &&
	    stream_kind(a) == stream_kind(b) &&
	    strcmp(stream_id(a), stream_id(b)) == 0;
}

/* The person of e from the cache: its user id's, else its device's. An
 * event with both ids is known only when both are of one person already;
 * otherwise it may link them. */
static void
plan_person(struct people_batch *b, struct ev *e)
{
	e->anon_person = cached_person(b, 'a', e->site, e->anon);
	if (e->user == NULL) {
		e->person = e->anon_person;
		return;
	}
	e->person = cached_person(b, 'u', e->site, e->user);
	/* An unverified claim may be refused (migrations/0012): only the
	 * lookup knows whether the user id's links were verified. */
	if ((e->anon != NULL && e->anon_person != e->person) ||
	    (e->anon == NULL && e->pe->trust == EVENT_TRUST_UNVERIFIED)) {
		e->person = 0;
	}
}

/* Whether the cache knows the session s could continue: a client session
 * always (it is the one named), a device's latest session when the
 * stream's first event is not older than it (else an earlier visit may
 * be the one). A person's is never cached: any of their devices may have
 * started one since. */
static void
plan_stream(struct people_batch *b, struct stream *s)
{
	const struct ev *first = &b->evs[b->order[s->first]];
	struct people_fact f = { 0 };

	if (s->kind != 'a' && s->kind != 'c') {
		return;
	}
	if (!cache_get(b, key_stream(&b->key, s->kind, first->site,
	    stream_id(first)), &f)) {
		return;
	}
	if (s->kind == 'a' && f.session_id != NULL &&
	    first->pe->ts_us < f.first_us - b->timeout_us) {
		people_fact_finish(&f);
		return;
	}
	s->known = true;
	s->checked_ms = f.checked_ms;
	s->has_stored = f.session_id != NULL;
	s->stored = f;
}

/* The lookup's columns: n (the event's number in the batch), site_id,
 * anonymous_id, user_id, session_id, ts, trust (NULL: unchecked). */
static void
lookup_row(struct people_batch *b, size_t n, const struct ev *e)
{
	struct pgarray *col = b->lookup;

	pgarray_add_int(&col[0], (int64_t)n);
	pgarray_add_text(&col[1], e->site);
	pgarray_add_text(&col[2], e->anon);
	pgarray_add_text(&col[3], e->user);
	pgarray_add_text(&col[4], e->sid);
	pgarray_add_time(&col[5], e->pe->ts_us);
	pgarray_add_text(&col[6], e->pe->trust == EVENT_TRUST_UNCHECKED ?
	    NULL : e->pe->trust == EVENT_TRUST_VERIFIED ? "t" : "f");
	b->n_lookup++;
}

static size_t
count_events(const struct writer_item *items)
{
	size_t n = 0;

	for (const struct writer_item *it = items; it != NULL; it = it->next) {
		n += it->n_people;
	}
	return n;
}

bool
people_event_ids(const struct writer_item *items, struct pgarray cols[2])
{
	for (const struct writer_item *it = items; it != NULL; it = it->next) {
		for (size_t i = 0; i < it->n_people; i++) {
			const struct people_event *pe = &it->people[i];
			pgarray_add_text(&cols[0], text_at(&it->people_text,
			    pe->site_id));
			pgarray_add_text(&cols[1], pe->event_id);
		}
	}
	return pgarray_value(&cols[0]) != NULL &&
	    pgarray_value(&cols[1]) != NULL;
}

/* Rows of (site_id, event_id), sorted for is_stored. */
static _Thread_local const PGresult *sorting_stored;

static int
compare_stored(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;
	int c = strcmp(PQgetvalue(sorting_stored, a, 0),
	    PQgetvalue(sorting_stored, b, 0));

	return c != 0 ? c : strcasecmp(PQgetvalue(sorting_stored, a, 1),
	    PQgetvalue(sorting_stored, b, 1));
}

static bool
is_stored(const PGresult *stored, const int *rows, int n,
    const struct ev *e)
{
	int lo = 0, hi = n;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(e->site, PQgetvalue(stored, rows[mid], 0));
		if (c == 0) {
			c = strcasecmp(e->pe->event_id,
			    PQgetvalue(stored, rows[mid], 1));
		}
		if (c == 0) {
			return true;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	return false;
}

static void
mark_dropped(struct ev *e)
{
	e->stored = true;
	e->person = e->anon_person = 0;
}

static bool
same_id(const struct ev *a, const struct ev *b)
{
	return strcmp(a->site, b->site) == 0 &&
	    strcasecmp(a->pe->event_id, b->pe->event_id) == 0;
}

/* evs indices by site and event id, then batch order, for
 * mark_repeats. */
static _Thread_local const struct ev *sorting_ids;

static int
compare_ids(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = strcmp(sorting_ids[a].site, sorting_ids[b].site);

	if (c == 0) {
		c = strcasecmp(sorting_ids[a].pe->event_id,
		    sorting_ids[b].pe->event_id);
	}
	return c != 0 ? c : (a > b) - (a < b);
}

/* Marks every repeat of an id earlier in the batch: dedup stores at most
 * the first event of an id. False out of memory. */
static bool
mark_repeats(struct people_batch *b)
{
	size_t *ids = malloc((b->n_evs > 0 ? b->n_evs : 1) * sizeof(*ids));

	if (ids == NULL) {
		return false;
	}
	for (size_t i = 0; i < b->n_evs; i++) {
		ids[i] = i;
	}
	sorting_ids = b->evs;
	qsort(ids, b->n_evs, sizeof(*ids), compare_ids);
	sorting_ids = NULL;
	for (size_t i = 1; i < b->n_evs; i++) {
		if (same_id(&b->evs[ids[i - 1]], &b->evs[ids[i]])) {
			mark_dropped(&b->evs[ids[i]]);
		}
	}
	free(ids);
	return true;
}

/* Marks the events of b that stored lists, and the repeats of an id in
 * b. False out of memory. */
static bool
mark_stored(struct people_batch *b, const PGresult *stored)
{
	int n = PQntuples(stored);
	int *rows;

	if (!mark_repeats(b)) {
		return false;
	}
	if (n == 0) {
		return true;
	}
	rows = malloc((size_t)n * sizeof(*rows));
	if (rows == NULL) {
		return false;
	}
	for (int i = 0; i < n; i++) {
		rows[i] = i;
	}
	sorting_stored = stored;
	qsort(rows, (size_t)n, sizeof(*rows), compare_stored);
	sorting_stored = NULL;
	for (size_t i = 0; i < b->n_evs; i++) {
		struct ev *e = &b->evs[i];
		if (is_stored(stored, rows, n, e)) {
			mark_dropped(e);
		}
	}
	free(rows);
	return true;
}

struct people_batch *
people_batch_new(const struct writer_item *items, struct people_cache *cache,
    int64_t session_timeout_us, const PGresult *stored)
{
	struct people_batch *b = calloc(1, sizeof(*b));
	size_t n = count_events(items), k = 0;

	if (b == NULL) {
		return NULL;
	}
	b->cache = cache;
	b->timeout_us = session_timeout_us;
	strbuf_init(&b->events);
	strbuf_init(&b->key);
	for (size_t i = 0; i < PEOPLE_LOOKUP_PARAMS; i++) {
		pgarray_init(&b->lookup[i]);
	}
	for (size_t i = 0; i < PEOPLE_STORE_PARAMS; i++) {
		pgarray_init(&b->store[i]);
	}
	b->evs = calloc(n > 0 ? n : 1, sizeof(*b->evs));
	b->order = calloc(n > 0 ? n : 1, sizeof(*b->order));
	b->streams = calloc(n > 0 ? n : 1, sizeof(*b->streams));
	b->names = calloc(n > 0 ? n : 1, sizeof(*b->names));
	/* Each touched session starts with an event of its own. */
	b->touched = calloc(n > 0 ? n : 1, sizeof(*b->touched));
	if (b->evs == NULL || b->order == NULL || b->streams == NULL ||
	    b->names == NULL || b->touched == NULL) {
		goto fail;
	}
	for (const struct writer_item *it = items; it != NULL; it = it->next) {
		size_t row_start = 0;
		for (size_t i = 0; i < it->n_people; i++) {
			const struct people_event *pe = &it->people[i];
			const struct strbuf *t = &it->people_text;
			struct ev *e = &b->evs[k];
			*e = (struct ev){
				.pe = pe,
				.text = t,
				.rows = it->events.data,
				.row_start = row_start,
				.site = text_at(t, pe->site_id),
				.anon = text_at(t, pe->anonymous_id),
				.user = text_at(t, pe->user_id),
				.sid = text_at(t, pe->session_id),
				.src = text_at(t, pe->source_key),
				.name = text_at(t, pe->name),
			};
			plan_person(b, e);
			b->order[k] = k;
			row_start = pe->row_end;
			k++;
		}
	}
	b->n_evs = n;
	b->dedup = stored != NULL;
	if (b->dedup && !mark_stored(b, stored)) {
		goto fail;
	}
	sorting = b->evs;
	qsort(b->order, n, sizeof(*b->order), compare_events);
	sorting = NULL;

	for (size_t i = 0; i < n; i++) {
		struct ev *e = &b->evs[b->order[i]];
		struct stream *s;
		if (i == 0 || !same_stream(&b->evs[b->order[i - 1]], e)) {
			s = &b->streams[b->n_streams++];
			*s = (struct stream){ .kind = stream_kind(e), .first = i };
			plan_stream(b, s);
		}
		s = &b->streams[b->n_streams - 1];
		s->n++;
		/* The stream's first event looks its stored session up;
		 * any event whose person is not known, its person. */
		e->lookup = s->kind != 0 && (e->person == 0 ||
		    (s->n == 1 && !s->known));
		if (e->lookup) {
			lookup_row(b, b->order[i], e);
		}
	}
	if (strbuf_failed(&b->key)) {
		goto fail;
	}
	return b;
fail:
	people_batch_free(b);
	return NULL;
}

void
people_batch_free(struct people_batch *b)
{
	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < b->n_streams; i++) {
		people_fact_finish(&b->streams[i].stored);
		people_fact_finish(&b->streams[i].latest);
	}
	for (size_t i = 0; i < b->n_names; i++) {
		free(b->names[i]);
	}
	free(b->names);
	free(b->touched);
	free(b->streams);
	free(b->order);
	free(b->evs);
	for (size_t i = 0; i < PEOPLE_LOOKUP_PARAMS; i++) {
		pgarray_finish(&b->lookup[i]);
	}
	for (size_t i = 0; i < PEOPLE_STORE_PARAMS; i++) {
		pgarray_finish(&b->store[i]);
	}
	strbuf_finish(&b->events);
	strbuf_finish(&b->key);
	free(b);
}

bool
people_batch_needs_lookup(const struct people_batch *b)
{
	return b->n_lookup > 0;
}

/* Closes the n literals of cols into values; false out of memory. */
static bool
params_of(struct pgarray *cols, size_t n, const char **values)
{
	for (size_t i = 0; i < n; i++) {
		values[i] = pgarray_value(&cols[i]);
		if (values[i] == NULL) {
			return false;
		}
	}
	return true;
}

bool
people_batch_lookup_params(struct people_batch *b,
    const char *values[PEOPLE_LOOKUP_PARAMS])
{
	return params_of(b->lookup, PEOPLE_LOOKUP_PARAMS, values);
}

static bool
take_links(struct people_batch *b, const PGresult *res)
{
	if (PQntuples(res) != 1) {
		return false;
	}
	b->merged = atol(PQgetvalue(res, 0, 1));
	b->refused = atol(PQgetvalue(res, 0, 2));
	return true;
}

long
people_batch_refused(const struct people_batch *b)
{
	return b->refused;
}

static char *
value_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL :
	    strdup(PQgetvalue(res, row, col));
}

/* The stream e belongs to (the one whose range holds its position). */
static struct stream *
stream_of(struct people_batch *b, size_t pos)
{
	size_t lo = 0, hi = b->n_streams;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (b->streams[mid].first <= pos) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return &b->streams[lo];
}

static bool
take_resolved(struct people_batch *b, const PGresult *res)
{
	size_t *pos_of = NULL;
	bool ok = false;

	pos_of = malloc((b->n_evs > 0 ? b->n_evs : 1) * sizeof(*pos_of));
	if (pos_of == NULL) {
		return false;
	}
	for (size_t i = 0; i < b->n_evs; i++) {
		pos_of[b->order[i]] = i;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		long n = atol(PQgetvalue(res, r, 0));
		if (n < 0 || (size_t)n >= b->n_evs || !b->evs[n].lookup) {
			goto done;
		}
		struct ev *e = &b->evs[n];
		e->person = PQgetisnull(res, r, 1) ? 0 :
		    atoll(PQgetvalue(res, r, 1));
		e->anon_person = PQgetisnull(res, r, 2) ? 0 :
		    atoll(PQgetvalue(res, r, 2));
		struct stream *s = stream_of(b, pos_of[n]);
		if (s->first != pos_of[n] || s->known) {
			continue;
		}
		s->known = true;
		s->has_stored = !PQgetisnull(res, r, 3);
		if (s->has_stored) {
			s->stored.session_id = value_or_null(res, r, 3);
			s->stored.first_us = atoll(PQgetvalue(res, r, 4));
			s->stored.last_us = atoll(PQgetvalue(res, r, 5));
			s->stored.source_key = value_or_null(res, r, 6);
			if (s->stored.session_id == NULL) {
				goto done;
			}
		}
	}
	ok = true;
done:
	free(pos_of);
	return ok;
}

bool
people_batch_take_result(struct people_batch *b, const PGresult *res)
{
	/* Columns: linked, merged, refused; or n, person_id, anon_person,
	 * session_id, started_at and last_at (microseconds), source_key. */
	switch (PQnfields(res)) {
	case 3: return take_links(b, res);
	case 7: return take_resolved(b, res);
	default: return false;
	}
}

/* ------------------------------------------------------------- deciding */

static int
compare_touched(const void *pa, const void *pb)
{
	const struct touched *a = pa, *b = pb;
	int c = strcmp(a->head->site, b->head->site);

	if (c == 0) {
		c = strcmp(a->session, b->session);
	}
	if (c == 0) {
		c = (a->started_us > b->started_us) -
		    (a->started_us < b->started_us);
	}
	return c;
}

/* The store's row for t (people.h): the extend columns when it only
 * extends a stored session, else the landing ones. */
static void
session_row(struct people_batch *b, const struct touched *t)
{
	struct pgarray *col = b->store;
	const struct ev *h = t->head;
	const struct strbuf *text = h->text;

	if (!t->landing) {
		pgarray_add_text(&col[0], h->site);
		pgarray_add_text(&col[1], t->session);
		pgarray_add_time(&col[2], t->last_us);
		pgarray_add_int(&col[3], t->events);
		return;
	}
	col += PEOPLE_STORE_EXTEND_PARAMS;
	pgarray_add_text(&col[0], h->site);
	pgarray_add_text(&col[1], t->session);
	pgarray_add_int(&col[2], h->person);
	pgarray_add_text(&col[3], h->anon);
	pgarray_add_bool(&col[4], t->client);
	pgarray_add_time(&col[5], t->started_us);
	pgarray_add_time(&col[6], t->last_us);
	pgarray_add_int(&col[7], t->events);
	pgarray_add_text(&col[8], text_at(text, h->pe->url));
	for (size_t i = 0; i < ENRICH_TEXTS; i++) {
		pgarray_add_text(&col[9 + i], text_at(text,
		    h->pe->landing[i]));
	}
	pgarray_add_bool(&col[9 + ENRICH_TEXTS], h->pe->bot);
	pgarray_add_text(&col[10 + ENRICH_TEXTS], h->src);
}

/* The touched sessions' rows, one per session: a client may name its
 * session after another event's id, and the batch must still stand (one
 * upsert cannot touch a row twice). The earliest row gives the start and
 * the landing; ends and counts add up. */
static void
render_sessions(struct people_batch *b)
{
	qsort(b->touched, b->n_touched, sizeof(*b->touched),
	    compare_touched);
	for (size_t i = 0; i < b->n_touched; i++) {
		struct touched t = b->touched[i];
		while (i + 1 < b->n_touched && strcmp(t.head->site,
		    b->touched[i + 1].head->site) == 0 && strcmp(t.session,
		    b->touched[i + 1].session) == 0) {
			const struct touched *next = &b->touched[++i];
			t.last_us = next->last_us > t.last_us ?
			    next->last_us : t.last_us;
			t.events += next->events;
		}
		session_row(b, &t);
		b->n_sessions++;
	}
}

/* Remembers the stream's latest session for the cache. */
static bool
set_latest(struct stream *s, const char *session, int64_t first_us,
    int64_t last_us, const char *src)
{
	people_fact_finish(&s->latest);
	s->latest = (struct people_fact){
		.first_us = first_us,
		.last_us = last_us,
		.session_id = strdup(session),
		.source_key = src != NULL ? strdup(src) : NULL,
	};
	s->has_latest = s->latest.session_id != NULL &&
	    (src == NULL || s->latest.source_key != NULL);
	return s->has_latest;
}

/* Starts t as the session of the piece headed by head: the stored one
 * (which it gives a landing only by being earlier), or a new one named
 * session. */
static void
touched_begin(struct touched *t, const struct stream *s, bool stored,
    const char *session, const struct ev *head)
{
	*t = (struct touched){ .session = session, .head = head,
	    .client = s->kind == 'c' };
	t->landing = !stored || head->pe->ts_us < s->stored.first_us;
	t->started_us = t->landing ? head->pe->ts_us : s->stored.first_us;
}

/* Keeps t for the store and remembers it as the stream's latest
 * session. */
static bool
touched_end(struct people_batch *b, struct stream *s,
    const struct touched *t, bool stored)
{
	b->touched[b->n_touched++] = *t;
	return set_latest(s, t->session, t->started_us,
	    stored && s->stored.last_us > t->last_us ? s->stored.last_us :
	    t->last_us, stored ? s->stored.source_key : t->head->src);
}

/* A client-given session: every event of the stream is in it. */
static bool
decide_client(struct people_batch *b, struct stream *s)
{
	struct touched t = { 0 };

	for (size_t i = 0; i < s->n; i++) {
		struct ev *e = &b->evs[b->order[s->first + i]];
		e->session = e->sid;
		if (e->person == 0) {
			continue;
		}
		if (t.head == NULL) {
			touched_begin(&t, s, s->has_stored, e->sid, e);
		}
		t.last_us = e->pe->ts_us;
		t.events++;
	}
	return t.head == NULL || touched_end(b, s, &t, s->has_stored);
}

/* Whether a piece of events starting with head continues the stored
 * session: within the timeout of it, and not announcing another source
 * (a late event joins regardless). */
static bool
continues_stored(const struct people_batch *b, const struct stream *s,
    const struct ev *head)
{
	int64_t ts = head->pe->ts_us;

	return s->has_stored &&
	    s->stored.last_us >= ts - b->timeout_us &&
	    s->stored.first_us <= ts + b->timeout_us &&
	    (head->src == NULL ||
	     streq_null(head->src, s->stored.source_key) ||
	     ts < s->stored.last_us);
}

/* A device's or a person's events, in time order, cut into pieces where
 * they are more than the timeout apart or where an event announces a
 * source other than the last one announced. The first piece may continue
 * the stored session; every other starts one, named after its first
 * event. */
static bool
decide_stream(struct people_batch *b, struct stream *s)
{
	struct touched t = { 0 };
	const char *announced = NULL;
	bool stored = false;

	for (size_t i = 0; i <= s->n; i++) {
		struct ev *e = i < s->n ? &b->evs[b->order[s->first + i]] :
		    NULL;
		const struct ev *prev = i > 0 ?
		    &b->evs[b->order[s->first + i - 1]] : NULL;
		bool gap = prev == NULL || (e != NULL &&
		    e->pe->ts_us - prev->pe->ts_us > b->timeout_us);
		bool starts = e == NULL || gap || (e->src != NULL &&
		    !streq_null(e->src, announced));

		if (starts && t.head != NULL &&
		    !touched_end(b, s, &t, stored)) {
			return false;
		}
		if (e == NULL) {
			break;
		}
		if (starts) {
			const char *name = s->stored.session_id;
			stored = prev == NULL && continues_stored(b, s, e);
			if (!stored) {
				char *id = strdup(e->pe->event_id);
				if (id == NULL) {
					return false;
				}
				b->names[b->n_names++] = id;
				name = id;
			}
			touched_begin(&t, s, stored, name, e);
		}
		if (starts || e->src != NULL) {
			announced = e->src;
		}
		e->session = t.session;
		t.last_us = e->pe->ts_us;
		t.events++;
	}
	return true;
}

/* First times: one row per event that may be a person's first of its
 * name; SQL keeps the earliest. The store's milestone columns: site_id,
 * person_id, name, first_at, first_event_id, first_session_id. */
static void
decide_milestones(struct people_batch *b)
{
	struct pgarray *col = b->store + PEOPLE_STORE_EXTEND_PARAMS +
	    PEOPLE_STORE_LAND_PARAMS;

	for (size_t i = 0; i < b->n_evs; i++) {
		const struct ev *e = &b->evs[i];
		struct people_fact f = { 0 };

		if (!e->pe->milestone || e->person == 0 || e->name == NULL) {
			continue;
		}
		if (cache_get(b, key_milestone(&b->key, e->site, e->person,
		    e->name), &f)) {
			people_fact_finish(&f);
			if (f.first_us <= e->pe->ts_us) {
				continue;
			}
		}
		pgarray_add_text(&col[0], e->site);
		pgarray_add_int(&col[1], e->person);
		pgarray_add_text(&col[2], e->name);
		pgarray_add_time(&col[3], e->pe->ts_us);
		pgarray_add_text(&col[4], e->pe->event_id);
		pgarray_add_text(&col[5], e->session);
		b->n_milestones++;
	}
}

/* Each event's row, completed with its session and person. */
static void
render_events(struct people_batch *b)
{
	for (size_t i = 0; i < b->n_evs; i++) {
		const struct ev *e = &b->evs[i];
		strbuf_append(&b->events, e->rows + e->row_start,
		    e->pe->row_end - e->row_start);
		strbuf_append_char(&b->events, '\t');
		copy_row_text(&b->events, e->session);
		if (e->person != 0) {
			strbuf_appendf(&b->events, "\t%" PRId64, e->person);
		} else {
			strbuf_append_str(&b->events, "\t\\N");
		}
		if (b->dedup) {
			strbuf_appendf(&b->events, "\t%zu\t", i);
			copy_row_text(&b->events, text_at(e->text,
			    e->pe->claim));
			strbuf_append_char(&b->events, '\t');
			copy_row_text(&b->events, text_at(e->text,
			    e->pe->request_id));
			strbuf_appendf(&b->events, "\t%zu", e->pe->index);
		}
		strbuf_append_char(&b->events, '\n');
	}
}

bool
people_batch_decide(struct people_batch *b)
{
	for (size_t i = 0; i < b->n_streams; i++) {
		struct stream *s = &b->streams[i];
		bool ok = true;
		switch (s->kind) {
		case 'c':
			ok = decide_client(b, s);
			break;
		case 'a':
		case 'u':
			ok = decide_stream(b, s);
			break;
		default:
			break;
		}
		if (!ok) {
			return false;
		}
	}
	render_sessions(b);
	decide_milestones(b);
	render_events(b);
	return !strbuf_failed(&b->events) && !strbuf_failed(&b->key);
}

const struct strbuf *
people_batch_events(const struct people_batch *b)
{
	return &b->events;
}

bool
people_batch_needs_store(const struct people_batch *b)
{
	return b->n_sessions > 0 || b->n_milestones > 0;
}

bool
people_batch_store_params(struct people_batch *b,
    const char *values[PEOPLE_STORE_PARAMS])
{
	return params_of(b->store, PEOPLE_STORE_PARAMS, values);
}

/* ----------------------------------------------------------- committing */

void
people_batch_committed(struct people_batch *b)
{
	/* A merge moved people's ids, sessions and milestones: what the
	 * cache says about any of them may be stale. */
	if (b->merged > 0) {
		people_cache_clear(b->cache);
	}
	for (size_t i = 0; i < b->n_evs; i++) {
		const struct ev *e = &b->evs[i];
		struct people_fact f = { 0 };
		if (e->person == 0) {
			continue;
		}
		/* Ids the lookup answered for; what came from the cache keeps
		 * the time it was checked. */
		/* A refused unverified claim's person is its device's, not
		 * the user id's. */
		if (e->lookup && e->user != NULL &&
		    e->pe->trust != EVENT_TRUST_UNVERIFIED) {
			f.person = e->person;
			cache_put(b, key_identity(&b->key, 'u', e->site,
			    e->user), &f);
		}
		if (e->lookup && e->anon != NULL && e->anon_person != 0) {
			f.person = e->anon_person;
			cache_put(b, key_identity(&b->key, 'a', e->site,
			    e->anon), &f);
		}
		if (e->pe->milestone && e->name != NULL) {
			struct people_fact had = { 0 };
			key_milestone(&b->key, e->site, e->person, e->name);
			if (cache_get(b, &b->key, &had)) {
				people_fact_finish(&had);
				if (had.first_us <= e->pe->ts_us) {
					continue;
				}
			}
			f = (struct people_fact){ .first_us = e->pe->ts_us };
			cache_put(b, &b->key, &f);
		}
	}
	for (size_t i = 0; i < b->n_streams; i++) {
		struct stream *s = &b->streams[i];
		const struct ev *first = &b->evs[b->order[s->first]];
		if (s->has_latest && s->kind != 'u') {
			s->latest.checked_ms = s->checked_ms;
			cache_put(b, key_stream(&b->key, s->kind, first->site,
			    stream_id(first)), &s->latest);
		}
	}
}
