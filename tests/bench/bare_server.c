/*
 * bare_server.c - the HTTP baseline of tests/bench/ingest.sh.
 *
 * The least work an ingestion endpoint can do with the same libraries as the
 * daemon: libmicrohttpd with an internal epoll thread pool of 2 threads
 * (the daemon's default http_threads), jansson to parse the body, and a 202
 * with the daemon's answer shape. Nothing is validated, nothing is stored.
 * The daemon's req/s is reported as a ratio of this server's, measured in
 * the same run on the same machine.
 *
 *   bench-bare-server PORT        listens on 127.0.0.1:PORT until SIGINT/SIGTERM
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* sigwait; meson already defines it */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#define HTTP_THREADS   2u
#define MAX_BODY_BYTES (512u * 1024u) /* the daemon's max_body_bytes default */

#ifndef MHD_HTTP_CONTENT_TOO_LARGE /* before 0.9.74 it was only MHD_HTTP_PAYLOAD_TOO_LARGE */
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif

/* One request's state, from the first handler call to the completion callback. */
struct request {
	char *body;
	size_t len;
	size_t cap;
	int too_large; /* the body went over MAX_BODY_BYTES: drop the rest, answer 413 */
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *json)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(json), (void *)(uintptr_t)json, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int append(struct request *req, const char *data, size_t size)
{
	if (req->len + size > MAX_BODY_BYTES) {
		req->too_large = 1;
		return 0;
	}
	if (req->len + size > req->cap) {
		size_t cap = req->cap ? req->cap : 4096;
		while (cap < req->len + size)
			cap *= 2;
		char *p = realloc(req->body, cap);
		if (p == NULL)
			return -1;
		req->body = p;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, size);
	req->len += size;
	return 0;
}

/* The events in a parsed body: the batch length, or 1 for a single event. */
static size_t event_count(const json_t *doc)
{
	const json_t *batch = json_object_get(doc, "batch");
	return json_is_array(batch) ? json_array_size(batch) : 1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
	(void)cls;
	(void)version;
	struct request *req = *con_cls;

	/* First call: headers only. Answering now would make libmicrohttpd close the
	 * connection (the body is unread), so only set up the state. */
	if (req == NULL) {
		req = calloc(1, sizeof *req);
		if (req == NULL)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}

	/* Middle calls: a chunk of body. */
	if (*upload_data_size != 0) {
		if (!req->too_large && append(req, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* Last call: the whole body is in. */
	if (strcmp(url, "/v1/events") != 0)
		return answer(conn, MHD_HTTP_NOT_FOUND,
		              "{\"error\":{\"code\":\"not_found\",\"message\":\"No such path.\"}}");
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		              "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Use POST.\"}}");
	if (req->too_large)
		return answer(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		              "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"Body too large.\"}}");

	json_error_t err;
	json_t *doc = json_loadb(req->body ? req->body : "", req->len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return answer(conn, MHD_HTTP_BAD_REQUEST,
		              "{\"error\":{\"code\":\"malformed_json\",\"message\":\"Body is not a JSON object.\"}}");
	}
	char out[64];
	snprintf(out, sizeof out, "{\"accepted\":%zu,\"rejected\":[]}", event_count(doc));
	json_decref(doc);
	return answer(conn, MHD_HTTP_ACCEPTED, out);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct request *req = *con_cls;
	if (req != NULL) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	char *end;
	errno = 0;
	long port = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "%s: invalid port '%s'\n", argv[0], argv[1]);
		return 2;
	}

	/* Block the stop signals before any thread exists, so that every
	 * libmicrohttpd thread inherits the mask and main alone receives them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
		fprintf(stderr, "%s: cannot block signals\n", argv[0]);
		return 1;
	}

	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
		NULL, NULL, handle, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
		MHD_OPTION_CONNECTION_LIMIT, 1024u,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1:%ld\n", argv[0], port);
		return 1;
	}
	fprintf(stderr, "bench-bare-server: listening on 127.0.0.1:%ld\n", port);

	int sig = 0;
	if (sigwait(&stop, &sig) != 0)
		sig = 0;
	fprintf(stderr, "bench-bare-server: signal %d, stopping\n", sig);
	MHD_stop_daemon(d);
	return 0;
}
