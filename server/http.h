/* http.h - the HTTP daemon (libmicrohttpd) and the life of one request.
 *
 * http.c owns connections, body limits, routing (routes.h) and response
 * queuing; handlers see a struct request, answer it with http_respond_*,
 * or suspend it until another thread calls http_request_resume. All state
 * of one request hangs off its struct request, freed when libmicrohttpd
 * reports the request completed. */
#ifndef MILEPOST_SERVER_HTTP_H
#define MILEPOST_SERVER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "server/app.h"

struct http;
struct http_stats;
struct request;

/* Starts listening on app->cfg->listen. app is borrowed. */
struct http *http_new(struct app *app, struct error *err);

/* Stops accepting connections; requests in flight go on. */
void http_quiesce(struct http *h);

/* Waits until no request is in flight, at most timeout_ms. Returns true
 * if none is. */
bool http_wait_idle(struct http *h, long timeout_ms);

/* Closes every connection and frees h. Every suspended request must have
 * been resumed. NULL is fine. */
void http_free(struct http *h);

/* What the daemon answering req measured of its requests
 * (server/http_stats.h); valid while it runs. */
const struct http_stats *http_request_stats(const struct request *req);
/* Connections cut for taking longer than request_timeout_s to send their
 * request (server/deadline.h), since start. */
unsigned long long http_request_connections_cut(const struct request *req);

/* Valid until the request completes. */
const char *http_request_id(const struct request *req);
const char *http_request_header(struct request *req, const char *name);
const char *http_request_query(struct request *req, const char *name);
/* Records that the handler took the parameter name, read otherwise
 * than with http_request_query (a family such as lookback.<channel>,
 * read with http_request_query_each). */
void http_request_query_taken(struct request *req, const char *name);
/* A query parameter the handler never asked for with http_request_query
 * (a misspelt one, say), or NULL; then the names it asked for, comma
 * separated, are appended to asked. Borrowed from req. */
const char *http_request_query_unasked(struct request *req,
    struct strbuf *asked);
/* Calls fn with each query parameter in turn while it returns true;
 * false if fn stopped it. */
bool http_request_query_each(struct request *req,
    bool (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* INET6_ADDRSTRLEN */
#define HTTP_IP_TEXT_LEN 46

/* The client's address as text: the last entry of the header (when given
 * and present, e.g. X-Forwarded-For behind a proxy, and an IPv4 or IPv6
 * address, rewritten in its canonical form) or else the peer address.
 * Callers must not store or log it. */
bool http_request_client_ip(struct request *req, const char *header,
    char out[HTTP_IP_TEXT_LEN]);
/* The part of the path after a prefix route (e.g. the id of
 * /api/v1/people/{id}), or NULL. */
const char *http_request_path_param(const struct request *req);
const void *http_request_body(const struct request *req, size_t *len);

/* Handler-owned state, freed with free_fn when the request completes. */
void http_request_set_context(struct request *req, void *ctx,
    void (*free_fn)(void *ctx));
void *http_request_context(struct request *req);

/* Answers with status and body (a new reference the call steals). */
/* Lets the browser of the request's Origin read the answer (CORS
 * headers echo that origin); with preflight, the answer to an OPTIONS
 * preflight also names the methods and headers allowed. Call before
 * responding. */
void http_request_allow_origin(struct request *req, bool preflight);

/* A file served as it is, with caching headers. */
struct http_static {
	const void *data;	/* lives as long as the daemon */
	size_t len;
	const char *type;	/* Content-Type */
	const char *encoding;	/* Content-Encoding, or NULL */
	const char *etag;	/* quoted */
	const char *cache;	/* Cache-Control */
	/* Content-Security-Policy (and the other headers a page needs to
	 * be framed or sniffed by nobody), or NULL for a plain file. */
	const char *csp;
};

/* Answers 200 with f, or 304 (no body) when status is 304; both carry f's
 * ETag, Cache-Control, Vary: Accept-Encoding, X-Content-Type-Options:
 * nosniff, and with f->csp the page's security headers. */
void http_respond_static(struct request *req, unsigned status,
    const struct http_static *f);

/* Answers status with no body (204, for instance). */
void http_respond_empty(struct request *req, unsigned status);

void http_respond_json(struct request *req, unsigned status, json_t *body);

/* Answers with status and the text in body (e.g. Prometheus metrics),
 * whose memory the response takes over; body is left empty. */
void http_respond_text(struct request *req, unsigned status,
    const char *type, struct strbuf *body);

/* Answers {"error":{"code","message"}} with the code's status (and
 * Retry-After for 503). */
void http_respond_error(struct request *req, const struct error *err);

/* The rate limits (server/http.c), each off unless configured. */
enum http_limit {
	HTTP_LIMIT_IP,		/* requests per client address */
	HTTP_LIMIT_KEY,		/* events per site (write key) */
	HTTP_LIMITS_
};

/* Charges cost tokens to the bucket of key (a client address as text, a
 * site id) in limit which. True if admitted, or that limit is off; false
 * with ERR_RATE_LIMITED in err, and the error answer then carries
 * Retry-After with the seconds until the bucket holds enough. */
bool http_request_admit(struct request *req, enum http_limit which,
    const char *key, double cost, struct error *err);

/* Charges one request to the client address's bucket of HTTP_LIMIT_IP
 * (the address as http_request_client_ip finds it with header; an IPv6
 * client by its /64, see netaddr_client_key), as http_request_admit
 * does. With that limit off, the address is not even looked up. */
bool http_request_admit_client(struct request *req, const char *header,
    struct error *err);

/* Parks the request: on_resume is called on the request's thread after
 * http_request_resume, and must answer it. */
void http_request_suspend(struct request *req,
    void (*on_resume)(struct request *req));

/* Wakes a suspended request; safe from any thread, once per suspend. */
void http_request_resume(struct request *req);

#endif
