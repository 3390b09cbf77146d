/* pipeline.h - what happens to one event between the request and the
 * writer: its structure, the tracking plan's verdict, consent, a
 * cookieless identity, and the removal of personal data; then its row.
 *
 * Ingest runs it on events as they arrive and replay on rejected events
 * stored earlier, so both apply exactly the same rules. */
#ifndef MILEPOST_SERVER_PIPELINE_H
#define MILEPOST_SERVER_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/event.h"
#include "common/useragent.h"
#include "server/app.h"
#include "server/writer.h"

enum pipeline_result {
	PIPELINE_STORED,
	PIPELINE_ANONYMISED,	/* stored without identifiers or PII */
	PIPELINE_DROPPED,	/* consent missing: not stored anywhere */
	PIPELINE_REJECTED,	/* kept in rejected_events, client told */
	PIPELINE_QUARANTINED,	/* kept in rejected_events for replay */
};
/* How many results there are (kept out of the enum, whose switches list
 * every real one). */
#define PIPELINE_RESULTS (PIPELINE_QUARANTINED + 1)

/* The wire name of r: stored, anonymised, dropped, rejected, quarantined. */
const char *pipeline_result_name(enum pipeline_result r);

/* What holds for every event of one request. */
struct pipeline_context {
	struct app_state *state;
	struct app_counters *counters;	/* may be NULL */
	const char *site_id;
	/* The site's settings (identity verification); NULL: none (a site
	 * gone from the configuration), user ids link unchecked. */
	const struct config_site *site;
	/* The request came with one of the site's secret server keys: its
	 * user ids are verified and its User-Agent is the backend's. */
	bool server_key;
	const char *request_id;
	int64_t received_us;
	/* Consent the request withdrew (Sec-GPC, DNT): an object of false
	 * flags, or NULL. Borrowed. */
	json_t *consent_overrides;
	/* The cookieless id for events that carry no identity, or NULL. */
	const char *derived_anonymous_id;
	/* Replay only: properties redacted when the event was rejected. */
	const json_t *redacted;
	/* The request's User-Agent, classified once for all its events, and
	 * the hosts of the site's own pages, whose referrers are internal
	 * navigation. */
	struct useragent ua;
	const char *const *site_hosts;
	size_t n_site_hosts;
};

struct pipeline_outcome {
	enum pipeline_result result;
	struct event_problems errors;	/* why rejected or quarantined */
	struct event_problems warnings;	/* caveats of a handled event */
	char event_id[UUID7_TEXT_LEN];	/* of the stored event */
};

/* Runs the index-th event v of a request through the pipeline and
 * appends its rows to item. False only when out of memory. */
bool pipeline_run(const struct pipeline_context *ctx, json_t *v,
    size_t index, struct writer_item *item, struct pipeline_outcome *out);

/* The consent the request headers withdraw: {"marketing": false} when
 * gpc, or dnt and the configuration honours DNT; NULL otherwise. New
 * reference. */
json_t *pipeline_consent_overrides(const struct config *cfg, bool gpc,
    bool dnt);

#endif
