/* enrich.c - clock, campaign, channel and device of one event. */
#include "common/enrich.h"

#include <ctype.h>
#include <string.h>

#include "common/timeutil.h"

/* 2000-01-01T00:00:00Z: older times are broken clocks, not history. */
#define TS_MIN_US (INT64_C(946684800) * TIMEUTIL_US_PER_SEC)

bool
enrich_clock(struct event *ev, const struct enrich_limits *limits,
    bool *adjusted, struct event_problems *probs)
{
	int64_t ts = ev->ts_us;

	*adjusted = false;
	if (ev->has_sent_at) {
		/* The sender's clock may be off, but not its stopwatch. */
		ts = ev->received_us - (ev->sent_at_us - ev->ts_us);
	}
	if (ts > ev->received_us + limits->future_tolerance_us) {
		ts = ev->received_us;
		*adjusted = true;
	}
	if (ts < TS_MIN_US) {
		event_problem_add(probs, ERR_TIMESTAMP_OUT_OF_RANGE, "$.ts",
		    "the event's time falls before 2000-01-01");
		return false;
	}
	if (ts < ev->received_us - limits->max_age_us) {
		event_problem_add(probs, ERR_TOO_OLD, "$.ts",
		    "the event happened more than %lld days before it was "
		    "received", (long long)(limits->max_age_us /
		    (INT64_C(86400) * TIMEUTIL_US_PER_SEC)));
		return false;
	}
	ev->ts_us = ts;
	return true;
}

/* Copies an explicit campaign field over the URL's, normalised as
 * campaign_from_url normalises (trimmed, source and medium lower-case). */
static void
campaign_set(char *dst, const json_t *v, bool lower)
{
	const char *s = json_string_value(v);
	size_t n;

	if (s == NULL) {
		return;
	}
	while (isspace((unsigned char)*s)) {
		s++;
	}
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1])) {
		n--;
	}
	if (n == 0) {
		return;
	}
	if (n >= CHANNEL_FIELD_MAX) {
		n = CHANNEL_FIELD_MAX - 1;
		/* Not inside a UTF-8 sequence. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
			n--;
		}
	}
	for (size_t i = 0; i < n; i++) {
		dst[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	}
	dst[n] = '\0';
}

static void
campaign_explicit(struct campaign *c, const json_t *given)
{
	campaign_set(c->source, json_object_get(given, "source"), true);
	campaign_set(c->medium, json_object_get(given, "medium"), true);
	campaign_set(c->name, json_object_get(given, "name"), false);
	campaign_set(c->term, json_object_get(given, "term"), false);
	campaign_set(c->content, json_object_get(given, "content"), false);
}

static bool
internal_referrer(const char *host, const char *own,
    const char *const *site_hosts, size_t n)
{
	if (own[0] != '\0' && channel_same_site(host, own)) {
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (site_hosts[i][0] != '\0' &&
		    channel_same_site(host, site_hosts[i])) {
			return true;
		}
	}
	return false;
}

void
enrich_event(const struct channel_rules *rules, const struct event *ev,
    const struct useragent *ua, const char *const *site_hosts,
    size_t n_site_hosts, struct enrichment *out)
{
	char own[CHANNEL_HOST_MAX];

	memset(out, 0, sizeof(*out));
	campaign_from_url(ev->url, &out->campaign);
	campaign_explicit(&out->campaign, ev->campaign);
	channel_url_host(ev->referrer, out->referrer_host);
	channel_url_host(ev->url, own);
	if (out->referrer_host[0] != '\0' && internal_referrer(
	    out->referrer_host, own, site_hosts, n_site_hosts)) {
		out->referrer_host[0] = '\0';
	}
	out->channel = channel_classify(rules, &out->campaign,
	    out->referrer_host);
	out->ua = *ua;
}

void
enrich_texts(const struct enrichment *enr, const char *out[ENRICH_TEXTS])
{
	const struct campaign *c = &enr->campaign;

	out[ENRICH_TEXT_REFERRER_HOST] = enr->referrer_host;
	out[ENRICH_TEXT_UTM_SOURCE] = c->source;
	out[ENRICH_TEXT_UTM_MEDIUM] = c->medium;
	out[ENRICH_TEXT_UTM_CAMPAIGN] = c->name;
	out[ENRICH_TEXT_UTM_TERM] = c->term;
	out[ENRICH_TEXT_UTM_CONTENT] = c->content;
	out[ENRICH_TEXT_CLICK_ID_KIND] = c->click_id_kind;
	out[ENRICH_TEXT_CHANNEL] = channel_name(enr->channel);
	out[ENRICH_TEXT_DEVICE] = useragent_device_name(enr->ua.device);
	out[ENRICH_TEXT_BROWSER] = enr->ua.browser;
	out[ENRICH_TEXT_OS] = enr->ua.os;
	for (size_t i = 0; i < ENRICH_TEXTS; i++) {
		if (out[i] == NULL) {
			out[i] = "";
		}
	}
}
