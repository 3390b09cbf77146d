/* http_stats.c - requests by route and status, and their durations. */
#include "server/http_stats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/histogram.h"

/* Statuses 100 to 599, each its own counter: a few kilobytes a route buys
 * exact counts without a lock or a table to fill. */
#define STATUS_MIN 100
#define STATUS_SPAN 500

struct route_stats {
	const char *name;	/* the route's path; static */
	struct histogram seconds;
	atomic_ullong by_status[STATUS_SPAN];
};

struct http_stats {
	size_t n_table;		/* routes_count() */
	size_t *slot_of;	/* by table index: routes of one path share */
	struct route_stats *slots;
	size_t n_slots;		/* the paths, then preflight and other */
};

/* The slot of the table's path i, made if it is the first route with
 * that path. */
static size_t
slot_for_path(struct http_stats *s, size_t i)
{
	const char *path = routes_at(i)->path;

	for (size_t j = 0; j < s->n_slots; j++) {
		if (strcmp(s->slots[j].name, path) == 0) {
			return j;
		}
	}
	s->slots[s->n_slots].name = path;
	return s->n_slots++;
}

struct http_stats *
http_stats_new(void)
{
	struct http_stats *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		return NULL;
	}
	s->n_table = routes_count();
	s->slot_of = calloc(s->n_table, sizeof(*s->slot_of));
	s->slots = calloc(s->n_table + 2, sizeof(*s->slots));
	if (s->slot_of == NULL || s->slots == NULL) {
		http_stats_free(s);
		return NULL;
	}
	for (size_t i = 0; i < s->n_table; i++) {
		s->slot_of[i] = slot_for_path(s, i);
	}
	s->slots[s->n_slots++].name = "preflight";
	s->slots[s->n_slots++].name = "other";
	for (size_t i = 0; i < s->n_slots; i++) {
		histogram_init(&s->slots[i].seconds, histogram_seconds_bounds,
		    histogram_seconds_n_bounds, HISTOGRAM_SECONDS_DECIMALS);
		for (size_t k = 0; k < STATUS_SPAN; k++) {
			atomic_init(&s->slots[i].by_status[k], 0);
		}
	}
	return s;
}

void
http_stats_free(struct http_stats *s)
{
	if (s == NULL) {
		return;
	}
	free(s->slot_of);
	free(s->slots);
	free(s);
}

/* A pointer comparison per route: cheaper than the path's text, and the
 * table is short. */
static struct route_stats *
slot_of_route(struct http_stats *s, const struct route *route)
{
	if (route == NULL) {
		return &s->slots[s->n_slots - 1];
	}
	for (size_t i = 0; i < s->n_table; i++) {
		if (routes_at(i) == route) {
			return &s->slots[s->slot_of[i]];
		}
	}
	return &s->slots[s->n_slots - 2];	/* the preflight answerer */
}

void
http_stats_record(struct http_stats *s, const struct route *route,
    unsigned status, int64_t elapsed_ns)
{
	struct route_stats *r = slot_of_route(s, route);

	if (status >= STATUS_MIN && status - STATUS_MIN < STATUS_SPAN) {
		atomic_fetch_add_explicit(&r->by_status[status - STATUS_MIN], 1,
		    memory_order_relaxed);
	}
	histogram_observe(&r->seconds, elapsed_ns > 0 ?
	    (uint64_t)elapsed_ns : 0);
}

void
http_stats_render(const struct http_stats *s, struct strbuf *out)
{
	const char *help = "Time from a request's headers to the end of its "
	    "answer, by route.";
	char labels[160];

	strbuf_append_str(out, "# HELP milepost_http_requests_total Requests "
	    "answered, by route (the path of the routes table; preflight, or "
	    "other for paths and methods without a route) and status.\n"
	    "# TYPE milepost_http_requests_total counter\n");
	for (size_t i = 0; i < s->n_slots; i++) {
		for (size_t k = 0; k < STATUS_SPAN; k++) {
			unsigned long long n = atomic_load_explicit(
			    &s->slots[i].by_status[k], memory_order_relaxed);
			if (n > 0) {
				strbuf_appendf(out, "milepost_http_requests_"
				    "total{route=\"%s\",status=\"%zu\"} %llu\n",
				    s->slots[i].name, k + STATUS_MIN, n);
			}
		}
	}
	/* The family's HELP comes with its first series: a family of no
	 * series is left out. */
	for (size_t i = 0; i < s->n_slots; i++) {
		if (histogram_count(&s->slots[i].seconds) == 0) {
			continue;
		}
		/* Route names are the table's paths: nothing to escape. */
		snprintf(labels, sizeof(labels), "route=\"%s\"",
		    s->slots[i].name);
		histogram_render(out, &s->slots[i].seconds,
		    "milepost_http_request_duration_seconds", help, labels);
		help = NULL;
	}
}
