/* ingest.c - native event ingestion. */
#include "server/ingest.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/event.h"
#include "common/gzip.h"
#include "common/channel.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/plan.h"
#include "common/privacy.h"
#include "common/segment.h"
#include "common/timeutil.h"
#include "server/auth.h"
#include "server/copy_row.h"
#include "server/cors.h"
#include "server/http.h"
#include "server/pipeline.h"
#include "server/spool.h"

/* A site's own hosts (from its allowed origins) looked at for internal
 * referrers; more origins than this are unusual. */
#define SITE_HOSTS_MAX 16

/* One request's state while its events wait for the writer. */
struct ingest {
	struct writer_item item;
	struct spool *spool;	/* NULL: none */
	struct app_state *state;	/* the rules in force for it */
	json_t *answer;		/* the body sent once committed */
	unsigned status;	/* and its status */
};

static void
ingest_free(void *p)
{
	struct ingest *in = p;

	if (in == NULL) {
		return;
	}
	writer_item_finish(&in->item);
	app_state_put(in->state);
	json_decref(in->answer);
	free(in);
}

/* Writer thread: the batch holding this request is done. */
static void
on_written(struct writer_item *item, void *arg)
{
	(void)item;
	http_request_resume(arg);
}

/* Events the database could not take are as safe in the spool, if there
 * is one: the answer is the same. */
static bool
spooled(struct ingest *in, struct error *err)
{
	if (in->spool == NULL) {
		return false;
	}
	if (spool_append(in->spool, &in->item, err)) {
		return true;
	}
	if (err->code != ERR_SPOOL_FULL) {
		log_error("%s", err->message);
	}
	return false;
}

/* The writer kept some events aside (writer_item's conflicts) that the
 * answer, written before the commit, calls stored: it says so now. */
static void
answer_conflicts(json_t *answer, const struct writer_item *item)
{
	json_t *results = json_object_get(answer, "results");
	json_t *rejected = json_object_get(answer, "rejected");
	json_t *accepted = json_object_get(answer, "accepted");
	struct event_problems probs = { 0 };

	/* Segment's answer has none of them. */
	if (results == NULL || rejected == NULL || accepted == NULL) {
		return;
	}
	event_problem_add(&probs, ERR_DUPLICATE_CONFLICT, "$.event_id",
	    "this event_id " COPY_ROW_CONFLICT_MESSAGE);
	for (size_t k = 0; k < item->n_conflicts; k++) {
		size_t index = item->conflicts[k], at = 0;
		json_t *entry;
		while (at < json_array_size(rejected) && (size_t)
		    json_integer_value(json_object_get(json_array_get(
		    rejected, at), "index")) < index) {
			at++;
		}
		entry = json_pack("{s:I, s:o}", "index", (json_int_t)index,
		    "errors", copy_row_problems_json(&probs));
		if (entry != NULL) {
			json_array_insert_new(rejected, at, entry);
		}
		json_array_set_new(results, index,
		    json_string(error_code_name(ERR_DUPLICATE_CONFLICT)));
		json_integer_set(accepted, json_integer_value(accepted) - 1);
	}
}

/* Request thread, after resume: answer with the commit's outcome. */
static void
on_resume(struct request *req)
{
	struct ingest *in = http_request_context(req);
	struct error err = { 0 };

	switch (in->item.status) {
	case WRITER_COMMITTED:
		answer_conflicts(in->answer, &in->item);
		break;
	case WRITER_UNAVAILABLE:
	case WRITER_PENDING:
		if (spooled(in, &err)) {
			break;
		}
		if (err.code != ERR_SPOOL_FULL) {
			error_set(&err, ERR_DATABASE_UNAVAILABLE, "the "
			    "database is unavailable; nothing was stored, "
			    "retry later");
		}
		http_respond_error(req, &err);
		return;
	case WRITER_SHUTTING_DOWN:
		if (spooled(in, &err)) {
			break;
		}
		error_set(&err, ERR_SHUTTING_DOWN, "the collector is stopping; "
		    "nothing was stored, retry");
		http_respond_error(req, &err);
		return;
	case WRITER_FAILED:
		error_set(&err, ERR_INTERNAL, "the database refused the events; "
		    "nothing was stored");
		http_respond_error(req, &err);
		return;
	}
	http_respond_json(req, in->status, in->answer);
	in->answer = NULL;
}

/* True if the media type of header value ct (parameters ignored) is
 * type. */
static bool
media_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	while (*ct == ' ' || *ct == '\t') {
		ct++;
	}
	if (strncasecmp(ct, type, n) != 0) {
		return false;
	}
	ct += n;
	while (*ct == ' ' || *ct == '\t') {
		ct++;
	}
	return *ct == '\0' || *ct == ';';
}

/* Checks the body's headers. any_type: whatever Content-Type says, the
 * body is read as JSON, as Segment's API does (server libraries send
 * JSON as application/x-www-form-urlencoded). */
static bool
check_encoding(struct request *req, bool any_type, bool *gzip,
    struct error *err)
{
	const char *ct = http_request_header(req, "Content-Type");
	const char *ce = http_request_header(req, "Content-Encoding");

	if (!any_type && ct != NULL &&
	    !media_type_is(ct, "application/json") &&
	    !media_type_is(ct, "text/plain")) {
		error_set(err, ERR_UNSUPPORTED_MEDIA_TYPE, "send "
		    "application/json or text/plain, not %.80s", ct);
		return false;
	}
	*gzip = ce != NULL && media_type_is(ce, "gzip");
	if (ce != NULL && !*gzip && !media_type_is(ce, "identity")) {
		error_set(err, ERR_UNSUPPORTED_ENCODING, "Content-Encoding "
		    "must be gzip or identity, not %.80s", ce);
		return false;
	}
	return true;
}

/* The body as JSON (new reference), inflated first if it is gzip. */
static json_t *
decode_body(struct request *req, const struct config *cfg, bool gzip,
    struct error *err)
{
	struct strbuf inflated;
	json_error_t jerr;
	const void *body;
	size_t len, longest;
	json_t *root = NULL;

	strbuf_init(&inflated);
	body = http_request_body(req, &len);
	if (gzip) {
		if (!gzip_inflate_bounded(body, len,
		    (size_t)cfg->max_body_bytes, &inflated, err)) {
			goto done;
		}
		body = inflated.data != NULL ? inflated.data : "";
		len = inflated.len;
	}
	/* The parser allocates a node per value, about 200 bytes each: a body
	 * of tiny values is refused before it takes the memory. */
	if (jsonutil_count_values(body, len, (size_t)cfg->max_json_values) >
	    (size_t)cfg->max_json_values) {
		error_set(err, ERR_TOO_MANY_VALUES, "the body holds more than "
		    "the %ld JSON values allowed (max_json_values)",
		    cfg->max_json_values);
		goto done;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jansson's own words would name its flag. */
		error_set(err, ERR_MALFORMED_JSON, "the body is not valid JSON: "
		    "%s (line %d, column %d)", json_error_code(&jerr) ==
		    json_error_null_character ? "a string holds \\u0000 (NUL), "
		    "which no field may" : jerr.text, jerr.line, jerr.column);
		goto done;
	}
	/* Deeper documents, or longer strings, are not events: one walk
	 * finds out, and stops as soon as it does. */
	if (!json_is_object(root)) {
		error_set(err, ERR_MALFORMED_JSON, "the body must be a JSON "
		    "object (one event, or {\"batch\": [...]}), not %s",
		    json_is_array(root) ? "an array" : "a scalar");
		json_decref(root);
		root = NULL;
	} else if (jsonutil_extent(root, (size_t)cfg->max_json_depth,
	    (size_t)cfg->max_string_bytes, &longest) >
	    (size_t)cfg->max_json_depth) {
		error_set(err, ERR_MALFORMED_JSON, "the body nests more than "
		    "%ld levels (max_json_depth)", cfg->max_json_depth);
		json_decref(root);
		root = NULL;
	} else if (longest > (size_t)cfg->max_string_bytes) {
		error_set(err, ERR_STRING_TOO_LONG, "a string of the body is "
		    "%zu bytes long, more than the %ld allowed", longest,
		    cfg->max_string_bytes);
		json_decref(root);
		root = NULL;
	}
done:
	strbuf_finish(&inflated);
	return root;
}

/* The events of the body: the batch array, or the body itself as a
 * one-element array. New reference. */
static json_t *
events_of(json_t *root, const struct config *cfg, struct error *err)
{
	json_t *batch = json_object_get(root, "batch");

	if (batch == NULL) {
		return json_pack("[O]", root);
	}
	if (!json_is_array(batch) || json_array_size(batch) == 0 ||
	    json_object_size(root) != 1) {
		error_set(err, ERR_INVALID_BATCH, "batch must be a non-empty "
		    "array and the only key of the body");
		return NULL;
	}
	if (json_array_size(batch) > (size_t)cfg->max_batch_events) {
		error_set(err, ERR_TOO_MANY_EVENTS, "a request holds at most "
		    "%ld events, this one %zu", cfg->max_batch_events,
		    json_array_size(batch));
		return NULL;
	}
	return json_incref(batch);
}

static json_t *
warnings_json(size_t index, const struct event_problems *warnings)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < warnings->n; i++) {
		const struct event_problem *p = &warnings->items[i];
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s}",
		    "index", (json_int_t)index, "code",
		    error_code_name(p->code), "path", p->path, "message",
		    p->message));
	}
	return arr;
}

/* The cookieless id of this request's browser, if the salt is there. */
static const char *
derive_visitor(struct request *req, struct app *app, int64_t now_us,
    const char *site_id, const struct config *cfg,
    char out[PRIVACY_VISITOR_ID_LEN])
{
	char ip[HTTP_IP_TEXT_LEN] = "";
	const char *id = NULL;

	if (http_request_client_ip(req, cfg->client_ip_header, ip) &&
	    visitor_id(app->salt, now_us, site_id, ip,
	    http_request_header(req, "User-Agent"), out)) {
		id = out;
	}
	privacy_wipe(ip, sizeof(ip));
	return id;
}

/* The per-site rate limit counts events: that is what costs the writer
 * and the database, whether they come one per request or in batches. */
static bool
admit_events(struct request *req, const struct config_site *site,
    const json_t *events, struct error *err)
{
	return http_request_admit(req, HTTP_LIMIT_KEY, site->id,
	    (double)json_array_size(events), err);
}

static bool
header_is_1(struct request *req, const char *name)
{
	const char *v = http_request_header(req, name);

	return v != NULL && strcmp(v, "1") == 0;
}

/* /metrics: each event's outcome, and why it was refused. */
static void
count_outcome(struct app_counters *c, const struct pipeline_outcome *out)
{
	atomic_fetch_add(&c->events[out->result], 1);
	if (out->result == PIPELINE_REJECTED ||
	    out->result == PIPELINE_QUARANTINED) {
		for (size_t i = 0; i < out->errors.n; i++) {
			atomic_fetch_add(&c->problems[out->errors.items[i].code], 1);
		}
	}
}

/* Runs every event through the pipeline into in's rows and answer: the
 * native one with each event's outcome, or with segment what Segment's
 * clients expect (their protocol has no place for outcomes, so none are
 * built; rejected messages are kept aside as usual). */
static bool
take_events(struct ingest *in, struct request *req, struct app *app,
    json_t *events, const struct config_site *site, bool server,
    bool segment)
{
	char visitor[PRIVACY_VISITOR_ID_LEN];
	char hosts[SITE_HOSTS_MAX][CHANNEL_HOST_MAX];
	const char *host_list[SITE_HOSTS_MAX];
	const char *site_id = site->id;
	struct pipeline_context ctx = {
		.state = in->state,
		.counters = &app->counters,
		.site_id = site_id,
		.site = site,
		.server_key = server,
		.request_id = http_request_id(req),
		.received_us = timeutil_now_us(),
		.site_hosts = host_list,
	};
	struct pipeline_outcome out;
	json_t *rejected = NULL, *warnings = NULL, *results = NULL, *v;
	bool ok = true;
	size_t i;

	if (!segment) {
		rejected = json_array();
		warnings = json_array();
		results = json_array();
		ok = rejected != NULL && warnings != NULL && results != NULL;
	}

	for (size_t h = 0; h < site->n_allowed_origins &&
	    h < SITE_HOSTS_MAX; h++) {
		channel_url_host(site->allowed_origins[h], hosts[h]);
		host_list[ctx.n_site_hosts++] = hosts[h];
	}
	/* A backend's User-Agent and address say nothing of its visitors:
	 * no device, no bot flag, no cookieless id from them (an event's
	 * own context.userAgent still gives its visitor's device). */
	useragent_parse(server ? NULL : http_request_header(req,
	    "User-Agent"), &ctx.ua);
	ctx.consent_overrides = pipeline_consent_overrides(in->state->cfg,
	    header_is_1(req, "Sec-GPC"), header_is_1(req, "DNT"));
	ctx.derived_anonymous_id = server ? NULL : derive_visitor(req, app,
	    ctx.received_us, site_id, in->state->cfg, visitor);
	json_array_foreach(events, i, v) {
		if (!ok || !pipeline_run(&ctx, v, i, &in->item, &out)) {
			ok = false;
			break;
		}
		count_outcome(&app->counters, &out);
		if (segment) {
			continue;
		}
		json_array_append_new(results,
		    json_string(pipeline_result_name(out.result)));
		if (out.warnings.n > 0) {
			json_t *w = warnings_json(i, &out.warnings);
			json_array_extend(warnings, w);
			json_decref(w);
		}
		if (out.result == PIPELINE_REJECTED) {
			json_array_append_new(rejected, json_pack("{s:I, s:o}",
			    "index", (json_int_t)i, "errors",
			    copy_row_problems_json(&out.errors)));
		}
	}
	json_decref(ctx.consent_overrides);
	if (ok && segment) {
		in->answer = json_pack("{s:b}", "success", 1);
		in->status = 200;
	} else if (ok) {
		in->answer = json_pack("{s:I, s:O, s:O, s:O}", "accepted",
		    (json_int_t)in->item.n_events, "rejected", rejected,
		    "warnings", warnings, "results", results);
		in->status = 202;
	}
	json_decref(rejected);
	json_decref(warnings);
	json_decref(results);
	return in->answer != NULL && !strbuf_failed(&in->item.events) &&
	    !strbuf_failed(&in->item.event_ids) &&
	    !strbuf_failed(&in->item.rejected);
}

static const char *
write_key_of(struct request *req)
{
	const char *key = http_request_header(req, "X-Milepost-Key");

	if (key == NULL || key[0] == '\0') {
		key = http_request_query(req, "key");
	}
	return key != NULL && key[0] != '\0' ? key : NULL;
}

/* Queues the native events of a request of site for the writer; the
 * answer goes out once they are committed: the native one, or with
 * segment what Segment's clients expect. Takes over state. */
static void
ingest_events(struct request *req, struct app *app, struct app_state *state,
    const struct config_site *site, bool server, json_t *events,
    bool segment)
{
	struct ingest *in = calloc(1, sizeof(*in));
	struct error err = { 0 };

	if (in == NULL) {
		app_state_put(state);
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	writer_item_init(&in->item);
	in->spool = app->spool;
	in->state = state;
	http_request_set_context(req, in, ingest_free);
	if (!take_events(in, req, app, events, site, server, segment)) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	in->item.done = on_written;
	in->item.arg = req;
	/* Suspend first: the writer may finish before enqueue returns. */
	http_request_suspend(req, on_resume);
	if (!writer_enqueue(app->writer, &in->item, &err)) {
		in->item.status = err.code == ERR_SHUTTING_DOWN ?
		    WRITER_SHUTTING_DOWN : WRITER_UNAVAILABLE;
		http_request_resume(req);
	}
}

/* The site of key, if the request's origin may act for it: a write key,
 * or (server set) one of its secret server keys, which no browser page
 * may hold. */
static const struct config_site *
site_of_key(struct request *req, const struct config *cfg, const char *key,
    bool *server, struct error *err)
{
	const struct config_site *site;

	*server = false;
	if (key == NULL) {
		error_set(err, ERR_MISSING_WRITE_KEY, "send the site's write "
		    "key in X-Milepost-Key or ?key=");
		return NULL;
	}
	site = auth_find_site(cfg, key);
	if (site == NULL && (site = auth_find_server_site(cfg, key)) != NULL) {
		*server = true;
		if (http_request_header(req, "Origin") != NULL) {
			error_set(err, ERR_SERVER_KEY_IN_BROWSER, "a server "
			    "key came from a browser page (Origin header): it "
			    "is a secret of the site's backend; rotate it, and "
			    "use the write key in pages");
			return NULL;
		}
		return site;
	}
	if (site == NULL) {
		error_set(err, ERR_INVALID_WRITE_KEY, "no active site has "
		    "this write key");
		return NULL;
	}
	return cors_admit(req, site, err) ? site : NULL;
}

void
ingest_native(struct request *req, struct app *app)
{
	const struct config_site *site;
	struct app_state *state = app_state_get(app);
	json_t *root = NULL, *events = NULL;
	struct error err = { 0 };
	bool gzip, server;

	if (!http_request_admit_client(req,
	    state->cfg->client_ip_header, &err) ||
	    (site = site_of_key(req, state->cfg, write_key_of(req), &server,
	    &err)) == NULL ||
	    !check_encoding(req, false, &gzip, &err) ||
	    (root = decode_body(req, app->cfg, gzip, &err)) == NULL ||
	    (events = events_of(root, state->cfg, &err)) == NULL ||
	    !admit_events(req, site, events, &err)) {
		app_state_put(state);
		http_respond_error(req, &err);
	} else {
		ingest_events(req, app, state, site, server, events, false);
	}
	json_decref(events);
	json_decref(root);
}

/* The user name of HTTP Basic credentials, which Segment's clients send
 * the write key as, into out; NULL if there are none. */
static const char *
basic_user(struct request *req, char *out, size_t size)
{
	const char *h = http_request_header(req, "Authorization");
	size_t len = 0;

	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0 ||
	    sodium_base642bin((unsigned char *)out, size - 1, h + 6,
	    strlen(h + 6), " ", &len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		return NULL;
	}
	out[len] = '\0';
	out[strcspn(out, ":")] = '\0';
	return out[0] != '\0' ? out : NULL;
}

/* The native events of a Segment body: the message of call, or with
 * batch the messages of its batch array. New reference. */
static json_t *
segment_events(json_t *root, bool batch, enum segment_call call,
    const struct app_state *state, struct error *err)
{
	const char *page = plan_page_event(state->plan);
	const struct plan_event *page_def = page != NULL ?
	    plan_find_event(state->plan, page) : NULL;
	/* Without a page event in the plan, nothing rejects the property. */
	struct segment_defaults d = {
		.page_event = page,
		.page_name = page_def == NULL ||
		    plan_event_takes_property(page_def, "name"),
	};
	json_t *msgs = root, *events, *m;
	size_t i;

	if (batch) {
		msgs = json_object_get(root, "batch");
		if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
			error_set(err, ERR_INVALID_BATCH, "batch must be a "
			    "non-empty array");
			return NULL;
		}
		if (json_array_size(msgs) > (size_t)state->cfg->max_batch_events) {
			error_set(err, ERR_TOO_MANY_EVENTS, "a request holds at "
			    "most %ld events, this one %zu",
			    state->cfg->max_batch_events, json_array_size(msgs));
			return NULL;
		}
		d.context = json_object_get(root, "context");
		d.sent_at = json_object_get(root, "sentAt");
	}
	events = json_array();
	if (!batch) {
		if (json_array_append_new(events, segment_to_native(root, call,
		    &d)) != 0) {
			goto nomem;
		}
		return events;
	}
	json_array_foreach(msgs, i, m) {
		if (!segment_call_of_type(json_string_value(json_object_get(m,
		    "type")), &call)) {
			call = SEGMENT_CALLS_;
		}
		if (json_array_append_new(events, segment_to_native(m, call,
		    &d)) != 0) {
			goto nomem;
		}
	}
	return events;
nomem:
	json_decref(events);
	error_set(err, ERR_INTERNAL, "out of memory");
	return NULL;
}

/* A Segment endpoint: the key comes in the Basic credentials, in the body
 * (writeKey) or as for native events. */
static void
ingest_segment(struct request *req, struct app *app, bool batch,
    enum segment_call call)
{
	const struct config_site *site = NULL;
	struct app_state *state = app_state_get(app);
	json_t *root = NULL, *events = NULL;
	struct error err = { 0 };
	char user[256];
	const char *key;
	bool gzip, server = false;

	if (http_request_admit_client(req,
	    state->cfg->client_ip_header, &err) &&
	    check_encoding(req, true, &gzip, &err) &&
	    (root = decode_body(req, app->cfg, gzip, &err)) != NULL) {
		key = write_key_of(req);
		key = key != NULL ? key : basic_user(req, user, sizeof(user));
		key = key != NULL ? key : json_string_value(json_object_get(
		    root, "writeKey"));
		site = site_of_key(req, state->cfg, key, &server, &err);
	}
	if (site == NULL || (events = segment_events(root, batch, call, state,
	    &err)) == NULL || !admit_events(req, site, events, &err)) {
		app_state_put(state);
		http_respond_error(req, &err);
	} else {
		ingest_events(req, app, state, site, server, events, true);
	}
	json_decref(events);
	json_decref(root);
}

void
ingest_segment_batch(struct request *req, struct app *app)
{
	ingest_segment(req, app, true, SEGMENT_TRACK);
}

void
ingest_segment_track(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_TRACK);
}

void
ingest_segment_page(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_PAGE);
}

void
ingest_segment_screen(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_SCREEN);
}

void
ingest_segment_identify(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_IDENTIFY);
}

void
ingest_segment_alias(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_ALIAS);
}

void
ingest_segment_group(struct request *req, struct app *app)
{
	ingest_segment(req, app, false, SEGMENT_GROUP);
}
