/* http.c - libmicrohttpd daemon and request life cycle.
 *
 * libmicrohttpd calls on_request several times per request: once with the
 * headers (we only set up; answering now would make it close the
 * connection), once per chunk of body, and once more with no data when
 * the body is complete, which is when the handler runs. A suspended
 * request gets that last call again after it is resumed. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/jsonutil.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/privacy.h"
#include "common/ratelimit.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "common/urltext.h"
#include "common/utf8.h"
#include "server/deadline.h"
#include "server/http_stats.h"
#include "server/routes.h"
#include "server/tls.h"

/* Buckets of each rate limit: bounded memory (about 1.5 MB each); more
 * clients than this share the least recently used slots. */
#define RATE_SLOTS 65536

struct http {
	struct MHD_Daemon *daemon;
	struct app *app;
	atomic_long in_flight;
	atomic_bool quiescing;
	atomic_ulong next_id;
	unsigned long id_prefix;
	struct http_stats *stats;
	struct ratelimit *limits[HTTP_LIMITS_];	/* NULL: off */
	struct deadline *deadline;
	struct tls_pem tls;	/* kept while the daemon runs */
};

/* Stands, in *con_cls, for a request whose path on_uri refused, until
 * its struct request exists. */
static char refused_path;

struct request {
	struct http *http;
	struct MHD_Connection *conn;
	const struct route *route;
	char *path_param;	/* what follows a prefix route, or NULL */
	char id[24];
	char allow[64];
	struct strbuf body;
	/* The query parameters the handler asked for, each NUL-ended. */
	struct strbuf asked;
	size_t discarded;	/* bytes of an oversized body thrown away */
	bool dispatched;
	bool path_refused;	/* its path is no UTF-8 text (see on_uri) */
	void (*on_resume)(struct request *req);
	void *ctx;
	void (*ctx_free)(void *ctx);
	/* The answer, once decided. */
	struct MHD_Response *response;
	unsigned status;
	bool origin_allowed;	/* answer the Origin with CORS headers */
	bool preflight;		/* ... and those of a preflight */
	int64_t started_ns;	/* monotonic, when its headers came */
	long retry_after_s;	/* of a 429 */
};

const struct http_stats *
http_request_stats(const struct request *req)
{
	return req->http->stats;
}

unsigned long long
http_request_connections_cut(const struct request *req)
{
	return deadline_cut_total(req->http->deadline);
}

const char *
http_request_id(const struct request *req)
{
	return req->id;
}

const char *
http_request_header(struct request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_request_path_param(const struct request *req)
{
	return req->path_param;
}

/* Rewrites text, an address from a header, in the form inet_ntop gives
 * the socket's (so that one client is one visitor whichever way its
 * address was spelt); false, leaving it undefined, when it is no IPv4 or
 * IPv6 address: whatever a header says is not taken for one. */
static bool
ip_canonical(char text[HTTP_IP_TEXT_LEN])
{
	unsigned char addr[sizeof(struct in6_addr)];
	int family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;

	return inet_pton(family, text, addr) == 1 &&
	    inet_ntop(family, addr, text, HTTP_IP_TEXT_LEN) != NULL;
}

bool
http_request_client_ip(struct request *req, const char *header,
    char out[HTTP_IP_TEXT_LEN])
{
	const union MHD_ConnectionInfo *info;
	const struct sockaddr *sa;
	const char *v, *last;
	size_t n;

	if (header != NULL && header[0] != '\0' &&
	    (v = http_request_header(req, header)) != NULL) {
		/* The last address is the one our own proxy saw; earlier
		 * ones are the client's word. */
		last = strrchr(v, ',');
		last = last != NULL ? last + 1 : v;
		while (*last == ' ' || *last == '\t') {
			last++;
		}
		n = strcspn(last, " \t");
		if (n > 0 && n < HTTP_IP_TEXT_LEN) {
			memcpy(out, last, n);
			out[n] = '\0';
			if (ip_canonical(out)) {
				return true;
			}
		}
	}
	info = MHD_get_connection_info(req->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = info != NULL ? info->client_addr : NULL;
	if (sa != NULL && sa->sa_family == AF_INET) {
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, out, HTTP_IP_TEXT_LEN) != NULL;
	}
	if (sa != NULL && sa->sa_family == AF_INET6) {
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, out, HTTP_IP_TEXT_LEN) != NULL;
	}
	return false;
}

static bool
was_asked(const struct request *req, const char *name)
{
	for (size_t at = 0; at < req->asked.len;
	    at += strlen(req->asked.data + at) + 1) {
		if (strcmp(req->asked.data + at, name) == 0) {
			return true;
		}
	}
	return false;
}

void
http_request_query_taken(struct request *req, const char *name)
{
	if (!was_asked(req, name)) {
		strbuf_append(&req->asked, name, strlen(name) + 1);
	}
}

const char *
http_request_query(struct request *req, const char *name)
{
	http_request_query_taken(req, name);
	return MHD_lookup_connection_value(req->conn,
	    MHD_GET_ARGUMENT_KIND, name);
}

struct unasked {
	const struct request *req;
	const char *name;
};

static bool
find_unasked(void *ctx, const char *name, const char *value)
{
	struct unasked *u = ctx;

	(void)value;
	if (was_asked(u->req, name)) {
		return true;
	}
	u->name = name;
	return false;
}

const char *
http_request_query_unasked(struct request *req, struct strbuf *asked)
{
	struct unasked u = { req, NULL };

	http_request_query_each(req, find_unasked, &u);
	for (size_t at = 0; u.name != NULL && at < req->asked.len;
	    at += strlen(req->asked.data + at) + 1) {
		strbuf_appendf(asked, "%s%s", at > 0 ? ", " : "",
		    req->asked.data + at);
	}
	return u.name;
}

struct query_walk {
	bool (*fn)(void *ctx, const char *name, const char *value);
	void *ctx;
	bool stopped;
};

static enum MHD_Result
query_walk_one(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct query_walk *w = cls;

	(void)kind;
	if (!w->fn(w->ctx, key, value != NULL ? value : "")) {
		w->stopped = true;
		return MHD_NO;
	}
	return MHD_YES;
}

bool
http_request_query_each(struct request *req,
    bool (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	struct query_walk w = { fn, ctx, false };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
	    query_walk_one, &w);
	return !w.stopped;
}

const void *
http_request_body(const struct request *req, size_t *len)
{
	*len = req->body.len;
	return req->body.data != NULL ? req->body.data : "";
}

void
http_request_set_context(struct request *req, void *ctx,
    void (*free_fn)(void *ctx))
{
	req->ctx = ctx;
	req->ctx_free = free_fn;
}

void *
http_request_context(struct request *req)
{
	return req->ctx;
}

#define JSON_TYPE "application/json; charset=utf-8"

void
http_request_allow_origin(struct request *req, bool preflight)
{
	req->origin_allowed = true;
	req->preflight = preflight;
}

/* The browser may read the answer; no credentials, so no cookies. */
static void
add_cors_headers(struct request *req)
{
	const char *origin = http_request_header(req, "Origin");

	if (origin == NULL) {
		return;
	}
	MHD_add_response_header(req->response,
	    "Access-Control-Allow-Origin", origin);
	MHD_add_response_header(req->response, "Vary", "Origin");
	if (req->preflight) {
		MHD_add_response_header(req->response,
		    "Access-Control-Allow-Methods", "GET, POST");
		MHD_add_response_header(req->response,
		    "Access-Control-Allow-Headers", "Content-Type, "
		    "Content-Encoding, Authorization, X-Milepost-Key");
		MHD_add_response_header(req->response,
		    "Access-Control-Max-Age", "86400");
	}
}

/* Sets the answer: body, len bytes, which mode says whether the response
 * frees it (MUST_FREE, malloc'ed) or only points at it (PERSISTENT, for
 * data that outlives the daemon); cache is the Cache-Control value. */
static void
respond_with(struct request *req, unsigned status, const char *type,
    void *body, size_t len, enum MHD_ResponseMemoryMode mode,
    const char *cache)
{
	char retry[16];

	if (req->response != NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE) {
			free(body);
		}
		return;
	}
	req->response = MHD_create_response_from_buffer(len, body, mode);
	if (req->response == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE) {
			free(body);
		}
		return;
	}
	req->status = status;
	if (type != NULL) {
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_CONTENT_TYPE, type);
	}
	MHD_add_response_header(req->response, "X-Request-Id", req->id);
	MHD_add_response_header(req->response, "Cache-Control", cache);
	if (status == 503) {
		snprintf(retry, sizeof(retry), "%ld",
		    req->http->app->cfg->retry_after_s);
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (status == 405) {
		MHD_add_response_header(req->response, MHD_HTTP_HEADER_ALLOW,
		    req->allow);
	}
	if (status == 429) {
		snprintf(retry, sizeof(retry), "%ld", req->retry_after_s);
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (req->origin_allowed) {
		add_cors_headers(req);
	}
	if (atomic_load(&req->http->quiescing)) {
		/* Let clients reconnect to a collector that stays. */
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_CONNECTION, "close");
	}
}

/* Sets the answer from a malloc'ed body that the response takes over. */
static void
respond_raw(struct request *req, unsigned status, const char *type,
    char *body, size_t len)
{
	respond_with(req, status, type, body, len, MHD_RESPMEM_MUST_FREE,
	    "no-store");
}

void
http_respond_static(struct request *req, unsigned status,
    const struct http_static *f)
{
	respond_with(req, status, status == 304 ? NULL : f->type,
	    status == 304 ? NULL : (void *)(uintptr_t)f->data,
	    status == 304 ? 0 : f->len, MHD_RESPMEM_PERSISTENT, f->cache);
	if (req->response == NULL) {
		return;
	}
	MHD_add_response_header(req->response, MHD_HTTP_HEADER_ETAG, f->etag);
	MHD_add_response_header(req->response, MHD_HTTP_HEADER_VARY,
	    "Accept-Encoding");
	MHD_add_response_header(req->response, "X-Content-Type-Options",
	    "nosniff");
	if (f->csp != NULL) {
		MHD_add_response_header(req->response,
		    "Content-Security-Policy", f->csp);
		MHD_add_response_header(req->response, "X-Frame-Options",
		    "DENY");
		MHD_add_response_header(req->response, "Referrer-Policy",
		    "no-referrer");
	}
	if (f->encoding != NULL && status != 304) {
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_CONTENT_ENCODING, f->encoding);
	}
}

void
http_respond_json(struct request *req, unsigned status, json_t *body)
{
	char *text = body != NULL ? jsonutil_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (text == NULL) {
		log_at(LVL_ERROR, req->id, "out of memory building a response");
		return;		/* on_request answers 500 */
	}
	respond_raw(req, status, JSON_TYPE, text, strlen(text));
}

void
http_respond_empty(struct request *req, unsigned status)
{
	respond_raw(req, status, NULL, NULL, 0);
}

void
http_respond_text(struct request *req, unsigned status, const char *type,
    struct strbuf *body)
{
	char *text = body->data;
	size_t len = body->len;

	if (strbuf_failed(body) || text == NULL) {
		strbuf_finish(body);
		return;		/* on_request answers 500 */
	}
	strbuf_init(body);
	respond_raw(req, status, type, text, len);
}

/* What the caller reads of an error. libpq's text names hosts, ports,
 * users, columns and values: the log keeps it, the caller gets what the
 * code means. */
static const char *
error_public_message(const struct error *err)
{
	switch (err->code) {
	case ERR_DATABASE:
		return "the database could not run the request";
	case ERR_DATABASE_UNAVAILABLE:
		return "PostgreSQL cannot be reached; nothing was stored or "
		    "changed, retry later";
	default:
		return err->message;
	}
}

void
http_respond_error(struct request *req, const struct error *err)
{
	unsigned status = error_http_status(err->code);
	struct strbuf sb;

	strbuf_init(&sb);
	strbuf_append_str(&sb, "{\"error\":{\"code\":\"");
	strbuf_append_str(&sb, error_code_name(err->code));
	strbuf_append_str(&sb, "\",\"message\":\"");
	strbuf_append_json_escaped(&sb, error_public_message(err));
	strbuf_append_str(&sb, "\"}}");
	if (strbuf_failed(&sb)) {
		strbuf_finish(&sb);
		return;
	}
	if (status >= 500) {
		log_at(LVL_WARN, req->id, "%u %s: %s", status,
		    error_code_name(err->code), err->message);
	}
	respond_raw(req, status, JSON_TYPE, sb.data, sb.len);
	if (req->response != NULL && (err->code == ERR_MISSING_API_KEY ||
	    err->code == ERR_INVALID_API_KEY)) {
		MHD_add_response_header(req->response,
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"milepost\"");
	}
}

bool
http_request_admit(struct request *req, enum http_limit which,
    const char *key, double cost, struct error *err)
{
	struct ratelimit *rl = req->http->limits[which];
	long retry = 1;

	if (rl == NULL || ratelimit_take(rl, key, strlen(key), cost, &retry)) {
		return true;
	}
	req->retry_after_s = retry;
	error_set(err, ERR_RATE_LIMITED, which == HTTP_LIMIT_IP ?
	    "too many requests from this address; retry in %lds" :
	    "too many events for this site; retry in %lds", retry);
	return false;
}

bool
http_request_admit_client(struct request *req, const char *header,
    struct error *err)
{
	char ip[HTTP_IP_TEXT_LEN] = "";
	char key[NETADDR_KEY_LEN] = "";
	bool ok;

	if (req->http->limits[HTTP_LIMIT_IP] == NULL) {
		return true;
	}
	/* An unknown address shares the bucket of "". An IPv6 client is
	 * keyed by its /64, inside which it may rotate addresses. */
	if (!http_request_client_ip(req, header, ip) ||
	    !netaddr_client_key(ip, key)) {
		key[0] = '\0';
	}
	ok = http_request_admit(req, HTTP_LIMIT_IP, key, 1, err);
	privacy_wipe(ip, sizeof(ip));
	privacy_wipe(key, sizeof(key));
	return ok;
}

void
http_request_suspend(struct request *req,
    void (*on_resume)(struct request *req))
{
	req->on_resume = on_resume;
	MHD_suspend_connection(req->conn);
}

void
http_request_resume(struct request *req)
{
	MHD_resume_connection(req->conn);
}

static struct request *
request_new(struct http *h, struct MHD_Connection *conn, const char *url,
    const char *method, bool path_refused)
{
	struct request *req = calloc(1, sizeof(*req));
	const char *param;

	if (req == NULL) {
		return NULL;
	}
	req->http = h;
	req->conn = conn;
	req->path_refused = path_refused;
	req->started_ns = timeutil_monotonic_ns();
	strbuf_init(&req->body);
	strbuf_init(&req->asked);
	snprintf(req->id, sizeof(req->id), "%08lx%08lx", h->id_prefix,
	    atomic_fetch_add(&h->next_id, 1) & 0xffffffffUL);
	req->route = routes_find(method, url, req->allow, sizeof(req->allow),
	    &param);
	if (param != NULL) {
		req->path_param = strdup(param);
		if (req->path_param == NULL) {
			strbuf_finish(&req->body);
			free(req);
			return NULL;
		}
	}
	atomic_fetch_add(&h->in_flight, 1);
	return req;
}

static void
request_free(struct request *req)
{
	if (req->ctx_free != NULL) {
		req->ctx_free(req->ctx);
	}
	if (req->response != NULL) {
		MHD_destroy_response(req->response);
	}
	strbuf_finish(&req->body);
	strbuf_finish(&req->asked);
	free(req->path_param);
	/* With keep-alive, the next request's time starts now. */
	deadline_set_busy(req->http->deadline, req->conn, false);
	atomic_fetch_sub(&req->http->in_flight, 1);
	free(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *req = *con_cls;

	(void)cls;
	(void)conn;
	if (req == NULL || *con_cls == (void *)&refused_path) {
		*con_cls = NULL;
		return;
	}
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		log_at(LVL_DEBUG, req->id, "request ended early (code %d)",
		    (int)toe);
	}
	if (req->status != 0) {
		http_stats_record(req->http->stats, req->route, req->status,
		    timeutil_monotonic_ns() - req->started_ns);
	}
	request_free(req);
	*con_cls = NULL;
}

static void
respond_code(struct request *req, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers with an error unless an answer was already set. */
static void
respond_code(struct request *req, enum err_code code, const char *fmt, ...)
{
	struct error err = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	http_respond_error(req, &err);
}

/* Past this many bytes of an oversized body, stop reading it and answer
 * at once: the client may then see a reset instead of the 413, but a
 * hostile sender cannot keep a thread busy forever. */
#define DISCARD_MAX_BYTES (16u << 20)

/* Keeps the body, or counts what is discarded once it is too large.
 * Returns false when the answer must go out now. */
static bool
body_append(struct request *req, const char *data, size_t len)
{
	size_t max = (size_t)req->http->app->cfg->max_body_bytes;

	if (req->response != NULL) {
		req->discarded += len;
		return req->discarded <= DISCARD_MAX_BYTES;
	}
	if (len > max - req->body.len) {
		/* Reading the rest lets the client read the answer. */
		respond_code(req, ERR_PAYLOAD_TOO_LARGE, "the body exceeds %zu "
		    "bytes", max);
		strbuf_finish(&req->body);
		req->discarded = len;
		return true;
	}
	strbuf_append(&req->body, data, len);
	if (strbuf_failed(&req->body)) {
		respond_code(req, ERR_INTERNAL, "%s", "out of memory");
		return false;
	}
	return true;
}

static enum MHD_Result
queue(struct request *req)
{
	if (req->response == NULL) {
		respond_code(req, ERR_INTERNAL, "%s", "the request could not be "
		    "answered");
	}
	if (req->response == NULL) {
		return MHD_NO;
	}
	log_at(LVL_DEBUG, req->id, "answered %u", req->status);
	return MHD_queue_response(req->conn, req->status, req->response);
}

struct text_walk {
	struct error *err;
	bool ok;
};

/* Refuses a query parameter whose name or value holds a NUL (%00, which
 * the C strings libmicrohttpd gives would silently cut) or is no UTF-8:
 * nothing downstream (PostgreSQL, JSON, the logs) takes it. */
static enum MHD_Result
text_walk_one(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct text_walk *w = cls;

	(void)kind;
	if (!utf8_is_text(key, key_size)) {
		error_set(w->err, ERR_INVALID_PARAMETER, "a query parameter "
		    "name is not UTF-8 text or holds a NUL");
	} else if (value != NULL && !utf8_is_text(value, value_size)) {
		error_set(w->err, ERR_INVALID_PARAMETER, "query parameter "
		    "%.64s is not UTF-8 text or holds a NUL", key);
	} else {
		return MHD_YES;
	}
	w->ok = false;
	return MHD_NO;
}

/* The one check of the text every handler reads: the path (404: no
 * resource has such a name) and each query parameter (400). */
static bool
request_is_text(struct request *req, struct error *err)
{
	struct text_walk w = { err, true };

	if (req->path_refused) {
		error_set(err, ERR_NOT_FOUND, "nothing is served at this path: "
		    "it is not UTF-8 text or holds a NUL");
		return false;
	}
	MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND,
	    text_walk_one, &w);
	return w.ok;
}

/* Runs the handler, or the continuation of a resumed request. */
static void
dispatch(struct request *req, const char *url)
{
	void (*resume)(struct request *) = req->on_resume;
	struct error err;

	if (resume != NULL) {
		req->on_resume = NULL;
		resume(req);
		return;
	}
	req->dispatched = true;
	deadline_set_busy(req->http->deadline, req->conn, true);
	if (!request_is_text(req, &err)) {
		http_respond_error(req, &err);
	} else if (req->route != NULL) {
		req->route->handle(req, req->http->app);
	} else if (req->allow[0] != '\0') {
		respond_code(req, ERR_METHOD_NOT_ALLOWED, "use %s on this path",
		    req->allow);
	} else {
		respond_code(req, ERR_NOT_FOUND, "no endpoint at %.200s", url);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct request *req = *con_cls;

	(void)version;
	if (req == NULL || *con_cls == (void *)&refused_path) {
		req = request_new(h, conn, url, method, req != NULL);
		*con_cls = req;
		return req != NULL ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size > 0) {
		size_t len = *upload_data_size;
		*upload_data_size = 0;
		if (!body_append(req, upload_data, len)) {
			/* libmicrohttpd closes the connection after this
			 * answer rather than read the rest. */
			return queue(req);
		}
		return MHD_YES;
	}
	if (req->response == NULL && (!req->dispatched ||
	    req->on_resume != NULL)) {
		dispatch(req, url);
		if (req->response == NULL && req->on_resume != NULL) {
			return MHD_YES;		/* suspended */
		}
	}
	return queue(req);
}

/* libmicrohttpd's first word on a request: its raw URI, before the path
 * is decoded into a C string that a %00 would cut short ("/js/a.js%00x"
 * would be served as /js/a.js). Decodes the path as libmicrohttpd does
 * (%XX; '+' is only a byte) and checks it is UTF-8 text. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const char *p = uri, *end = uri + strcspn(uri, "?");
	unsigned char buf[4];
	size_t n = 0, len;

	(void)cls;
	(void)conn;
	while (p < end || n > 0) {
		while (p < end && n < sizeof(buf)) {
			buf[n++] = urltext_next_decoded(&p, end);
		}
		len = buf[0] != 0 ? utf8_char_len(buf, n) : 0;
		if (len == 0) {
			return &refused_path;
		}
		memmove(buf, buf + len, n - len);
		n -= len;
	}
	return NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n') {
		msg[--n] = '\0';
	}
	log_warn("libmicrohttpd: %s", msg);
}

/* Parses "host:port", "[v6]:port" or ":port" into a socket address. */
static bool
parse_listen(const char *listen, struct sockaddr_storage *ss,
    struct error *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':'), *port;
	struct addrinfo hints = { 0 }, *ai = NULL;
	size_t hlen;
	int rc;

	if (colon == NULL || colon[1] == '\0') {
		error_set(err, ERR_CONFIG, "listen: expected HOST:PORT, got "
		    "'%s'", listen);
		return false;
	}
	port = colon + 1;
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		error_set(err, ERR_CONFIG, "listen: host name too long");
		return false;
	}
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(hlen > 0 ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		error_set(err, ERR_CONFIG, "listen: cannot resolve '%s': %s",
		    listen, gai_strerror(rc));
		return false;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return true;
}

/* New connections are turned away (closed at once) while stopping. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http *h = cls;

	(void)addr;
	(void)addrlen;
	return atomic_load(&h->quiescing) ? MHD_NO : MHD_YES;
}

/* The rate limits, the request deadline and the TLS files of cfg. */
static bool
limits_new(struct http *h, const struct config *cfg, struct error *err)
{
	long burst_ip = cfg->rate_limit_burst_per_ip > 0 ?
	    cfg->rate_limit_burst_per_ip : cfg->rate_limit_per_ip;
	long burst_key = cfg->rate_limit_burst_per_key > 0 ?
	    cfg->rate_limit_burst_per_key : cfg->rate_limit_per_key;

	if (cfg->rate_limit_per_ip > 0 && (h->limits[HTTP_LIMIT_IP] =
	    ratelimit_new((double)cfg->rate_limit_per_ip, (double)burst_ip,
	    RATE_SLOTS, timeutil_monotonic_ms, err)) == NULL) {
		return false;
	}
	if (cfg->rate_limit_per_key > 0 && (h->limits[HTTP_LIMIT_KEY] =
	    ratelimit_new((double)cfg->rate_limit_per_key,
	    (double)burst_key, RATE_SLOTS, timeutil_monotonic_ms,
	    err)) == NULL) {
		return false;
	}
	h->deadline = deadline_new(cfg->request_timeout_s, err);
	return h->deadline != NULL && tls_pem_load(cfg, &h->tls, err);
}

static void
limits_free(struct http *h)
{
	for (size_t i = 0; i < HTTP_LIMITS_; i++) {
		ratelimit_free(h->limits[i]);
	}
	deadline_free(h->deadline);
	tls_pem_finish(&h->tls);
}

#define LIMIT_OPTIONS 6

/* The libmicrohttpd options of the limits and of TLS into opts (ended by
 * MHD_OPTION_END); returns the daemon flags they need. */
static unsigned int
limit_options(struct http *h, const struct config *cfg,
    struct MHD_OptionItem opts[LIMIT_OPTIONS])
{
	size_t n = 0;

	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (intptr_t)cfg->max_connections_per_ip, NULL };
	/* Holds the request line and headers (and the buffers): beyond
	 * it libmicrohttpd answers 431 or 414 itself. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (intptr_t)cfg->max_header_bytes, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
	    (intptr_t)deadline_notify, h->deadline };
	if (h->tls.cert != NULL) {
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY,
		    0, h->tls.key };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT,
		    0, h->tls.cert };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return h->tls.cert != NULL ? MHD_USE_TLS : 0;
}

struct http *
http_new(struct app *app, struct error *err)
{
	const struct config *cfg = app->cfg;
	struct sockaddr_storage ss = { 0 };
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem limits[LIMIT_OPTIONS];
	struct http *h;

	if (!parse_listen(cfg->listen, &ss, err)) {
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	h->app = app;
	h->stats = http_stats_new();
	if (h->stats == NULL || !limits_new(h, cfg, err)) {
		if (h->stats == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
		}
		http_stats_free(h->stats);
		limits_free(h);
		free(h);
		return NULL;
	}
	flags |= limit_options(h, cfg, limits);
	if (getrandom(&h->id_prefix, sizeof(h->id_prefix), 0) < 0) {
		h->id_prefix = (unsigned long)time(NULL);
	}
	h->id_prefix &= 0xffffffffUL;
	if (ss.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
	}
	/* The logger goes first, or libmicrohttpd logs the options before
	 * it with its own (non-JSON) logger. */
	h->daemon = MHD_start_daemon(flags, 0, on_accept, h, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)cfg->connection_timeout_s,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
	    MHD_OPTION_ARRAY, limits,
	    MHD_OPTION_END);
	if (h->daemon == NULL) {
		error_set(err, ERR_IO, "cannot listen on %s (address in use "
		    "or not permitted%s)", cfg->listen, h->tls.cert != NULL ?
		    ", or the TLS certificate and key do not match" : "");
		http_stats_free(h->stats);
		limits_free(h);
		free(h);
		return NULL;
	}
	return h;
}

void
http_quiesce(struct http *h)
{
	/* Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it removes the
	 * listening socket from each worker's epoll set while the worker may
	 * be removing it too, and the loser aborts the process ("Failed to
	 * remove listen FD from epoll set"). on_accept refuses instead; the
	 * socket closes with the daemon. */
	atomic_store(&h->quiescing, true);
}

bool
http_wait_idle(struct http *h, long timeout_ms)
{
	int64_t until = timeutil_monotonic_ms() + timeout_ms;
	struct timespec tick = { 0, 10 * 1000000L };

	while (atomic_load(&h->in_flight) > 0) {
		if (timeutil_monotonic_ms() >= until) {
			return false;
		}
		nanosleep(&tick, NULL);
	}
	return true;
}

void
http_free(struct http *h)
{
	if (h == NULL) {
		return;
	}
	MHD_stop_daemon(h->daemon);
	http_stats_free(h->stats);
	limits_free(h);
	free(h);
}
