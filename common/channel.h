/* channel.h - where a visit came from: campaign parameters from the URL
 * (or given explicitly), the referrer's host, and the marketing channel
 * they add up to, in the spirit of GA4's default channel groups.
 *
 * The rules are tables (search engines, social networks, mediums) in
 * channel.c and documented in docs/enrichment.md; a configuration can add
 * rules of its own that are tried first. Pure functions apart from the
 * compiled rules object, which is immutable once built. */
#ifndef MILEPOST_COMMON_CHANNEL_H
#define MILEPOST_COMMON_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define CHANNEL_FIELD_MAX 256
#define CHANNEL_HOST_MAX 256

enum channel {
	CHANNEL_DIRECT,
	CHANNEL_ORGANIC_SEARCH,
	CHANNEL_PAID_SEARCH,
	CHANNEL_ORGANIC_SOCIAL,
	CHANNEL_PAID_SOCIAL,
	CHANNEL_EMAIL,
	CHANNEL_REFERRAL,
	CHANNEL_DISPLAY,
	CHANNEL_AFFILIATES,
	CHANNEL_UNASSIGNED,
	CHANNEL_COUNT_
};

/* The campaign of a visit. Empty strings mean absent. Values are
 * percent-decoded, '+' read as a space, trimmed, truncated to
 * CHANNEL_FIELD_MAX - 1 bytes; source and medium are lower-cased (they
 * are matched against rules), the others kept as sent. */
struct campaign {
	char source[CHANNEL_FIELD_MAX];
	char medium[CHANNEL_FIELD_MAX];
	char name[CHANNEL_FIELD_MAX];		/* utm_campaign */
	char term[CHANNEL_FIELD_MAX];
	char content[CHANNEL_FIELD_MAX];
	char click_id_kind[16];	/* "gclid", "fbclid", "msclkid", ... or "" */
};

/* Reads utm_source, utm_medium, utm_campaign, utm_term, utm_content and
 * the first known click id (see privacy_is_click_id) from the query of
 * url (NULL: nothing). Parameter names are matched case-insensitively. */
void campaign_from_url(const char *url, struct campaign *out);

/* The lower-cased host of url without "www." and without port, into out
 * (size CHANNEL_HOST_MAX); "" when url is NULL, relative, or has no host.
 * Userinfo ("user:pw@") is skipped. */
void channel_url_host(const char *url, char out[CHANNEL_HOST_MAX]);

/* True if host is site_host or a subdomain of it (both already
 * normalised by channel_url_host), e.g. "shop.example.com" of
 * "example.com": such a referrer is internal navigation, not a source. */
bool channel_same_site(const char *host, const char *site_host);

/* Extra rules from the configuration, tried in order before the built-in
 * ones: each matches a POSIX ERE against the source, the medium or the
 * referrer host and names a channel. */
struct channel_rules;

/* Parses rules from a JSON array of {"field": "source"|"medium"|
 * "referrer", "pattern": ERE, "channel": "Paid Search"|...} objects
 * given as text (NULL or "[]": none). NULL with err (ERR_CONFIG naming the
 * rule index) on a bad rule. */
struct channel_rules *channel_rules_new(const char *json_text,
    struct error *err);
void channel_rules_free(struct channel_rules *rules);	/* NULL is fine */

/* The channel of a visit with campaign c and referrer host ref_host ("" if
 * none, or internal). rules may be NULL. */
enum channel channel_classify(const struct channel_rules *rules,
    const struct campaign *c, const char *ref_host);

/* "Direct", "Organic Search", ..., "Unassigned". */
const char *channel_name(enum channel ch);

/* The channel named name (exact, as channel_name spells it), or -1. */
int channel_from_name(const char *name);

/* The source a referrer host stands for when no utm_source is given:
 * "google" for www.google.co.uk, "facebook" for l.facebook.com, the host
 * itself otherwise; "" for "". Into out (size CHANNEL_FIELD_MAX). */
void channel_source_of_host(const char *host, char out[CHANNEL_FIELD_MAX]);

#endif
