/* webhook.c - POSTing alert notifications (libcurl, libsodium). */
#include "server/webhook.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/netaddr.h"

bool
webhook_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void
webhook_cleanup(void)
{
	curl_global_cleanup();
}

void
webhook_signature(const char *secret, const char *body, size_t len,
    char out[WEBHOOK_SIGNATURE_LEN])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
	    strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, WEBHOOK_SIGNATURE_LEN - 7, mac, sizeof(mac));
}

struct connect_guard {
	bool allow_private;
	bool refused;		/* an address was not public */
};

/* libcurl's socket for each address it connects to: refused (no socket)
 * for an address that is not public, unless allowed. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct connect_guard *guard = arg;

	(void)purpose;
	if (!guard->allow_private && !netaddr_is_public(&address->addr)) {
		guard->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

/* The answer's body is not wanted: read and dropped. */
static size_t
discard(char *data, size_t size, size_t n, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * n;
}

bool
webhook_post(const char *url, const char *body, size_t len,
    const struct webhook_options *opt, struct webhook_result *out)
{
	struct connect_guard guard = { .allow_private = opt->allow_private };
	const char *secret = opt->secret;
	char signature[sizeof("X-Milepost-Signature: ") + WEBHOOK_SIGNATURE_LEN];
	struct curl_slist *headers = NULL, *more;
	CURL *curl = curl_easy_init();
	CURLcode rc;

	out->status = 0;
	out->error[0] = '\0';
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (secret[0] != '\0' && headers != NULL) {
		memcpy(signature, "X-Milepost-Signature: ", 22);
		webhook_signature(secret, body, len, signature + 22);
		more = curl_slist_append(headers, signature);
		if (more == NULL) {
			curl_slist_free_all(headers);
		}
		headers = more;
	}
	if (curl == NULL || headers == NULL) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		curl_slist_free_all(headers);
		curl_easy_cleanup(curl);
		return false;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* An http_proxy variable in the container would otherwise send every
	 * alert, and its signature, through a host nobody configured here. */
	if (opt->proxy[0] != '\0') {
		curl_easy_setopt(curl, CURLOPT_PROXY, opt->proxy);
	} else {
		curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	}
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, opt->timeout_s);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, opt->timeout_s);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &guard);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "milepost/" MILEPOST_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
		if (out->status < 200 || out->status > 299) {
			snprintf(out->error, sizeof(out->error), "answered %ld",
			    out->status);
		}
	} else if (guard.refused) {
		snprintf(out->error, sizeof(out->error), "refused: the host "
		    "has no public address (alert_webhook_allow_private)");
	} else {
		snprintf(out->error, sizeof(out->error), "%s",
		    curl_easy_strerror(rc));
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return out->error[0] == '\0';
}
