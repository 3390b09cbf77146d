/* api_metrics.c - the counters, one table so that names, help and values
 * cannot drift apart. */
#include "server/api_metrics.h"

#include <stddef.h>

#include "common/strbuf.h"
#include "server/http.h"
#include "server/pipeline.h"
#include "server/spool.h"
#include "server/spool_replay.h"

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
	{ "milepost_alert_sweeps_total",
	  "Sweeps of the alert evaluator over every rule.",
	  offsetof(struct app_counters, alert_sweeps) },
	{ "milepost_alert_judgements_total",
	  "Alert rules measured and judged by the evaluator.",
	  offsetof(struct app_counters, alert_judgements) },
	{ "milepost_alert_transitions_total",
	  "Changes of an alert rule's state stored by the evaluator.",
	  offsetof(struct app_counters, alert_transitions) },
	{ "milepost_webhook_deliveries_total",
	  "Webhook calls answered 2xx.",
	  offsetof(struct app_counters, webhook_delivered) },
	{ "milepost_webhook_attempts_failed_total",
	  "Webhook calls that failed (no answer, or not 2xx).",
	  offsetof(struct app_counters, webhook_attempts_failed) },
	{ "milepost_webhook_deliveries_failed_total",
	  "Webhook deliveries given up after alert_webhook_max_attempts.",
	  offsetof(struct app_counters, webhook_gave_up) },
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
	strbuf_append_str(&out, "# HELP milepost_events_total Events taken "
	    "through the pipeline, by outcome (before they are written).\n"
	    "# TYPE milepost_events_total counter\n");
	for (int r = 0; r < PIPELINE_RESULTS; r++) {
		strbuf_appendf(&out, "milepost_events_total{result=\"%s\"} %llu\n",
		    pipeline_result_name((enum pipeline_result)r),
		    (unsigned long long)atomic_load(&app->counters.events[r]));
	}
	strbuf_append_str(&out, "# HELP milepost_event_problems_total Problems "
	    "of the events rejected or quarantined, by code.\n"
	    "# TYPE milepost_event_problems_total counter\n");
	for (int c = 0; c < ERR_COUNT_; c++) {
		unsigned long long n = atomic_load(&app->counters.problems[c]);
		if (n > 0) {
			strbuf_appendf(&out, "milepost_event_problems_total"
			    "{code=\"%s\"} %llu\n", error_code_name(
			    (enum err_code)c), n);
		}
	}
	if (app->spool != NULL) {
		spool_metrics(app->spool, &out);
		spool_replay_metrics(app->spool_replay, &out);
	}
	http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    &out);
}
