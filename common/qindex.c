/* qindex.c - the query index's store: dictionaries, people, visits and
 * events (qindex.h).
 *
 * Events live in two places. The base is one array sorted by (person
 * slot, time): each slot's events are a run in it, so that a person's
 * timeline is usually a slice that needs no copy. Events added since the
 * last compaction are pending: an array with, per slot, a chain through
 * it. A scan merges both; qindex_compact rewrites the base.
 *
 * Every string (names, devices, visits' sources) is interned once;
 * visits point at a source tuple. An event is 12 bytes: its time and
 * name in one word, and a link. The link is its visit's slot + 1 when the
 * event has the (device, browser) pair its visit's first event had (a
 * visit is one device's, so nearly always), else an alias: a (visit,
 * pair) record shared by the events that have both. Hash tables are keyed
 * with libsodium's SipHash (crypto_shorthash): session ids come from
 * clients. */
#include "common/qindex.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define NAMES_MAX QINDEX_NAMES_MAX
#define AGENTS_MAX UINT16_MAX	/* ids below it: AGENT_UNSET is not one */
#define AGENT_UNSET UINT16_MAX
#define LINK_ALIAS (UINT32_C(1) << 31)
#define TS_LIMIT (INT64_C(1) << (64 - QINDEX_NAME_BITS))

/* ------------------------------------------------------------ memory */

struct qindex;
static bool grow(struct qindex *ix, void *ptr, size_t *cap, size_t elem,
    size_t need);

/* Open addressing over ids (1-based; 0 marks an empty slot). The owner
 * hashes and compares: the table keeps no keys. */
struct idtab {
	uint32_t *slot;
	size_t cap;		/* a power of two, or 0 */
	size_t used;
};

typedef uint64_t (*id_hash_fn)(const struct qindex *ix, uint32_t id);

/* The slot holding the id whose key hashes to h and eq accepts, or the
 * empty slot where it would go. */
static uint32_t *
idtab_find(const struct idtab *t, uint64_t h,
    bool (*eq)(const struct qindex *, uint32_t, const void *),
    const struct qindex *ix, const void *key)
{
	size_t i = (size_t)(h % t->cap);

	while (t->slot[i] != 0 && !eq(ix, t->slot[i], key)) {
		i = i + 1 == t->cap ? 0 : i + 1;
	}
	return &t->slot[i];
}

/* Rehashes t into cap slots (at least used + 1). */
static bool
idtab_rehash(struct qindex *ix, struct idtab *t, id_hash_fn hash, size_t cap)
{
	struct idtab next = { NULL, 0, t->used };

	if (!grow(ix, &next.slot, &next.cap, sizeof(uint32_t), cap)) {
		return false;
	}
	memset(next.slot, 0, cap * sizeof(uint32_t));
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slot[i] != 0) {
			size_t j = (size_t)(hash(ix, t->slot[i]) % cap);
			while (next.slot[j] != 0) {
				j = j + 1 == cap ? 0 : j + 1;
			}
			next.slot[j] = t->slot[i];
		}
	}
	grow(ix, &t->slot, &t->cap, sizeof(uint32_t), 0);
	*t = next;
	return true;
}

/* Room for one more id: doubles at three quarters full, where linear
 * probing still finds a key in a few steps. Capacities are not powers of
 * two (slots by remainder), so that a table fitted to its ids
 * (idtab_fit) is not up to twice the size it needs. */
static bool
idtab_reserve(struct qindex *ix, struct idtab *t, id_hash_fn hash)
{
	if (t->cap != 0 && (t->used + 1) * 4 <= t->cap * 3) {
		return true;
	}
	return idtab_rehash(ix, t, hash, t->cap == 0 ? 64 : 2 * t->cap);
}

/* Shrinks t to three quarters full, once the bulk of its ids is in (the
 * load): the next id doubles it again. */
static void
idtab_fit(struct qindex *ix, struct idtab *t, id_hash_fn hash)
{
	size_t cap = t->used + t->used / 3 + 1;

	if (cap >= 64 && cap < t->cap) {
		idtab_rehash(ix, t, hash, cap);	/* as it was if it cannot */
	}
}

/* Interned strings: id i (from 1) is text + off[i - 1]. */
struct sdict {
	char *text;
	size_t text_n, text_cap;
	uint32_t *off;
	size_t n, off_cap;
	struct idtab tab;
	id_hash_fn hash;
};

/* A slot's stored person id is in person_ids, apart: no padding. */
struct person {
	uint32_t root;		/* the slot whose events these are */
	uint32_t next_member;	/* the root's members, root first */
	uint32_t base_off, base_len;
	uint32_t pending;	/* head of the pending chain */
};

/* 16 bytes: the bot flag rides in the source's top bit. */
struct visit {
	int64_t started_at;
	uint32_t person;	/* slot of the stored person_id */
	uint32_t source;	/* 1-based into sources; 0: not stored */
};
#define VISIT_BOT (UINT32_C(1) << 31)
#define VISIT_SOURCE(v) ((v)->source & ~VISIT_BOT)

struct agent {
	uint32_t device, browser;	/* string ids */
};

/* An event's visit and agent when they are not its visit's first. */
struct alias {
	uint32_t visit;		/* slot + 1; 0: no session_id */
	uint32_t agent;
};

struct name {
	uint32_t text;		/* string id */
	enum qindex_kind kind;
	bool macro;
};

struct qindex {
	size_t bytes;
	struct qindex_budget *budget;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];

	struct sdict strings;		/* names and dimension values */
	struct sdict session_ids;	/* id i is visit i - 1 */

	struct name *names;
	size_t n_names, names_cap;
	struct idtab name_tab;

	struct agent *agents;
	size_t n_agents, agents_cap;
	struct idtab agent_tab;

	uint32_t (*sources)[QINDEX_VISIT_DIMS];
	size_t n_sources, sources_cap;
	struct idtab source_tab;

	struct visit *visits;
	size_t n_visits, visits_cap;
	uint16_t *visit_agent;		/* its first event's; AGENT_UNSET */
	size_t visit_agent_cap;

	struct alias *aliases;
	size_t n_aliases, aliases_cap;
	struct idtab alias_tab;

	struct person *people;
	size_t n_people, people_cap;
	int64_t *person_ids;
	size_t person_ids_cap;
	struct idtab person_tab;

	struct qindex_event *base;
	size_t base_n, base_cap;
	struct qindex_event *pend;
	uint32_t *pend_next;
	size_t pend_n, pend_cap, pend_next_cap;

	struct qindex_conversion *convs;
	size_t n_convs, convs_cap;

	size_t held;		/* events not forgotten */
};

/* Resizes *ptr to need elements (0 frees it), counting the bytes against
 * the limit; false, leaving it as it was, past the limit or out of
 * memory. Capacities grow by half again, so appends are amortised. */
static bool
grow(struct qindex *ix, void *ptr, size_t *cap, size_t elem, size_t need)
{
	void **p = ptr;
	size_t want = need;
	void *q;

	if (need != 0 && need <= *cap) {
		return true;
	}
	if (need != 0 && *cap != 0 && want < *cap + *cap / 2) {
		want = *cap + *cap / 2;
	}
	if (need == 0) {
		free(*p);
		ix->bytes -= *cap * elem;
		ix->budget->used -= *cap * elem;
		*p = NULL;
		*cap = 0;
		return true;
	}
	if (want > SIZE_MAX / elem || (ix->budget->max != 0 &&
	    ix->budget->used - *cap * elem + want * elem > ix->budget->max)) {
		return false;
	}
	if ((q = realloc(*p, want * elem)) == NULL) {
		return false;
	}
	ix->bytes = ix->bytes - *cap * elem + want * elem;
	ix->budget->used = ix->budget->used - *cap * elem + want * elem;
	*p = q;
	*cap = want;
	return true;
}

/* Gives back the room of *ptr beyond n elements (none if n is 0). */
static void
shrink(struct qindex *ix, void *ptr, size_t *cap, size_t elem, size_t n)
{
	void **p = ptr;
	void *q;

	if (n == 0 || n >= *cap || (q = realloc(*p, n * elem)) == NULL) {
		return;
	}
	ix->bytes -= (*cap - n) * elem;
	ix->budget->used -= (*cap - n) * elem;
	*p = q;
	*cap = n;
}

static uint64_t
hash_bytes(const struct qindex *ix, const void *data, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, data, len, ix->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* Person ids come from a sequence, not from clients: a mix will do. */
static uint64_t
hash_int(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	return x ^ (x >> 33);
}

/* ----------------------------------------------------------- strings */

static const char *
sdict_text(const struct sdict *d, uint32_t id)
{
	return id == 0 ? NULL : d->text + d->off[id - 1];
}

static uint64_t
strings_hash(const struct qindex *ix, uint32_t id)
{
	const char *s = sdict_text(&ix->strings, id);
	return hash_bytes(ix, s, strlen(s));
}

static uint64_t
session_ids_hash(const struct qindex *ix, uint32_t id)
{
	const char *s = sdict_text(&ix->session_ids, id);
	return hash_bytes(ix, s, strlen(s));
}

struct text_key {
	const struct sdict *dict;
	const char *s;
};

static bool
text_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	const struct text_key *k = key;

	(void)ix;
	return strcmp(sdict_text(k->dict, id), k->s) == 0;
}

/* The id of s in d (NULL: 0), added if add; 0 with *st set when it
 * cannot be. */
static uint32_t
sdict_id(struct qindex *ix, struct sdict *d, const char *s, bool add,
    enum qindex_status *st)
{
	struct text_key key = { d, s };
	size_t len;
	uint32_t *slot;

	if (s == NULL) {
		return 0;
	}
	len = strlen(s);
	if (d->tab.cap == 0) {
		if (!add) {
			return 0;
		}
		if (!idtab_reserve(ix, &d->tab, d->hash)) {
			*st = QINDEX_FULL;
			return 0;
		}
	}
	slot = idtab_find(&d->tab, hash_bytes(ix, s, len), text_eq, ix, &key);
	if (*slot != 0 || !add) {
		return *slot;
	}
	if (d->n >= NONE - 1 || d->text_n + len + 1 > UINT32_MAX ||
	    !grow(ix, &d->text, &d->text_cap, 1, d->text_n + len + 1) ||
	    !grow(ix, &d->off, &d->off_cap, sizeof(uint32_t), d->n + 1)) {
		*st = QINDEX_FULL;
		return 0;
	}
	memcpy(d->text + d->text_n, s, len + 1);
	d->off[d->n++] = (uint32_t)d->text_n;
	d->text_n += len + 1;
	if (!idtab_reserve(ix, &d->tab, d->hash)) {
		d->n--;
		d->text_n -= len + 1;
		*st = QINDEX_FULL;
		return 0;
	}
	/* The table may have moved: find the empty slot again. */
	*idtab_find(&d->tab, hash_bytes(ix, s, len), text_eq, ix, &key) =
	    (uint32_t)d->n;
	d->tab.used++;
	return (uint32_t)d->n;
}

/* --------------------------------------------- names, agents, sources */

static uint64_t
name_hash(const struct qindex *ix, uint32_t id)
{
	const struct name *n = &ix->names[id - 1];
	return hash_int(((uint64_t)n->text << 2) | (uint64_t)n->kind << 1 |
	    (uint64_t)n->macro);
}

static bool
name_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	const struct name *a = &ix->names[id - 1], *b = key;
	return a->text == b->text && a->kind == b->kind && a->macro == b->macro;
}

static uint64_t
agent_hash(const struct qindex *ix, uint32_t id)
{
	const struct agent *a = &ix->agents[id - 1];
	return hash_int(((uint64_t)a->device << 32) | a->browser);
}

static bool
agent_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	const struct agent *a = &ix->agents[id - 1], *b = key;
	return a->device == b->device && a->browser == b->browser;
}

static uint64_t
source_hash(const struct qindex *ix, uint32_t id)
{
	return hash_bytes(ix, ix->sources[id - 1], sizeof(ix->sources[0]));
}

static bool
source_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	return memcmp(ix->sources[id - 1], key, sizeof(ix->sources[0])) == 0;
}

/* Finds or adds the element of an array of records (size elem) that tab
 * indexes: its 1-based id, or 0 with *st set. */
static uint32_t
record_id(struct qindex *ix, struct idtab *tab, id_hash_fn hash,
    bool (*eq)(const struct qindex *, uint32_t, const void *),
    void *records, size_t *n, size_t *cap, size_t elem, size_t max,
    const void *key, enum qindex_status *st)
{
	void **arr = records;
	uint32_t *slot;
	uint64_t h;

	if (!idtab_reserve(ix, tab, hash) || !grow(ix, arr, cap, elem,
	    *n + 1)) {
		*st = QINDEX_FULL;
		return 0;
	}
	/* Hashed as the records are: the key goes after the last one. */
	memcpy((char *)*arr + *n * elem, key, elem);
	h = hash(ix, (uint32_t)(*n + 1));
	slot = idtab_find(tab, h, eq, ix, key);
	if (*slot != 0) {
		return *slot;
	}
	if (*n >= max) {
		*st = QINDEX_TOO_MANY;
		return 0;
	}
	*slot = (uint32_t)++*n;
	tab->used++;
	return *slot;
}

static uint16_t
name_id(struct qindex *ix, const char *text, const char *kind,
    enum qindex_status *st)
{
	static const char *const planned[] = { "milestone", "macro",
		"secondary" };
	struct name key = { sdict_id(ix, &ix->strings, text, true, st),
		QINDEX_KIND_OTHER, kind != NULL && strcmp(kind, "macro") == 0 };

	for (size_t i = 0; kind != NULL && i < 3; i++) {
		if (strcmp(kind, planned[i]) == 0) {
			key.kind = QINDEX_KIND_PLANNED;
		}
	}
	if (key.text == 0) {
		return 0;
	}
	return (uint16_t)(record_id(ix, &ix->name_tab, name_hash, name_eq,
	    &ix->names, &ix->n_names, &ix->names_cap, sizeof(key), NAMES_MAX,
	    &key, st) - 1);
}

/* ------------------------------------------------------------ people */

static bool
person_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	return ix->person_ids[id - 1] == *(const int64_t *)key;
}

static uint64_t
person_hash(const struct qindex *ix, uint32_t id)
{
	return hash_int((uint64_t)ix->person_ids[id - 1]);
}

static uint32_t
person_find(const struct qindex *ix, int64_t id)
{
	if (ix->person_tab.cap == 0) {
		return NONE;
	}
	uint32_t found = *idtab_find(&ix->person_tab, hash_int((uint64_t)id),
	    person_eq, ix, &id);
	return found == 0 ? NONE : found - 1;
}

/* The slot of person id, added if new; NONE when it cannot be. */
static uint32_t
person_slot(struct qindex *ix, int64_t id)
{
	uint32_t slot = person_find(ix, id);

	if (slot != NONE) {
		return slot;
	}
	if (ix->n_people >= NONE - 1 ||
	    !grow(ix, &ix->people, &ix->people_cap, sizeof(struct person),
	    ix->n_people + 1) ||
	    !grow(ix, &ix->person_ids, &ix->person_ids_cap, sizeof(int64_t),
	    ix->n_people + 1) ||
	    !idtab_reserve(ix, &ix->person_tab, person_hash)) {
		return NONE;
	}
	slot = (uint32_t)ix->n_people++;
	ix->people[slot] = (struct person){ slot, NONE, 0, 0, NONE };
	ix->person_ids[slot] = id;
	*idtab_find(&ix->person_tab, hash_int((uint64_t)id), person_eq, ix,
	    &id) = slot + 1;
	ix->person_tab.used++;
	return slot;
}

/* ------------------------------------------------------------ visits */

/* The visit slot of session_id, added (not stored yet) if new. */
static uint32_t
visit_slot(struct qindex *ix, const char *session_id, enum qindex_status *st)
{
	uint32_t id = sdict_id(ix, &ix->session_ids, session_id, true, st);

	if (id == 0) {
		return NONE;
	}
	if (id > ix->n_visits) {
		if (id >= LINK_ALIAS || !grow(ix, &ix->visits, &ix->visits_cap,
		    sizeof(struct visit), id) || !grow(ix, &ix->visit_agent,
		    &ix->visit_agent_cap, sizeof(uint16_t), id)) {
			*st = QINDEX_FULL;
			return NONE;
		}
		memset(&ix->visits[ix->n_visits], 0, (id - ix->n_visits) *
		    sizeof(struct visit));
		memset(&ix->visit_agent[ix->n_visits], 0xff, (id - ix->n_visits) *
		    sizeof(uint16_t));
		ix->n_visits = id;
	}
	return id - 1;
}

enum qindex_status
qindex_add_visit(struct qindex *ix, const struct qindex_visit_row *row)
{
	enum qindex_status st = QINDEX_OK;
	uint32_t tuple[QINDEX_VISIT_DIMS];
	uint32_t v = visit_slot(ix, row->session_id, &st), person, source;

	if (v == NONE) {
		return st == QINDEX_OK ? QINDEX_FULL : st;
	}
	for (int d = 0; d < QINDEX_VISIT_DIMS; d++) {
		tuple[d] = sdict_id(ix, &ix->strings, row->dims[d], true, &st);
	}
	source = record_id(ix, &ix->source_tab, source_hash, source_eq,
	    &ix->sources, &ix->n_sources, &ix->sources_cap, sizeof(tuple),
	    VISIT_BOT - 1, tuple, &st);
	person = person_slot(ix, row->person_id);
	if (st != QINDEX_OK || source == 0 || person == NONE) {
		return st == QINDEX_OK ? QINDEX_FULL : st;
	}
	ix->visits[v] = (struct visit){ row->started_at, person,
		source | (row->bot ? VISIT_BOT : 0) };
	return QINDEX_OK;
}

/* ------------------------------------------------------------ events */

static uint16_t
agent_id(struct qindex *ix, const char *device, const char *browser,
    enum qindex_status *st)
{
	struct agent key = { sdict_id(ix, &ix->strings, device, true, st),
		sdict_id(ix, &ix->strings, browser, true, st) };

	if (*st != QINDEX_OK) {
		return 0;
	}
	return (uint16_t)(record_id(ix, &ix->agent_tab, agent_hash, agent_eq,
	    &ix->agents, &ix->n_agents, &ix->agents_cap, sizeof(key),
	    AGENTS_MAX, &key, st) - 1);
}

static uint64_t
alias_hash(const struct qindex *ix, uint32_t id)
{
	const struct alias *a = &ix->aliases[id - 1];
	return hash_int(((uint64_t)a->visit << 32) | a->agent);
}

static bool
alias_eq(const struct qindex *ix, uint32_t id, const void *key)
{
	const struct alias *a = &ix->aliases[id - 1], *b = key;
	return a->visit == b->visit && a->agent == b->agent;
}

/* The link of an event of visit (slot + 1; 0: none) and agent. */
static uint32_t
event_link(struct qindex *ix, uint32_t visit, uint16_t agent,
    enum qindex_status *st)
{
	struct alias key = { visit, agent };
	uint32_t id;

	if (visit != 0) {
		uint16_t *first = &ix->visit_agent[visit - 1];
		if (*first == AGENT_UNSET) {
			*first = agent;
		}
		if (*first == agent) {
			return visit;
		}
	}
	id = record_id(ix, &ix->alias_tab, alias_hash, alias_eq, &ix->aliases,
	    &ix->n_aliases, &ix->aliases_cap, sizeof(key), LINK_ALIAS - 1, &key,
	    st);
	return LINK_ALIAS | (id - 1);
}

static uint32_t
link_visit(const struct qindex *ix, uint32_t link)
{
	return link & LINK_ALIAS ? ix->aliases[link & ~LINK_ALIAS].visit : link;
}

static uint16_t
link_agent(const struct qindex *ix, uint32_t link)
{
	return link & LINK_ALIAS ?
	    (uint16_t)ix->aliases[link & ~LINK_ALIAS].agent :
	    ix->visit_agent[link - 1];
}

enum qindex_status
qindex_add_event(struct qindex *ix, const struct qindex_event_row *row)
{
	enum qindex_status st = QINDEX_OK;
	struct qindex_event ev;
	uint32_t person, visit = 0;
	uint16_t name, agent;

	if (row->ts < 0 || row->ts >= TS_LIMIT) {
		return QINDEX_OUT_OF_RANGE;
	}
	name = name_id(ix, row->name, row->kind, &st);
	agent = agent_id(ix, row->device, row->browser, &st);
	if (row->session_id != NULL && st == QINDEX_OK) {
		visit = visit_slot(ix, row->session_id, &st) + 1;
	}
	ev.key = (uint64_t)row->ts << QINDEX_NAME_BITS | name;
	ev.link = st == QINDEX_OK ? event_link(ix, visit, agent, &st) : 0;
	person = person_slot(ix, row->person_id);
	if (st != QINDEX_OK || person == NONE ||
	    !grow(ix, &ix->pend, &ix->pend_cap, sizeof(ev), ix->pend_n + 1) ||
	    !grow(ix, &ix->pend_next, &ix->pend_next_cap, sizeof(uint32_t),
	    ix->pend_n + 1)) {
		return st == QINDEX_OK ? QINDEX_FULL : st;
	}
	if (ix->names[name].macro) {
		struct qindex_conversion c = { row->ts,
			row->has_revenue ? row->revenue : 0, person,
			sdict_id(ix, &ix->strings, row->currency, true, &st),
			name, { 0 } };
		if (st != QINDEX_OK || !grow(ix, &ix->convs, &ix->convs_cap,
		    sizeof(c), ix->n_convs + 1)) {
			return st == QINDEX_OK ? QINDEX_FULL : st;
		}
		if (row->event_id != NULL) {
			memcpy(c.event_id, row->event_id, sizeof(c.event_id));
		}
		ix->convs[ix->n_convs++] = c;
	}
	ix->pend[ix->pend_n] = ev;
	ix->pend_next[ix->pend_n] = ix->people[person].pending;
	ix->people[person].pending = (uint32_t)ix->pend_n++;
	ix->held++;
	return QINDEX_OK;
}

enum qindex_status
qindex_merge(struct qindex *ix, int64_t from_person, int64_t into_person)
{
	uint32_t from = person_slot(ix, from_person);
	uint32_t into = person_slot(ix, into_person), rf, ri, m, tail;

	if (from == NONE || into == NONE) {
		return QINDEX_FULL;
	}
	rf = ix->people[from].root;
	ri = ix->people[into].root;
	if (rf == ri) {
		return QINDEX_OK;
	}
	for (m = rf; m != NONE; m = ix->people[m].next_member) {
		ix->people[m].root = ri;
	}
	for (tail = ri; ix->people[tail].next_member != NONE;
	    tail = ix->people[tail].next_member) {
	}
	ix->people[tail].next_member = rf;
	return QINDEX_OK;
}

/* ---------------------------------------------------------- forgetting */

/* Forgets slot's events, base and pending. */
static void
forget_events_of(struct qindex *ix, uint32_t slot)
{
	struct person *p = &ix->people[slot];

	ix->held -= p->base_len;
	p->base_len = 0;
	for (uint32_t i = p->pending; i != NONE; i = ix->pend_next[i]) {
		ix->held--;
	}
	p->pending = NONE;
}

/* Whether slot is one of the people being forgotten: by its mark, or
 * without marks (out of memory) by a look-up. */
static bool
slot_gone(const struct qindex *ix, const bool *gone, uint32_t slot,
    const int64_t *people, size_t n)
{
	if (gone != NULL) {
		return gone[slot];
	}
	for (size_t i = 0; i < n; i++) {
		if (ix->person_ids[slot] == people[i]) {
			return true;
		}
	}
	return false;
}

void
qindex_forget_people(struct qindex *ix, const int64_t *people, size_t n)
{
	bool *gone;
	size_t k = 0;

	if (n == 0) {
		return;
	}
	gone = calloc(ix->n_people + 1, sizeof(bool));
	for (size_t i = 0; i < n; i++) {
		uint32_t slot = person_find(ix, people[i]);
		if (slot != NONE) {
			forget_events_of(ix, slot);
			if (gone != NULL) {
				gone[slot] = true;
			}
		}
	}
	for (size_t i = 0; i < ix->n_convs; i++) {
		if (!slot_gone(ix, gone, ix->convs[i].person, people, n)) {
			ix->convs[k++] = ix->convs[i];
		}
	}
	ix->n_convs = k;
	free(gone);
}

void
qindex_forget_visits(struct qindex *ix, const char *const *ids, size_t n)
{
	enum qindex_status st = QINDEX_OK;

	for (size_t i = 0; i < n; i++) {
		uint32_t id = sdict_id(ix, &ix->session_ids, ids[i], false, &st);
		if (id != 0 && id <= ix->n_visits) {
			ix->visits[id - 1].source = 0;
		}
	}
}

/* The first index of ev[0..n) (in time order) whose time is at least
 * ts; n if none. */
static size_t
first_at(const struct qindex_event *ev, size_t n, int64_t ts)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (qindex_event_ts(&ev[mid]) < ts) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

void
qindex_forget_events_before(struct qindex *ix, int64_t ts)
{
	size_t k = 0;

	for (size_t i = 0; i < ix->n_convs; i++) {
		if (ix->convs[i].ts >= ts) {
			ix->convs[k++] = ix->convs[i];
		}
	}
	ix->n_convs = k;
	for (size_t s = 0; s < ix->n_people; s++) {
		struct person *p = &ix->people[s];
		size_t cut = first_at(ix->base + p->base_off, p->base_len, ts);
		uint32_t *link = &p->pending;
		p->base_off += (uint32_t)cut;
		p->base_len -= (uint32_t)cut;
		ix->held -= cut;
		while (*link != NONE) {
			if (qindex_event_ts(&ix->pend[*link]) < ts) {
				*link = ix->pend_next[*link];
				ix->held--;
			} else {
				link = &ix->pend_next[*link];
			}
		}
	}
}

void
qindex_forget_visits_started_before(struct qindex *ix, int64_t ts)
{
	for (size_t v = 0; v < ix->n_visits; v++) {
		if (ix->visits[v].started_at < ts) {
			ix->visits[v].source = 0;
		}
	}
}

/* --------------------------------------------------------- compaction */

/* By time (and name: a tie's order is none the algorithms rely on). */
static int
compare_ts(const void *pa, const void *pb)
{
	const struct qindex_event *a = pa, *b = pb;

	return (a->key > b->key) - (a->key < b->key);
}

enum qindex_status
qindex_compact(struct qindex *ix)
{
	struct qindex_event *next = NULL;
	size_t cap = 0, n = 0;

	if (ix->held > UINT32_MAX) {
		return QINDEX_FULL;
	}
	if (ix->held > 0 && !grow(ix, &next, &cap, sizeof(*next), ix->held)) {
		return QINDEX_FULL;
	}
	for (size_t s = 0; s < ix->n_people; s++) {
		struct person *p = &ix->people[s];
		size_t start = n;
		if (p->base_len > 0) {
			memcpy(next + n, ix->base + p->base_off,
			    p->base_len * sizeof(*next));
			n += p->base_len;
		}
		for (uint32_t i = p->pending; i != NONE; i = ix->pend_next[i]) {
			next[n++] = ix->pend[i];
		}
		if (p->pending != NONE) {
			qsort(next + start, n - start, sizeof(*next), compare_ts);
		}
		p->base_off = (uint32_t)start;
		p->base_len = (uint32_t)(n - start);
		p->pending = NONE;
	}
	grow(ix, &ix->base, &ix->base_cap, sizeof(*next), 0);
	grow(ix, &ix->pend, &ix->pend_cap, sizeof(*ix->pend), 0);
	grow(ix, &ix->pend_next, &ix->pend_next_cap, sizeof(uint32_t), 0);
	ix->pend_n = 0;
	ix->base = next;
	ix->base_cap = cap;
	ix->base_n = n;
	/* What grew by half again gives its slack back. */
	shrink(ix, &ix->visits, &ix->visits_cap, sizeof(*ix->visits),
	    ix->n_visits);
	shrink(ix, &ix->visit_agent, &ix->visit_agent_cap, sizeof(uint16_t),
	    ix->n_visits);
	shrink(ix, &ix->people, &ix->people_cap, sizeof(*ix->people),
	    ix->n_people);
	shrink(ix, &ix->person_ids, &ix->person_ids_cap, sizeof(int64_t),
	    ix->n_people);
	shrink(ix, &ix->convs, &ix->convs_cap, sizeof(*ix->convs), ix->n_convs);
	shrink(ix, &ix->session_ids.text, &ix->session_ids.text_cap, 1,
	    ix->session_ids.text_n);
	shrink(ix, &ix->session_ids.off, &ix->session_ids.off_cap,
	    sizeof(uint32_t), ix->session_ids.n);
	shrink(ix, &ix->strings.text, &ix->strings.text_cap, 1,
	    ix->strings.text_n);
	shrink(ix, &ix->strings.off, &ix->strings.off_cap, sizeof(uint32_t),
	    ix->strings.n);
	return QINDEX_OK;
}

void
qindex_fit(struct qindex *ix)
{
	idtab_fit(ix, &ix->person_tab, person_hash);
	idtab_fit(ix, &ix->session_ids.tab, session_ids_hash);
}

/* --------------------------------------------------------- lifecycle */

struct qindex *
qindex_new(struct qindex_budget *budget)
{
	struct qindex *ix;

	if (sodium_init() < 0 || (ix = calloc(1, sizeof(*ix))) == NULL) {
		return NULL;
	}
	ix->bytes = sizeof(*ix);
	ix->budget = budget;
	budget->used += sizeof(*ix);
	ix->strings.hash = strings_hash;
	ix->session_ids.hash = session_ids_hash;
	crypto_shorthash_keygen(ix->hash_key);
	return ix;
}

static void
sdict_free(struct qindex *ix, struct sdict *d)
{
	grow(ix, &d->text, &d->text_cap, 1, 0);
	grow(ix, &d->off, &d->off_cap, sizeof(uint32_t), 0);
	grow(ix, &d->tab.slot, &d->tab.cap, sizeof(uint32_t), 0);
}

void
qindex_free(struct qindex *ix)
{
	if (ix == NULL) {
		return;
	}
	sdict_free(ix, &ix->strings);
	sdict_free(ix, &ix->session_ids);
	grow(ix, &ix->names, &ix->names_cap, sizeof(*ix->names), 0);
	grow(ix, &ix->name_tab.slot, &ix->name_tab.cap, sizeof(uint32_t), 0);
	grow(ix, &ix->agents, &ix->agents_cap, sizeof(*ix->agents), 0);
	grow(ix, &ix->agent_tab.slot, &ix->agent_tab.cap, sizeof(uint32_t), 0);
	grow(ix, &ix->sources, &ix->sources_cap, sizeof(*ix->sources), 0);
	grow(ix, &ix->source_tab.slot, &ix->source_tab.cap, sizeof(uint32_t),
	    0);
	grow(ix, &ix->visits, &ix->visits_cap, sizeof(*ix->visits), 0);
	grow(ix, &ix->visit_agent, &ix->visit_agent_cap, sizeof(uint16_t), 0);
	grow(ix, &ix->aliases, &ix->aliases_cap, sizeof(*ix->aliases), 0);
	grow(ix, &ix->alias_tab.slot, &ix->alias_tab.cap, sizeof(uint32_t), 0);
	grow(ix, &ix->people, &ix->people_cap, sizeof(*ix->people), 0);
	grow(ix, &ix->person_ids, &ix->person_ids_cap, sizeof(int64_t), 0);
	grow(ix, &ix->person_tab.slot, &ix->person_tab.cap, sizeof(uint32_t),
	    0);
	grow(ix, &ix->base, &ix->base_cap, sizeof(*ix->base), 0);
	grow(ix, &ix->pend, &ix->pend_cap, sizeof(*ix->pend), 0);
	grow(ix, &ix->pend_next, &ix->pend_next_cap, sizeof(uint32_t), 0);
	grow(ix, &ix->convs, &ix->convs_cap, sizeof(*ix->convs), 0);
	ix->budget->used -= sizeof(*ix);
	free(ix);
}

void
qindex_stats(const struct qindex *ix, struct qindex_stats *out)
{
	out->events = ix->held;
	out->pending = ix->pend_n;
	out->people = ix->n_people;
	out->visits = ix->n_visits;
	out->bytes = ix->bytes;
}

/* ----------------------------------------------------------- reading */

size_t
qindex_name_count(const struct qindex *ix)
{
	return ix->n_names;
}

const char *
qindex_name_text(const struct qindex *ix, uint16_t id)
{
	return sdict_text(&ix->strings, ix->names[id].text);
}

enum qindex_kind
qindex_name_kind(const struct qindex *ix, uint16_t id)
{
	return ix->names[id].kind;
}

bool
qindex_name_macro(const struct qindex *ix, uint16_t id)
{
	return ix->names[id].macro;
}

int64_t
qindex_person_id(const struct qindex *ix, uint32_t slot)
{
	return ix->person_ids[slot];
}

uint32_t
qindex_person_root(const struct qindex *ix, uint32_t slot)
{
	return ix->people[slot].root;
}

void
qindex_visit(const struct qindex *ix, uint32_t v,
    struct qindex_visit_info *out)
{
	const struct visit *vi = &ix->visits[v];

	memset(out, 0, sizeof(*out));
	out->session_id = sdict_text(&ix->session_ids, v + 1);
	if (vi->source == 0) {
		return;
	}
	out->stored = true;
	out->bot = (vi->source & VISIT_BOT) != 0;
	out->started_at = vi->started_at;
	out->person = vi->person;
	memcpy(out->dims, ix->sources[VISIT_SOURCE(vi) - 1], sizeof(out->dims));
}

bool
qindex_visit_started(const struct qindex *ix, const char *session_id,
    int64_t *started_at)
{
	enum qindex_status st = QINDEX_OK;
	/* Not added: the cast is safe. */
	uint32_t id = sdict_id((struct qindex *)ix, (struct sdict *)
	    &ix->session_ids, session_id, false, &st);

	if (id == 0 || id > ix->n_visits || ix->visits[id - 1].source == 0) {
		return false;
	}
	*started_at = ix->visits[id - 1].started_at;
	return true;
}

const struct qindex_conversion *
qindex_conversions(const struct qindex *ix, size_t *n)
{
	*n = ix->n_convs;
	return ix->convs;
}

uint32_t
qindex_event_dim(const struct qindex *ix, const struct qindex_event *ev,
    enum qindex_dim dim)
{
	const struct visit *v;
	uint32_t visit;

	if (dim == QINDEX_DIM_DEVICE) {
		return ix->agents[link_agent(ix, ev->link)].device;
	}
	if (dim == QINDEX_DIM_BROWSER) {
		return ix->agents[link_agent(ix, ev->link)].browser;
	}
	if ((visit = link_visit(ix, ev->link)) == 0) {
		return 0;
	}
	v = &ix->visits[visit - 1];
	return v->source == 0 ? 0 : ix->sources[VISIT_SOURCE(v) - 1][dim];
}

const char *
qindex_event_session(const struct qindex *ix, const struct qindex_event *ev)
{
	return sdict_text(&ix->session_ids, link_visit(ix, ev->link));
}

const char *
qindex_string(const struct qindex *ix, uint32_t id)
{
	return sdict_text(&ix->strings, id);
}

uint32_t
qindex_string_find(const struct qindex *ix, const char *text)
{
	enum qindex_status st = QINDEX_OK;

	/* Not added: the cast is safe. */
	return sdict_id((struct qindex *)ix, (struct sdict *)&ix->strings, text,
	    false, &st);
}

/* ------------------------------------------------------------- scans */

struct qindex_scan {
	const struct qindex *ix;
	bool sessions;
	int64_t lo, hi;
	size_t next_slot, end_slot;
	struct qindex_event *buf;	/* a person's events, when copied */
	size_t buf_n, buf_cap;
	struct qindex_event *spare;	/* sort_by_visit's */
	size_t spare_cap;
	struct by_visit *order;
	size_t order_cap;
	/* unit=sessions: events per visit in the range; the current
	 * person's events by visit and the next group of them; the groups
	 * of visits whose events are in more than one person, kept for
	 * the end. */
	uint32_t *in_range;
	const struct qindex_event *grp;
	size_t grp_n, grp_at;
	struct qindex_event *later;
	size_t later_n, later_cap, later_at;
	bool at_end;
	bool failed;		/* out of memory */
};

static bool
scan_reserve(struct qindex_event **buf, size_t *cap, size_t need)
{
	struct qindex_event *p;
	size_t want = *cap < 64 ? 64 : *cap;

	if (need <= *cap) {
		return true;
	}
	while (want < need) {
		want *= 2;
	}
	if ((p = realloc(*buf, want * sizeof(*p))) == NULL) {
		return false;
	}
	*buf = p;
	*cap = want;
	return true;
}

/* The events of root slot r with lo <= ts < hi into (*ev, *n): a slice
 * of the base when they are all there, else copied and sorted. */
static bool
gather(struct qindex_scan *s, uint32_t r, int64_t lo, int64_t hi,
    const struct qindex_event **ev, size_t *n)
{
	const struct qindex *ix = s->ix;
	const struct person *p = &ix->people[r];
	bool slice = p->next_member == NONE && p->pending == NONE;

	s->buf_n = 0;
	for (uint32_t m = r; m != NONE; m = ix->people[m].next_member) {
		const struct person *pm = &ix->people[m];
		const struct qindex_event *run = ix->base + pm->base_off;
		size_t len = pm->base_len;
		/* Most runs lie inside the range whole. */
		size_t a = len == 0 || qindex_event_ts(&run[0]) >= lo ? 0 :
		    first_at(run, len, lo);
		size_t b = len == 0 || qindex_event_ts(&run[len - 1]) < hi ?
		    len : first_at(run, len, hi);
		if (slice) {
			*ev = run + a;
			*n = b - a;
			return true;
		}
		if (!scan_reserve(&s->buf, &s->buf_cap, s->buf_n + (b - a))) {
			return false;
		}
		if (b > a) {
			memcpy(s->buf + s->buf_n, run + a, (b - a) * sizeof(*run));
			s->buf_n += b - a;
		}
		for (uint32_t i = pm->pending; i != NONE; i = ix->pend_next[i]) {
			int64_t ts = qindex_event_ts(&ix->pend[i]);
			if (ts >= lo && ts < hi) {
				if (!scan_reserve(&s->buf, &s->buf_cap,
				    s->buf_n + 1)) {
					return false;
				}
				s->buf[s->buf_n++] = ix->pend[i];
			}
		}
	}
	if (s->buf_n > 1) {
		qsort(s->buf, s->buf_n, sizeof(*s->buf), compare_ts);
	}
	*ev = s->buf;
	*n = s->buf_n;
	return true;
}

/* An event's place when sorting by visit: the link alone does not say
 * the visit, and qsort passes no context to look it up. */
struct by_visit {
	uint64_t key;
	uint32_t visit, at;
};

static int
compare_visit_ts(const void *pa, const void *pb)
{
	const struct by_visit *a = pa, *b = pb;

	if (a->visit != b->visit) {
		return a->visit < b->visit ? -1 : 1;
	}
	return (a->key > b->key) - (a->key < b->key);
}

/* Sorts ev[0..n) by (visit, time), in place, through the scan's order
 * and spare buffers. */
static bool
sort_by_visit(struct qindex_scan *s, struct qindex_event *ev, size_t n)
{
	struct by_visit *o;

	if (n < 2) {
		return true;
	}
	if (n > s->order_cap) {
		if ((o = realloc(s->order, n * sizeof(*o))) == NULL) {
			return false;
		}
		s->order = o;
		s->order_cap = n;
	}
	if (!scan_reserve(&s->spare, &s->spare_cap, n)) {
		return false;
	}
	o = s->order;
	for (size_t i = 0; i < n; i++) {
		o[i] = (struct by_visit){ ev[i].key, link_visit(s->ix, ev[i].link),
			(uint32_t)i };
	}
	qsort(o, n, sizeof(*o), compare_visit_ts);
	for (size_t i = 0; i < n; i++) {
		s->spare[i] = ev[o[i].at];
	}
	memcpy(ev, s->spare, n * sizeof(*ev));
	return true;
}

/* The next root slot's events in the range; false past the last. */
static bool
next_person(struct qindex_scan *s, const struct qindex_event **ev,
    size_t *n, int64_t lo, int64_t hi)
{
	const struct qindex *ix = s->ix;

	size_t end = s->end_slot < ix->n_people ? s->end_slot : ix->n_people;

	while (s->next_slot < end) {
		uint32_t r = (uint32_t)s->next_slot++;
		if (ix->people[r].root != r) {
			continue;
		}
		if (!gather(s, r, lo, hi, ev, n)) {
			s->failed = true;
			return false;
		}
		if (*n > 0) {
			return true;
		}
	}
	return false;
}

/* Events per visit in the range, over everyone (unit=sessions). */
static bool
count_in_range(struct qindex_scan *s)
{
	const struct qindex_event *ev;
	size_t n;

	s->in_range = calloc(s->ix->n_visits + 1, sizeof(uint32_t));
	if (s->in_range == NULL) {
		return false;
	}
	while (next_person(s, &ev, &n, s->lo, s->hi)) {
		for (size_t i = 0; i < n; i++) {
			s->in_range[link_visit(s->ix, ev[i].link)]++;
		}
	}
	s->next_slot = 0;
	return !s->failed;
}

struct qindex_scan *
qindex_scan_new(const struct qindex *ix, bool sessions, int64_t lo,
    int64_t hi)
{
	struct qindex_scan *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		return NULL;
	}
	s->ix = ix;
	s->sessions = sessions;
	s->lo = lo;
	s->hi = hi;
	s->end_slot = SIZE_MAX;
	if (sessions && !count_in_range(s)) {
		qindex_scan_free(s);
		return NULL;
	}
	return s;
}

void
qindex_scan_free(struct qindex_scan *s)
{
	if (s != NULL) {
		free(s->buf);
		free(s->spare);
		free(s->order);
		free(s->in_range);
		free(s->later);
		free(s);
	}
}

/* The next group of events of one visit from grp (sorted by visit),
 * from *at on; false at its end. */
static bool
next_group(const struct qindex *ix, const struct qindex_event *grp,
    size_t grp_n, size_t *at, const struct qindex_event **ev, size_t *n,
    uint32_t *visit)
{
	size_t i = *at, j = *at;

	if (i >= grp_n) {
		return false;
	}
	*visit = link_visit(ix, grp[i].link);
	while (j < grp_n && link_visit(ix, grp[j].link) == *visit) {
		j++;
	}
	*ev = grp + i;
	*n = j - i;
	*at = j;
	return true;
}

/* unit=sessions: each person's events regrouped by visit. A visit whose
 * events in the range are not all this person's (a shared device whose
 * visit two people's events went to) is kept for the end, when all of
 * its events are known. */
static bool
scan_next_session(struct qindex_scan *s, const struct qindex_event **ev,
    size_t *n)
{
	uint32_t visit;

	for (;;) {
		if (s->at_end) {
			return next_group(s->ix, s->later, s->later_n, &s->later_at,
			    ev, n, &visit);
		}
		while (next_group(s->ix, s->grp, s->grp_n, &s->grp_at, ev, n,
		    &visit)) {
			if (visit == 0) {
				continue;
			}
			if (s->in_range[visit] == *n) {
				return true;
			}
			if (!scan_reserve(&s->later, &s->later_cap,
			    s->later_n + *n)) {
				s->failed = true;
				return false;
			}
			memcpy(s->later + s->later_n, *ev, *n * sizeof(**ev));
			s->later_n += *n;
		}
		const struct qindex_event *pev;
		size_t pn;
		if (!next_person(s, &pev, &pn, s->lo, s->hi)) {
			if (s->failed) {
				return false;
			}
			s->at_end = true;
			if (!sort_by_visit(s, s->later, s->later_n)) {
				s->failed = true;
				return false;
			}
			continue;
		}
		if (pev != s->buf) {
			if (!scan_reserve(&s->buf, &s->buf_cap, pn)) {
				s->failed = true;
				return false;
			}
			memcpy(s->buf, pev, pn * sizeof(*pev));
		}
		if (!sort_by_visit(s, s->buf, pn)) {
			s->failed = true;
			return false;
		}
		s->grp = s->buf;
		s->grp_n = pn;
		s->grp_at = 0;
	}
}

bool
qindex_scan_next(struct qindex_scan *s, const struct qindex_event **ev,
    size_t *n)
{
	return s->sessions ? scan_next_session(s, ev, n) :
	    next_person(s, ev, n, s->lo, s->hi);
}

/* Below this many person slots, a second thread costs more than it
 * saves. */
#define HALVES_MIN_PEOPLE 65536

struct half {
	const struct qindex *ix;
	int64_t lo, hi;
	size_t from, to;
	qindex_part_fn part;
	void *ctx;
	bool ok;
};

static void *
run_half(void *arg)
{
	struct half *h = arg;
	struct qindex_scan *s = qindex_scan_new(h->ix, false, h->lo, h->hi);

	h->ok = s != NULL;
	if (h->ok) {
		s->next_slot = h->from;
		s->end_slot = h->to;
		h->ok = h->part(h->ctx, s) && !s->failed;
	}
	qindex_scan_free(s);
	return NULL;
}

bool
qindex_scan_people(const struct qindex *ix, int64_t lo, int64_t hi,
    qindex_part_fn part, void *const ctx[2], bool *halves)
{
	struct half first = { ix, lo, hi, 0, SIZE_MAX, part, ctx[0], false };
	struct half second = { ix, lo, hi, ix->n_people / 2, SIZE_MAX, part,
		ctx[1], false };
	pthread_t thread;

	*halves = ix->n_people >= HALVES_MIN_PEOPLE &&
	    pthread_create(&thread, NULL, run_half, &second) == 0;
	if (*halves) {
		first.to = second.from;
	}
	run_half(&first);
	if (*halves) {
		pthread_join(thread, NULL);
	}
	return first.ok && (!*halves || second.ok);
}

size_t
qindex_scan_units_max(const struct qindex_scan *s)
{
	size_t end = s->end_slot < s->ix->n_people ? s->end_slot :
	    s->ix->n_people;

	if (s->sessions) {
		return s->ix->n_visits;
	}
	return end > s->next_slot ? end - s->next_slot : 0;
}

bool
qindex_scan_failed(const struct qindex_scan *s)
{
	return s->failed;
}
