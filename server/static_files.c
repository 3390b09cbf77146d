/* static_files.c - files compiled into the binary, served with caching. */
#include "server/static_files.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/gzip.h"
#include "common/log.h"
#include "server/embedded.h"
#include "server/http.h"

#define STATIC_MAX 8
#define ETAG_BYTES 12

/* The script URL has no version in it, so caches keep it an hour and then
 * revalidate with the ETag (a 304 costs a few bytes). */
#define CACHE_CONTROL "public, max-age=3600"

/* The dashboard's page and its assets must change together when the
 * binary does, so the browser revalidates each every time. */
#define DASHBOARD_CACHE "no-cache"

/* The dashboard runs only its own files and talks only to this daemon:
 * no inline script or style, no other host, no framing. */
#define DASHBOARD_CSP "default-src 'self'; script-src 'self'; " \
	"style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"object-src 'none'; base-uri 'none'; form-action 'self'; " \
	"frame-ancestors 'none'"

struct prepared {
	const char *name;
	char etag[2 * ETAG_BYTES + 3];
	struct strbuf gz;
	struct http_static plain, gzip;
	bool has_gzip;
};

/* The files of one URL prefix. */
struct file_set {
	const char *prefix;		/* for messages */
	const struct embedded_file *embedded;
	const size_t *count;
	const char *cache, *csp;
	struct prepared files[STATIC_MAX];
	size_t n;
};

static struct file_set snippet_set = { "/js/", static_embedded,
	&static_embedded_count, CACHE_CONTROL, NULL, { { 0 } }, 0 };
static struct file_set dashboard_set = { "/dashboard/", dashboard_embedded,
	&dashboard_embedded_count, DASHBOARD_CACHE, DASHBOARD_CSP, { { 0 } },
	0 };
static pthread_once_t prepare_once = PTHREAD_ONCE_INIT;

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
};

static const char *
type_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]);
	    i++) {
		if (strcmp(dot, types[i].ext) == 0) {
			return types[i].type;
		}
	}
	return "application/octet-stream";
}

static void
prepare_one(struct file_set *set, const struct embedded_file *e)
{
	struct prepared *p = &set->files[set->n++];
	unsigned char hash[ETAG_BYTES];
	char hex[2 * ETAG_BYTES + 1];

	p->name = e->name;
	crypto_generichash(hash, sizeof(hash), e->data, e->len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(p->etag, sizeof(p->etag), "\"%s\"", hex);
	p->plain = (struct http_static){ .data = e->data, .len = e->len,
		.type = type_of(e->name), .etag = p->etag,
		.cache = set->cache, .csp = set->csp };
	strbuf_init(&p->gz);
	p->has_gzip = gzip_compress(e->data, e->len, &p->gz);
	if (!p->has_gzip) {
		log_warn("static file %s: no memory to compress it; "
		    "served as it is", e->name);
		return;
	}
	p->gzip = p->plain;
	p->gzip.data = p->gz.data;
	p->gzip.len = p->gz.len;
	p->gzip.encoding = "gzip";
}

static void
prepare(void)
{
	struct file_set *sets[] = { &snippet_set, &dashboard_set };

	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		for (size_t i = 0; i < *sets[s]->count && i < STATIC_MAX; i++) {
			prepare_one(sets[s], &sets[s]->embedded[i]);
		}
	}
}

/* Whether an Accept-Encoding value takes gzip: a "gzip" or "*" coding
 * without q=0. */
static bool
accepts_gzip(const char *ae)
{
	while (ae != NULL && *ae != '\0') {
		size_t n;
		ae += strspn(ae, " \t,");
		n = strcspn(ae, ",");
		size_t name = strcspn(ae, " \t;,");
		if ((name == 4 && strncasecmp(ae, "gzip", 4) == 0) ||
		    (name == 1 && ae[0] == '*')) {
			const char *q = ae + name;
			q += strspn(q, " \t;");
			bool zero = (strncasecmp(q, "q=0", 3) == 0) &&
			    strspn(q + 3, ".0") == strcspn(q + 3, " \t,");
			return !zero;
		}
		ae += n;
	}
	return false;
}

/* Answers req with the file name of set, or 404. */
static void
serve_from(struct request *req, struct file_set *set, const char *name)
{
	const char *inm = http_request_header(req, "If-None-Match");
	struct error err;

	pthread_once(&prepare_once, prepare);
	for (size_t i = 0; name != NULL && i < set->n; i++) {
		struct prepared *p = &set->files[i];
		if (strcmp(p->name, name) != 0) {
			continue;
		}
		if (inm != NULL && (strstr(inm, p->etag) != NULL ||
		    strcmp(inm, "*") == 0)) {
			http_respond_static(req, 304, &p->plain);
		} else if (p->has_gzip && accepts_gzip(http_request_header(req,
		    "Accept-Encoding"))) {
			http_respond_static(req, 200, &p->gzip);
		} else {
			http_respond_static(req, 200, &p->plain);
		}
		return;
	}
	error_set(&err, ERR_NOT_FOUND, "no file %s%.100s", set->prefix,
	    name != NULL ? name : "");
	http_respond_error(req, &err);
}

void
static_files_serve(struct request *req, struct app *app)
{
	(void)app;
	serve_from(req, &snippet_set, http_request_path_param(req));
}

void
static_files_dashboard(struct request *req, struct app *app)
{
	const char *name = http_request_path_param(req);

	(void)app;
	serve_from(req, &dashboard_set, name != NULL ? name : "index.html");
}
