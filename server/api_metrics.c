/* api_metrics.c - the counters, one table so that names, help and values
 * cannot drift apart; then what the HTTP layer (server/http_stats.h) and
 * the writer (writer_metrics_get) measured, each through its own API. */
#include "server/api_metrics.h"

#include <stddef.h>

#include "common/histogram.h"
#include "common/strbuf.h"
#include "server/http.h"
#include "server/http_stats.h"
#include "server/pipeline.h"
#include "server/query_index.h"
#include "server/spool.h"
#include "server/spool_replay.h"
#include "server/writer.h"

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

/* A family of one series without labels. */
static void
append_scalar(struct strbuf *out, const char *name, const char *type,
    const char *help, unsigned long long value)
{
	strbuf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name,
	    help, name, type, name, value);
}

static void
append_writer(struct strbuf *out, struct writer *w)
{
	struct writer_metrics m;

	writer_metrics_get(w, &m);
	append_scalar(out, "milepost_events_deduplicated_total", "counter",
	    "Events not stored because their client-given id already was "
	    "(a retry).", (unsigned long long)m.deduplicated);
	append_scalar(out, "milepost_events_duplicate_conflicts_total",
	    "counter", "Events kept aside as rejected because their "
	    "client-given id was stored for another event.",
	    (unsigned long long)m.duplicate_conflicts);
	append_scalar(out, "milepost_writer_queue_depth", "gauge",
	    "Events enqueued and waiting for a writer thread.",
	    (unsigned long long)m.queued_events);
	append_scalar(out, "milepost_database_up", "gauge", "1 when a writer "
	    "is connected to PostgreSQL and the schema is current, else 0.",
	    m.ready ? 1ULL : 0ULL);
	histogram_render(out, m.batch_events, "milepost_writer_batch_events",
	    "Events per committed batch transaction (group commit).", NULL);
	histogram_render(out, m.commit_seconds,
	    "milepost_writer_commit_duration_seconds", "Time to write and "
	    "commit one batch transaction, retries included.", NULL);
}

void
api_metrics(struct request *req, struct app *app)
{
	struct strbuf out;

	strbuf_init(&out);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		atomic_ullong *c = (atomic_ullong *)(void *)
		    ((char *)&app->counters + counters[i].offset);
		append_scalar(&out, counters[i].name, "counter",
		    counters[i].help, (unsigned long long)atomic_load(c));
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
	append_writer(&out, app->writer);
	query_index_metrics(app->index, &out);
	http_stats_render(http_request_stats(req), &out);
	strbuf_appendf(&out, "# HELP milepost_http_connections_cut_total "
	    "Connections closed for taking longer than request_timeout_s to "
	    "send their request (slow clients).\n"
	    "# TYPE milepost_http_connections_cut_total counter\n"
	    "milepost_http_connections_cut_total %llu\n",
	    http_request_connections_cut(req));
	if (app->spool != NULL) {
		spool_metrics(app->spool, &out);
		spool_replay_metrics(app->spool_replay, &out);
	}
	http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    &out);
}
