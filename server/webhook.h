/* webhook.h - one POST of a JSON body to a webhook with libcurl: bounded
 * in time, no redirects, http and https only, to public addresses only
 * unless allowed (the check is on each address connected to, after DNS,
 * so a name that resolves to an internal address is refused too), and
 * when a secret is given an HMAC-SHA256 of the body in
 * X-Milepost-Signature. */
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

struct webhook_options {
	const char *secret;	/* "" for no signature */
	long timeout_s;		/* for the whole call */
	bool allow_private;	/* loopback, private, link-local... too */
	const char *proxy;	/* "" for a direct call: no proxy variable of
				 * the environment is read */
};

/* POSTs body (len bytes of JSON) to url. True on a 2xx answer. */
bool webhook_post(const char *url, const char *body, size_t len,
    const struct webhook_options *opt, struct webhook_result *out);

/* The signature header's value for body: "sha256=" and the hex HMAC,
 * into out (WEBHOOK_SIGNATURE_LEN bytes). */
#define WEBHOOK_SIGNATURE_LEN (7 + 64 + 1)
void webhook_signature(const char *secret, const char *body, size_t len,
    char out[WEBHOOK_SIGNATURE_LEN]);

#endif
