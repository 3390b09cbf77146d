/* webhook.h - one POST of a JSON body to a webhook with libcurl: bounded
 * in time, no redirects, http and https only, and when a secret is given
 * an HMAC-SHA256 of the body in X-Milepost-Signature. */
#ifndef MILEPOST_SERVER_WEBHOOK_H
#define MILEPOST_SERVER_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

/* Once, before any thread calls webhook_post; false if libcurl cannot
 * start. */
bool webhook_init(void);
void webhook_cleanup(void);

struct webhook_result {
	long status;		/* the HTTP status; 0 when none came */
	char error[160];	/* why it failed, "" when it did not */
};

/* POSTs body (len bytes of JSON) to url, waiting at most timeout_s. True
 * on a 2xx answer. secret: "" for no signature. */
bool webhook_post(const char *url, const char *body, size_t len,
    const char *secret, long timeout_s, struct webhook_result *out);

/* The signature header's value for body: "sha256=" and the hex HMAC,
 * into out (WEBHOOK_SIGNATURE_LEN bytes). */
#define WEBHOOK_SIGNATURE_LEN (7 + 64 + 1)
void webhook_signature(const char *secret, const char *body, size_t len,
    char out[WEBHOOK_SIGNATURE_LEN]);

#endif
