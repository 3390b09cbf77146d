/* pipeline.c - one event from JSON to rows. */
#include "server/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "common/enrich.h"
#include "common/privacy.h"
#include "common/timeutil.h"
#include "server/copy_row.h"
#include "server/people.h"

static const char *const result_names[] = {
	[PIPELINE_STORED] = "stored",
	[PIPELINE_ANONYMISED] = "anonymised",
	[PIPELINE_DROPPED] = "dropped",
	[PIPELINE_REJECTED] = "rejected",
	[PIPELINE_QUARANTINED] = "quarantined",
};

_Static_assert(PIPELINE_RESULTS == APP_RESULTS,
    "app_counters counts every pipeline result");

const char *
pipeline_result_name(enum pipeline_result r)
{
	return result_names[r];
}

json_t *
pipeline_consent_overrides(const struct config *cfg, bool gpc, bool dnt)
{
	if (!gpc && !(dnt && cfg->honor_dnt)) {
		return NULL;
	}
	return json_pack("{s:b}", "marketing", 0);
}

/* What one event owns while its rows are rendered. */
struct scratch {
	json_t *consent;
	json_t *props;
	json_t *redacted;
	char *url;
	char *referrer;
};

static void
scratch_free(struct scratch *s)
{
	json_decref(s->consent);
	json_decref(s->props);
	json_decref(s->redacted);
	free(s->url);
	free(s->referrer);
}

/* The event's consent with the request's overrides applied (a new
 * reference; an empty object when there is none). */
static json_t *
effective_consent(json_t *given, json_t *overrides)
{
	json_t *c;

	if (overrides == NULL) {
		return given != NULL ? json_incref(given) : json_object();
	}
	c = given != NULL ? json_copy(given) : json_object();
	if (c != NULL && json_object_update(c, overrides) != 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* url without the configured parameters, and without click ids when the
 * event is anonymised. NULL url gives NULL (and true). */
static bool
strip_url(const struct config *cfg, const char *url, bool anonymise,
    char **out)
{
	char *once;

	*out = NULL;
	if (url == NULL) {
		return true;
	}
	once = privacy_strip_url_params(url,
	    (const char *const *)cfg->url_strip_params.items,
	    cfg->url_strip_params.n, NULL);
	if (once == NULL || !anonymise) {
		*out = once;
		return once != NULL;
	}
	size_t n_click = 0;
	while (privacy_click_ids[n_click] != NULL) {
		n_click++;
	}
	*out = privacy_strip_url_params(once, privacy_click_ids, n_click,
	    NULL);
	free(once);
	return *out != NULL;
}

/* props (whose reference this takes) without top-level click ids: an
 * advertiser's id for the visitor is an identifier like any other. NULL
 * when out of memory. */
static json_t *
without_click_ids(json_t *props)
{
	json_t *copy, *v;
	bool found = false;
	const char *k;
	void *tmp;

	json_object_foreach(props, k, v) {
		found = found || privacy_is_click_id(k);
	}
	if (!found) {
		return props;
	}
	copy = json_copy(props);
	json_decref(props);
	if (copy == NULL) {
		return NULL;
	}
	json_object_foreach_safe(copy, tmp, k, v) {
		if (privacy_is_click_id(k)) {
			json_object_del(copy, k);
		}
	}
	return copy;
}

/* Consent: true if the event may be stored with identifiers. Adds the
 * warning when it may not. */
static bool
consent_granted(const char *name, const struct plan_event *def,
    const json_t *given, const json_t *consent,
    struct event_problems *warnings, bool anonymous_mode)
{
	const char *need = def != NULL ? plan_event_consent(def) : NULL;
	char path[96];

	if (need == NULL || json_is_true(json_object_get(consent, need))) {
		return true;
	}
	snprintf(path, sizeof(path), "$.consent.%.64s", need);
	event_problem_add(warnings, ERR_CONSENT_MISSING, path,
	    "'%.64s' needs %s consent, %s: %s", name, need,
	    json_is_true(json_object_get(given, need)) ? "which the event "
	    "granted but the request's Sec-GPC or DNT header withdrew" :
	    "which was not granted", anonymous_mode ?
	    "stored without identifiers" : "not stored");
	return false;
}

static void
count(atomic_ullong *counter)
{
	atomic_fetch_add(counter, 1);
}

/* What consent lets the pipeline keep of an event, valid or not: a
 * visitor who did not consent leaves nothing behind (drop mode), or
 * nothing that identifies them (anonymous mode), however malformed the
 * event is. */
enum consent_verdict {
	CONSENT_GRANTED,
	CONSENT_ANONYMISE,
	CONSENT_DROP,
};

/* Judges the consent given (may be NULL) for an event of name and def
 * into *verdict, s->consent holding the effective consent; with
 * CONSENT_DROP, out says so. False when out of memory. */
static bool
judge_consent(const struct pipeline_context *ctx, const char *name,
    const struct plan_event *def, json_t *given, struct scratch *s,
    struct pipeline_outcome *out, enum consent_verdict *verdict)
{
	bool anonymous = ctx->state->consent_anonymous;

	s->consent = effective_consent(given, ctx->consent_overrides);
	if (s->consent == NULL) {
		return false;
	}
	if (consent_granted(name, def, given, s->consent, &out->warnings,
	    anonymous)) {
		*verdict = CONSENT_GRANTED;
	} else if (anonymous) {
		*verdict = CONSENT_ANONYMISE;
	} else {
		*verdict = CONSENT_DROP;
		out->result = PIPELINE_DROPPED;
		if (ctx->counters != NULL) {
			count(&ctx->counters->dropped_no_consent);
		}
	}
	return true;
}

/* The props, url and referrer to keep (in s): redacted as the plan says,
 * without the configured URL parameters and, when anonymised, without PII
 * and click ids. False when out of memory. */
static bool
clean_parts(const struct pipeline_context *ctx, const struct plan_event *def,
    json_t *props, const char *url, const char *referrer, bool anonymise,
    struct scratch *s)
{
	const struct config *cfg = ctx->state->cfg;

	if (props != NULL) {
		s->props = plan_redact_props(def, props, anonymise,
		    cfg->pii_hash_key, strlen(cfg->pii_hash_key), ctx->redacted,
		    s->redacted);
		if (s->props == NULL) {
			return false;
		}
		if (anonymise && (s->props = without_click_ids(s->props)) ==
		    NULL) {
			return false;
		}
	}
	return strip_url(cfg, url, anonymise, &s->url) &&
	    strip_url(cfg, referrer, anonymise, &s->referrer);
}

/* The payload kept in rejected_events: the event as sent, with what the
 * pipeline removed removed. */
static json_t *
rejected_payload(json_t *v, const struct event *ev, bool anonymise)
{
	json_t *p = json_copy(v);
	static const char *const ids[] = { "anonymous_id", "user_id",
		"session_id" };
	const char *const urls[][2] = { { "url", ev->url },
		{ "referrer", ev->referrer } };

	if (p == NULL) {
		return NULL;
	}
	if (ev->props != NULL &&
	    json_object_set(p, "props", ev->props) != 0) {
		goto fail;
	}
	for (size_t i = 0; i < 2; i++) {
		if (urls[i][1] != NULL && json_object_set_new(p, urls[i][0],
		    json_string(urls[i][1])) != 0) {
			goto fail;
		}
	}
	for (size_t i = 0; anonymise && i < 3; i++) {
		json_object_del(p, ids[i]);
	}
	/* A proof of identity is worth nothing to someone fixing events, and
	 * would let anyone who reads them replay it. */
	json_object_del(p, "user_hash");
	/* A context carries the sender's view of the visitor (ip, traits,
	 * user agent): of it only the consent is kept. */
	if (json_object_get(p, "context") != NULL) {
		json_t *prefs = event_segment_consent(json_object_get(p,
		    "context"));
		json_t *kept = json_is_object(prefs) ? json_pack("{s:{s:O}}",
		    "consent", "categoryPreferences", prefs) : json_object();
		if (kept == NULL || json_object_set_new(p, "context", kept) != 0) {
			goto fail;
		}
	}
	return p;
fail:
	json_decref(p);
	return NULL;
}

static bool
emit_event(const struct pipeline_context *ctx, struct event *ev,
    const struct plan_event *def, const struct enrichment *enr,
    size_t index, struct writer_item *item)
{
	ev->plan_version = plan_version(ctx->state->plan);
	if (ev->version == 0 && def != NULL) {
		ev->version = plan_event_version(def);
	}
	ev->kind = def != NULL ? plan_event_kind_name(def) :
	    ev->type == EVENT_IDENTIFY ? EVENT_IDENTIFY_NAME : NULL;
	ev->phase = def != NULL ? plan_event_phase(def) : NULL;
	copy_row_event(&item->events, ctx->site_id, ev, enr);
	if (!people_note_event(item, ctx->site_id, ctx->request_id, index, ev,
	    enr)) {
		return false;
	}
	/* Only a client's id can come back in a retry. */
	if (!ev->event_id_generated) {
		copy_row_event_id(&item->event_ids, ctx->site_id, ev);
	}
	item->n_events++;
	return writer_item_add_month(item, timeutil_month_index(ev->ts_us));
}

static bool
emit_rejected(const struct pipeline_context *ctx, json_t *payload,
    size_t index, const char *name, const char *derived, bool quarantined,
    const json_t *redacted, const struct event_problems *errors,
    struct writer_item *item)
{
	struct rejected_row row = {
		.site_id = ctx->site_id,
		.received_us = ctx->received_us,
		.request_id = ctx->request_id,
		.index = index,
		.payload = payload,
		.probs = errors,
		.event_name = name,
		.quarantined = quarantined,
		.derived_anonymous_id = derived,
		.consent_overrides = ctx->consent_overrides,
		.redacted = redacted,
	};

	copy_row_rejected(&item->rejected, &row);
	item->n_rejected++;
	return true;
}

/* A structurally invalid event obeys consent as a valid one does, and is
 * cleaned of what the plan and the URL rules would remove, as far as its
 * parts can be read. */
static bool
reject_malformed(const struct pipeline_context *ctx, json_t *v,
    size_t index, const struct event *ev, struct pipeline_outcome *out,
    struct writer_item *item)
{
	const char *name = json_string_value(json_object_get(v, "name"));
	const struct plan_event *def = name != NULL ?
	    plan_find_event(ctx->state->plan, name) : NULL;
	json_t *props = json_object_get(v, "props"), *payload = NULL;
	struct scratch s = { 0 };
	enum consent_verdict consent;
	bool ok = false;

	out->result = PIPELINE_REJECTED;
	if (!json_is_object(v)) {
		return emit_rejected(ctx, v, index, NULL, NULL, false, NULL,
		    &out->errors, item);
	}
	if ((s.redacted = json_array()) == NULL ||
	    !judge_consent(ctx, name, def, ev->consent, &s, out, &consent)) {
		goto done;
	}
	if (consent == CONSENT_DROP) {
		ok = true;
		goto done;
	}
	if (!clean_parts(ctx, def, json_is_object(props) ? props : NULL,
	    json_string_value(json_object_get(v, "url")),
	    json_string_value(json_object_get(v, "referrer")),
	    consent == CONSENT_ANONYMISE, &s)) {
		goto done;
	}
	struct event clean = { .props = s.props, .url = s.url,
		.referrer = s.referrer };
	payload = rejected_payload(v, &clean, consent == CONSENT_ANONYMISE);
	ok = payload != NULL && emit_rejected(ctx, payload, index, name,
	    consent == CONSENT_GRANTED && ev->anonymous_id == NULL &&
	    ev->user_id == NULL ? ctx->derived_anonymous_id : NULL, false,
	    s.redacted, &out->errors, item);
done:
	json_decref(payload);
	scratch_free(&s);
	return ok;
}

/* The device the event came from: a server forwarding events says so in
 * Segment's context.userAgent; otherwise the request's. */
static const struct useragent *
device_of(const struct pipeline_context *ctx, const struct event *ev,
    struct useragent *own)
{
	const char *ua = json_string_value(json_object_get(ev->context,
	    "userAgent"));

	if (ua == NULL) {
		return &ctx->ua;
	}
	useragent_parse(ua, own);
	return own;
}

/* How far ev's user id may link (docs/plan.md, "Identity
 * verification"). A claim that may not link loses its user id, with a
 * warning: the event stays, under its anonymous id. */
static void
judge_identity(const struct pipeline_context *ctx, struct event *ev,
    struct event_problems *warnings)
{
	const struct config_site *site = ctx->site;
	const char *hash;

	ev->trust = EVENT_TRUST_UNCHECKED;
	if (ev->user_id == NULL) {
		return;
	}
	if (ctx->server_key) {
		ev->trust = EVENT_TRUST_VERIFIED;
		return;
	}
	if (site == NULL ||
	    site->identity_verification == CONFIG_IDENTITY_OFF) {
		return;
	}
	hash = event_user_hash(ev);
	if (privacy_hmac_matches(site->identity_secret, ev->user_id, hash)) {
		ev->trust = EVENT_TRUST_VERIFIED;
		return;
	}
	if (hash == NULL &&
	    site->identity_verification == CONFIG_IDENTITY_OPTIONAL) {
		ev->trust = EVENT_TRUST_UNVERIFIED;
		return;
	}
	event_problem_add(warnings, ERR_IDENTITY_UNVERIFIED, "$.user_id",
	    "the user id came %s: stored under the anonymous id only, not "
	    "linked", hash == NULL ? "without a user_hash" :
	    "with a user_hash that does not match it");
	ev->user_id = NULL;
}

bool
pipeline_run(const struct pipeline_context *ctx, json_t *v, size_t index,
    struct writer_item *item, struct pipeline_outcome *out)
{
	const struct config *cfg = ctx->state->cfg;
	const struct plan_event *def = NULL;
	struct scratch s = { 0 };
	const struct enrich_limits limits = {
		.future_tolerance_us = cfg->clock_skew_tolerance_s *
		    TIMEUTIL_US_PER_SEC,
		.max_age_us = cfg->max_event_age_days * 86400 *
		    TIMEUTIL_US_PER_SEC,
	};
	const char *derived = NULL;
	struct useragent own_ua;
	const struct useragent *device;
	struct enrichment enr;
	enum plan_verdict verdict;
	enum consent_verdict consent;
	bool granted, adjusted, ok = false;
	json_t *payload = NULL;
	struct event ev;

	memset(out, 0, sizeof(*out));
	if (!event_parse_native(v, ctx->received_us, &ev, &out->errors)) {
		return reject_malformed(ctx, v, index, &ev, out, item);
	}
	judge_identity(ctx, &ev, &out->warnings);
	if (ev.anonymous_id == NULL && ev.user_id == NULL) {
		ev.anonymous_id = derived = ctx->derived_anonymous_id;
	}
	device = device_of(ctx, &ev, &own_ua);
	/* Bots' events are not wanted, valid or not: a crawler's malformed
	 * calls do not belong among the rejected events people fix. */
	if (device->bot && ctx->state->drop_bots) {
		event_problem_add(&out->warnings, ERR_BOT_TRAFFIC, "$",
		    "sent by %s: not stored (bot_handling drop)",
		    device->bot_name != NULL ? device->bot_name : "a bot");
		out->result = PIPELINE_DROPPED;
		if (ctx->counters != NULL) {
			count(&ctx->counters->bots_dropped);
		}
		ok = true;
		goto done;
	}
	/* An identify call is no action of the plan's. */
	verdict = ev.type == EVENT_IDENTIFY ? PLAN_PASS :
	    plan_check_event(ctx->state->plan, &ev, ctx->redacted, &def,
	    &out->errors, &out->warnings);
	if (!enrich_clock(&ev, &limits, &adjusted, &out->errors) &&
	    verdict == PLAN_PASS) {
		verdict = PLAN_REJECT;
	}
	/* Only a rejected row records what was redacted. */
	if ((verdict != PLAN_PASS && (s.redacted = json_array()) == NULL) ||
	    !judge_consent(ctx, ev.name, def, ev.consent, &s, out, &consent)) {
		goto done;
	}
	if (consent == CONSENT_DROP) {
		ok = true;
		goto done;
	}
	granted = consent == CONSENT_GRANTED;
	ev.consent = s.consent;
	ev.consented = granted;
	if (!granted) {
		ev.anonymous_id = ev.user_id = ev.session_id = NULL;
		derived = NULL;
	}
	if (!clean_parts(ctx, def, ev.props, ev.url, ev.referrer, !granted,
	    &s)) {
		goto done;
	}
	ev.props = s.props;
	ev.url = s.url;
	ev.referrer = s.referrer;
	if (verdict == PLAN_PASS) {
		enrich_event(ctx->state->channel_rules, &ev, device,
		    ctx->site_hosts, ctx->n_site_hosts, &enr);
		enr.ts_adjusted = adjusted;
		out->result = granted ? PIPELINE_STORED : PIPELINE_ANONYMISED;
		memcpy(out->event_id, ev.event_id, sizeof(out->event_id));
		/* Stored, but no query counts it: a backend posting with the
		 * write key and an HTTP library's user agent must find out. */
		if (device->bot) {
			event_problem_add(&out->warnings, ERR_BOT_TRAFFIC, "$",
			    "sent by %s: stored as a bot's, left out of "
			    "funnels, attribution, signals and alerts (a "
			    "backend sends with a server key)",
			    device->bot_name != NULL ? device->bot_name :
			    "a bot");
		}
		ok = emit_event(ctx, &ev, def, &enr, index, item);
		if (ctx->counters != NULL && !granted) {
			count(&ctx->counters->anonymised);
		}
		for (size_t i = 0; ctx->counters != NULL &&
		    i < out->warnings.n; i++) {
			if (out->warnings.items[i].code ==
			    ERR_EVENT_DEPRECATED) {
				count(&ctx->counters->deprecated_accepted);
			}
		}
		goto done;
	}
	out->result = verdict == PLAN_QUARANTINE ? PIPELINE_QUARANTINED :
	    PIPELINE_REJECTED;
	if (ctx->counters != NULL && verdict == PLAN_QUARANTINE) {
		count(&ctx->counters->quarantined);
	}
	payload = rejected_payload(v, &ev, !granted);
	ok = payload != NULL && emit_rejected(ctx, payload, index, ev.name,
	    derived, verdict == PLAN_QUARANTINE, s.redacted, &out->errors,
	    item);
done:
	json_decref(payload);
	scratch_free(&s);
	return ok;
}
