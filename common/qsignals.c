/* qsignals.c - signals over the query index (qsignals.h): per person, the
 * conversion's times, then for the first event and each action's first
 * time, the first conversion at or after it within the window. */
#include "common/qsignals.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/stats.h"

/* The first conversion time in [t, t + w] among conv[0..n) (sorted); -1
 * if none. */
static int64_t
converted_at(const int64_t *conv, size_t n, int64_t t, int64_t w)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (conv[mid] < t) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < n && conv[lo] <= t + w ? conv[lo] : -1;
}

/* Durations to conversion per action, for the medians. */
struct lags {
	int64_t *us;
	size_t n, cap;
};

static bool
lags_add(struct lags *l, int64_t us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 64 : 2 * l->cap;
		int64_t *grown = realloc(l->us, cap * sizeof(*grown));
		if (grown == NULL) {
			return false;
		}
		l->us = grown;
		l->cap = cap;
	}
	l->us[l->n++] = us;
	return true;
}

bool
qsignals_run(const struct qindex *ix, const char *const *actions,
    size_t n_actions, const char *conversion, int64_t from_us, int64_t to_us,
    int64_t window_us, struct signals_counts *out)
{
	size_t n_names = qindex_name_count(ix), conv_cap = 0, n;
	long *action_of = malloc((n_names + 1) * sizeof(*action_of));
	bool *is_conv = calloc(n_names + 1, sizeof(bool));
	int64_t *first = malloc((n_actions + 1) * sizeof(*first));
	int64_t *conv = NULL;
	struct lags *lags = calloc(n_actions + 1, sizeof(*lags));
	struct qindex_scan *scan = qindex_scan_new(ix, false, from_us,
	    to_us + window_us);
	const struct qindex_event *ev;
	bool ok = action_of != NULL && is_conv != NULL && first != NULL &&
	    lags != NULL && scan != NULL;

	memset(out, 0, sizeof(*out));
	out->actions = calloc(n_actions + 1, sizeof(*out->actions));
	out->n_actions = n_actions;
	ok = ok && out->actions != NULL;
	for (size_t id = 0; ok && id < n_names; id++) {
		const char *name = qindex_name_text(ix, (uint16_t)id);
		action_of[id] = -1;
		for (size_t i = 0; i < n_actions; i++) {
			if (strcmp(actions[i], name) == 0) {
				action_of[id] = (long)i;
			}
		}
		is_conv[id] = strcmp(name, conversion) == 0;
	}
	while (ok && qindex_scan_next(scan, &ev, &n)) {
		size_t n_conv = 0;
		int64_t cf;
		if (qindex_event_ts(&ev[0]) >= to_us) {
			continue;	/* not active in the range */
		}
		if (n > conv_cap) {
			int64_t *grown = realloc(conv, n * sizeof(*grown));
			if ((ok = grown != NULL) == false) {
				break;
			}
			conv = grown;
			conv_cap = n;
		}
		for (size_t i = 0; i < n_actions; i++) {
			first[i] = -1;
		}
		for (size_t i = 0; i < n; i++) {
			long a = action_of[qindex_event_name(&ev[i])];
			if (is_conv[qindex_event_name(&ev[i])]) {
				conv[n_conv++] = qindex_event_ts(&ev[i]);
			}
			if (a >= 0 && first[a] < 0 && qindex_event_ts(&ev[i]) < to_us) {
				first[a] = qindex_event_ts(&ev[i]);
			}
		}
		cf = converted_at(conv, n_conv, qindex_event_ts(&ev[0]), window_us);
		out->people++;
		out->converted += cf >= 0;
		for (size_t a = 0; ok && a < n_actions; a++) {
			int64_t ct;
			if (first[a] < 0) {
				continue;
			}
			ct = converted_at(conv, n_conv, first[a], window_us);
			out->actions[a].people++;
			out->actions[a].converted_first += cf >= 0;
			if (ct >= 0) {
				out->actions[a].converted++;
				ok = lags_add(&lags[a], ct - first[a]);
			}
		}
	}
	ok = ok && !qindex_scan_failed(scan);
	for (size_t a = 0; ok && a < n_actions; a++) {
		out->actions[a].median_seconds = NAN;
		if (lags[a].n > 0) {
			out->actions[a].median_seconds = stats_percentile_cont_us(
			    lags[a].us, lags[a].n, 0.5);
		}
	}
	for (size_t a = 0; lags != NULL && a < n_actions; a++) {
		free(lags[a].us);
	}
	if (!ok) {
		signals_counts_finish(out);
	}
	qindex_scan_free(scan);
	free(lags);
	free(conv);
	free(first);
	free(is_conv);
	free(action_of);
	return ok;
}

void
signals_counts_finish(struct signals_counts *c)
{
	free(c->actions);
	memset(c, 0, sizeof(*c));
}
