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

struct prepared {
	const char *name;
	char etag[2 * ETAG_BYTES + 3];
	struct strbuf gz;
	struct http_static plain, gzip;
	bool has_gzip;
};

static struct prepared files[STATIC_MAX];
static size_t n_files;
static pthread_once_t prepare_once = PTHREAD_ONCE_INIT;

static const char *
type_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot != NULL && strcmp(dot, ".js") == 0) {
		return "text/javascript; charset=utf-8";
	}
	return "application/octet-stream";
}

static void
prepare(void)
{
	for (size_t i = 0; i < static_embedded_count && i < STATIC_MAX; i++) {
		const struct embedded_file *e = &static_embedded[i];
		struct prepared *p = &files[n_files++];
		unsigned char hash[ETAG_BYTES];
		char hex[2 * ETAG_BYTES + 1];

		p->name = e->name;
		crypto_generichash(hash, sizeof(hash), e->data, e->len, NULL, 0);
		sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
		snprintf(p->etag, sizeof(p->etag), "\"%s\"", hex);
		p->plain = (struct http_static){ .data = e->data, .len = e->len,
			.type = type_of(e->name), .etag = p->etag,
			.cache = CACHE_CONTROL };
		strbuf_init(&p->gz);
		p->has_gzip = gzip_compress(e->data, e->len, &p->gz);
		if (!p->has_gzip) {
			log_warn("static file %s: no memory to compress it; "
			    "served as it is", e->name);
			continue;
		}
		p->gzip = p->plain;
		p->gzip.data = p->gz.data;
		p->gzip.len = p->gz.len;
		p->gzip.encoding = "gzip";
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

void
static_files_serve(struct request *req, struct app *app)
{
	const char *name = http_request_path_param(req);
	const char *inm = http_request_header(req, "If-None-Match");
	struct error err;

	(void)app;
	pthread_once(&prepare_once, prepare);
	for (size_t i = 0; name != NULL && i < n_files; i++) {
		struct prepared *p = &files[i];
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
	error_set(&err, ERR_NOT_FOUND, "no file /js/%.100s",
	    name != NULL ? name : "");
	http_respond_error(req, &err);
}
