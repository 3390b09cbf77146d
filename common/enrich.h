/* enrich.h - what ingest adds to an event beyond what it says: its time
 * corrected for the sender's clock, its campaign and channel, the
 * referrer's host, and the device it came from.
 *
 * Pure functions over one event; the rules they use (channel_rules) are
 * immutable and shared. See docs/enrichment.md. */
#ifndef MILEPOST_COMMON_ENRICH_H
#define MILEPOST_COMMON_ENRICH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/channel.h"
#include "common/event.h"
#include "common/useragent.h"

struct enrichment {
	struct campaign campaign;
	char referrer_host[CHANNEL_HOST_MAX];	/* "" if none or internal */
	enum channel channel;
	struct useragent ua;
	bool ts_adjusted;	/* clamped: the sender's clock ran ahead */
};

struct enrich_limits {
	int64_t future_tolerance_us;
	int64_t max_age_us;
};

/* Corrects ev->ts_us for the sender's clock: with sent_at, the event
 * happened (sent_at - ts) before it was received. A time still ahead of
 * the arrival by more than the tolerance is clamped to the arrival
 * (*adjusted set). False, with the problem in probs, when the time is
 * older than max_age_us (too_old) or before 2000 (timestamp_out_of_range). */
bool enrich_clock(struct event *ev, const struct enrich_limits *limits,
    bool *adjusted, struct event_problems *probs);

/* Campaign (the event's explicit campaign fields win over the URL's utm_
 * parameters), referrer host (referrers from site_hosts or the event's own
 * host count as none), channel, and the device ua, classified once per
 * request by the caller (useragent_parse). */
void enrich_event(const struct channel_rules *rules, const struct event *ev,
    const struct useragent *ua, const char *const *site_hosts,
    size_t n_site_hosts, struct enrichment *out);

/* The enrichment's text columns, as events and sessions store them, in
 * this order (ENRICH_TEXT_*): referrer_host, utm_source, utm_medium,
 * utm_campaign, utm_term, utm_content, click_id_kind, channel, device,
 * browser, os. "" stands for none. The strings are enr's or static. */
enum {
	ENRICH_TEXT_REFERRER_HOST,
	ENRICH_TEXT_UTM_SOURCE,
	ENRICH_TEXT_UTM_MEDIUM,
	ENRICH_TEXT_UTM_CAMPAIGN,
	ENRICH_TEXT_UTM_TERM,
	ENRICH_TEXT_UTM_CONTENT,
	ENRICH_TEXT_CLICK_ID_KIND,
	ENRICH_TEXT_CHANNEL,
	ENRICH_TEXT_DEVICE,
	ENRICH_TEXT_BROWSER,
	ENRICH_TEXT_OS,
	ENRICH_TEXTS
};
void enrich_texts(const struct enrichment *enr,
    const char *out[ENRICH_TEXTS]);

#endif
