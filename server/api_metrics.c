/* api_metrics.c - the counters, one table so that names, help and values
 * cannot drift apart. */
#include "server/api_metrics.h"

#include <stddef.h>

#include "common/strbuf.h"
#include "server/http.h"

static const struct {
	const char *name;
	const char *help;
	size_t offset;
} counters[] = {
	{ "milepost_events_consent_dropped_total",
	  "Events not stored because the consent they need was missing "
	  "(consent_mode drop).",
	  offsetof(struct app_counters, dropped_no_consent) },
	{ "milepost_events_anonymised_total",
	  "Events stored without identifiers because the consent they need "
	  "was missing (consent_mode anonymous).",
	  offsetof(struct app_counters, anonymised) },
	{ "milepost_events_deprecated_total",
	  "Events of deprecated plan events accepted before their sunset.",
	  offsetof(struct app_counters, deprecated_accepted) },
	{ "milepost_events_quarantined_total",
	  "Events of names the plan lacks, kept for replay.",
	  offsetof(struct app_counters, quarantined) },
	{ "milepost_events_bots_dropped_total",
	  "Events from bots not stored (bot_handling drop).",
	  offsetof(struct app_counters, bots_dropped) },
	{ "milepost_reloads_total",
	  "SIGHUP reloads attempted.",
	  offsetof(struct app_counters, reloads) },
	{ "milepost_reload_failures_total",
	  "SIGHUP reloads refused (the previous rules stayed).",
	  offsetof(struct app_counters, reload_failures) },
};

void
api_metrics(struct request *req, struct app *app)
{
	struct strbuf out;

	strbuf_init(&out);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		atomic_ullong *c = (atomic_ullong *)(void *)
		    ((char *)&app->counters + counters[i].offset);
		strbuf_appendf(&out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
		    counters[i].name, counters[i].help, counters[i].name,
		    counters[i].name, (unsigned long long)atomic_load(c));
	}
	http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    &out);
}
