/* channel.c - campaign parameters, referrer hosts and channel groups.
 *
 * Everything that names a source, a medium or a click id is a table here;
 * channel_classify runs the steps of the steps[] table in order, the
 * first that answers wins. docs/enrichment.md ("Campaigns and channels")
 * lists the same tables and steps in the same order: change both. */
#include "common/channel.h"

#include <jansson.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ere.h"
#include "common/privacy.h"
#include "common/urltext.h"
#include "common/utf8.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* --- names ---------------------------------------------------------------- */

static const char *const channel_names[CHANNEL_COUNT_] = {
	[CHANNEL_DIRECT] = "Direct",
	[CHANNEL_ORGANIC_SEARCH] = "Organic Search",
	[CHANNEL_PAID_SEARCH] = "Paid Search",
	[CHANNEL_ORGANIC_SOCIAL] = "Organic Social",
	[CHANNEL_PAID_SOCIAL] = "Paid Social",
	[CHANNEL_EMAIL] = "Email",
	[CHANNEL_REFERRAL] = "Referral",
	[CHANNEL_DISPLAY] = "Display",
	[CHANNEL_AFFILIATES] = "Affiliates",
	[CHANNEL_UNASSIGNED] = "Unassigned",
};

const char *
channel_name(enum channel ch)
{
	/* A stored row must always name a channel the docs know. */
	if ((unsigned)ch >= CHANNEL_COUNT_) {
		return channel_names[CHANNEL_UNASSIGNED];
	}
	return channel_names[ch];
}

int
channel_from_name(const char *name)
{
	if (name == NULL) {
		return -1;
	}
	for (int i = 0; i < CHANNEL_COUNT_; i++) {
		if (strcmp(name, channel_names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

/* --- the tables ----------------------------------------------------------- */

/* What kind of place a source is. */
enum category {
	CAT_NONE,
	CAT_SEARCH,
	CAT_SOCIAL,
	CAT_EMAIL,
};

/* Hosts that stand for a source, first match wins, so that a host is
 * listed before a wider pattern that also covers it (mail.google.com
 * before google.*). "name.*" is name under any top-level domain, be it
 * one label (google.de) or a country's second level (google.co.uk,
 * google.com.br). With subdomains, a.b.host matches too. The last
 * entries of each block are the ids of Android apps, which browsers send
 * as android-app://<id>/ referrers. */
static const struct host_source {
	const char *pattern;
	bool subdomains;
	const char *source;
} host_sources[] = {
	/* Webmail, ahead of the search engines sharing their domains. */
	{ "mail.google.com", false, "gmail" },
	{ "outlook.live.com", false, "outlook" },
	{ "outlook.office.com", false, "outlook" },
	{ "outlook.office365.com", false, "outlook" },
	{ "mail.yahoo.com", true, "yahoo mail" },
	{ "mail.proton.me", false, "proton mail" },
	{ "com.google.android.gm", false, "gmail" },
	/* Search engines. Google's other sites (docs, news, sites) are not
	 * search, hence no subdomains for google.*. */
	{ "google.*", false, "google" },
	{ "bing.com", true, "bing" },
	{ "yahoo.*", true, "yahoo" },
	{ "duckduckgo.com", true, "duckduckgo" },
	{ "baidu.com", true, "baidu" },
	{ "yandex.*", true, "yandex" },
	{ "ya.ru", false, "yandex" },
	{ "ecosia.org", true, "ecosia" },
	{ "search.brave.com", false, "brave" },
	{ "startpage.com", true, "startpage" },
	{ "qwant.com", true, "qwant" },
	{ "search.naver.com", true, "naver" },
	{ "search.seznam.cz", false, "seznam" },
	{ "ask.com", true, "ask" },
	{ "search.aol.com", false, "aol" },
	{ "kagi.com", true, "kagi" },
	{ "sogou.com", true, "sogou" },
	{ "search.daum.net", false, "daum" },
	{ "com.google.android.googlequicksearchbox", false, "google" },
	/* Social networks. */
	{ "facebook.com", true, "facebook" },
	{ "fb.com", true, "facebook" },
	{ "fb.me", false, "facebook" },
	{ "messenger.com", true, "messenger" },
	{ "instagram.com", true, "instagram" },
	{ "t.co", false, "twitter" },
	{ "twitter.com", true, "twitter" },
	{ "x.com", true, "twitter" },
	{ "linkedin.com", true, "linkedin" },
	{ "lnkd.in", false, "linkedin" },
	{ "reddit.com", true, "reddit" },
	{ "pinterest.*", true, "pinterest" },
	{ "pin.it", false, "pinterest" },
	{ "youtube.com", true, "youtube" },
	{ "youtu.be", false, "youtube" },
	{ "tiktok.com", true, "tiktok" },
	{ "news.ycombinator.com", false, "hackernews" },
	{ "threads.net", true, "threads" },
	{ "threads.com", true, "threads" },
	{ "bsky.app", true, "bluesky" },
	{ "mastodon.social", true, "mastodon" },
	{ "quora.com", true, "quora" },
	{ "tumblr.com", true, "tumblr" },
	{ "vk.com", true, "vk" },
	{ "weibo.com", true, "weibo" },
	{ "snapchat.com", true, "snapchat" },
	{ "t.me", false, "telegram" },
	{ "web.telegram.org", false, "telegram" },
	{ "whatsapp.com", true, "whatsapp" },
	{ "wa.me", false, "whatsapp" },
	{ "discord.com", true, "discord" },
	{ "discord.gg", false, "discord" },
	{ "medium.com", true, "medium" },
	{ "slack.com", true, "slack" },
	{ "twitch.tv", true, "twitch" },
	{ "line.me", true, "line" },
	{ "xing.com", true, "xing" },
	{ "com.linkedin.android", false, "linkedin" },
	{ "com.reddit.frontpage", false, "reddit" },
	{ "org.telegram.messenger", false, "telegram" },
	{ "com.slack", false, "slack" },
};

/* Source names (as channel_source_of_host spells them, and as campaigns
 * commonly write them) and what they are. */
static const struct {
	const char *name;
	enum category cat;
} source_categories[] = {
	{ "google", CAT_SEARCH }, { "bing", CAT_SEARCH },
	{ "yahoo", CAT_SEARCH }, { "duckduckgo", CAT_SEARCH },
	{ "baidu", CAT_SEARCH }, { "yandex", CAT_SEARCH },
	{ "ecosia", CAT_SEARCH }, { "brave", CAT_SEARCH },
	{ "startpage", CAT_SEARCH }, { "qwant", CAT_SEARCH },
	{ "naver", CAT_SEARCH }, { "seznam", CAT_SEARCH },
	{ "ask", CAT_SEARCH }, { "aol", CAT_SEARCH },
	{ "kagi", CAT_SEARCH }, { "sogou", CAT_SEARCH },
	{ "daum", CAT_SEARCH },

	{ "facebook", CAT_SOCIAL }, { "fb", CAT_SOCIAL },
	{ "messenger", CAT_SOCIAL }, { "instagram", CAT_SOCIAL },
	{ "ig", CAT_SOCIAL }, { "twitter", CAT_SOCIAL },
	{ "linkedin", CAT_SOCIAL }, { "reddit", CAT_SOCIAL },
	{ "pinterest", CAT_SOCIAL }, { "youtube", CAT_SOCIAL },
	{ "tiktok", CAT_SOCIAL }, { "hackernews", CAT_SOCIAL },
	{ "threads", CAT_SOCIAL }, { "bluesky", CAT_SOCIAL },
	{ "mastodon", CAT_SOCIAL }, { "quora", CAT_SOCIAL },
	{ "tumblr", CAT_SOCIAL }, { "vk", CAT_SOCIAL },
	{ "weibo", CAT_SOCIAL }, { "snapchat", CAT_SOCIAL },
	{ "telegram", CAT_SOCIAL }, { "whatsapp", CAT_SOCIAL },
	{ "discord", CAT_SOCIAL }, { "medium", CAT_SOCIAL },
	{ "slack", CAT_SOCIAL }, { "twitch", CAT_SOCIAL },
	{ "line", CAT_SOCIAL }, { "xing", CAT_SOCIAL },

	{ "email", CAT_EMAIL }, { "e-mail", CAT_EMAIL },
	{ "e_mail", CAT_EMAIL }, { "e mail", CAT_EMAIL },
	{ "gmail", CAT_EMAIL }, { "outlook", CAT_EMAIL },
	{ "yahoo mail", CAT_EMAIL }, { "proton mail", CAT_EMAIL },
};

/* What a click id says about the visit. Ad platforms add most of them
 * only to clicks on ads, which proves the channel. Facebook and Instagram
 * add theirs to every outbound link, organic posts included, and
 * Mailchimp to every link of a campaign: those only hint at the kind of
 * source, for when neither utm_source nor the referrer tells. */
static const struct click_id {
	const char *name;
	enum channel proves;	/* CHANNEL_COUNT_: proves nothing */
	enum category hints;
} click_ids[] = {
	{ "gclid", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "gbraid", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "wbraid", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "gclsrc", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "msclkid", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "yclid", CHANNEL_PAID_SEARCH, CAT_NONE },
	{ "dclid", CHANNEL_DISPLAY, CAT_NONE },
	{ "ttclid", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "twclid", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "li_fat_id", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "rdt_cid", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "sccid", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "epik", CHANNEL_PAID_SOCIAL, CAT_NONE },
	{ "irclid", CHANNEL_AFFILIATES, CAT_NONE },
	{ "fbclid", CHANNEL_COUNT_, CAT_SOCIAL },
	{ "igshid", CHANNEL_COUNT_, CAT_SOCIAL },
	{ "mc_cid", CHANNEL_COUNT_, CAT_EMAIL },
};

/* Mediums, as GA4's default channel groups spell them. */
static const char *const none_mediums[] = { "(none)", "(not set)" };
static const char *const display_mediums[] = { "display", "banner",
	"expandable", "interstitial", "cpm" };
static const char *const email_mediums[] = { "email", "e-mail", "e_mail",
	"e mail" };
static const char *const affiliate_mediums[] = { "affiliate" };
static const char *const social_mediums[] = { "social", "social-network",
	"social-media", "sm", "social network", "social media" };
static const char *const search_mediums[] = { "organic" };
static const char *const referral_mediums[] = { "referral", "app",
	"link" };

/* --- text helpers --------------------------------------------------------- */

static bool
ascii_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool
ascii_alpha(unsigned char c)
{
	c = urltext_lower(c);
	return c >= 'a' && c <= 'z';
}

static bool
ascii_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
listed(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, list[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Copies s into out (size bytes), lower-cased, cut at a character
 * boundary when it does not fit. */
static void
lower_copy(char *out, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
			n--;
		}
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = (char)urltext_lower((unsigned char)s[i]);
	}
	out[n] = '\0';
}

/* --- campaign_from_url ---------------------------------------------------- */

/* Decodes the parameter name [p, end) into out; false if it does not fit
 * or holds a NUL, either of which means it is none of the names we read. */
static bool
decode_name(const char *p, const char *end, char *out, size_t size)
{
	size_t n = 0;

	while (p < end) {
		unsigned char c = urltext_next_decoded(&p, end);

		if (c == '\0' || n + 1 == size) {
			return false;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return true;
}

/* Decodes the value [p, end) into out: leading and trailing ASCII white
 * space trimmed, decoded NULs dropped, each byte that does not start a
 * UTF-8 character replaced by U+FFFD (the value goes to a text column
 * and into JSON, which take nothing else), cut after the last whole
 * character that fits. Output never runs behind input, so the first
 * CHANNEL_FIELD_MAX + 3 decoded bytes are all that can matter. */
static void
decode_value(const char *p, const char *end, char out[CHANNEL_FIELD_MAX])
{
	static const char replacement[] = "\xef\xbf\xbd";
	unsigned char raw[CHANNEL_FIELD_MAX + 4];
	size_t n = 0, o = 0;

	while (p < end && n < sizeof(raw)) {
		unsigned char c = urltext_next_decoded(&p, end);

		if (c != '\0' && (n > 0 || !ascii_space(c))) {
			raw[n++] = c;
		}
	}
	for (size_t i = 0; i < n;) {
		size_t len = utf8_char_len(raw + i, n - i);
		const void *from = len > 0 ? (const void *)(raw + i) :
		    (const void *)replacement;
		size_t out_len = len > 0 ? len : sizeof(replacement) - 1;

		if (o + out_len > CHANNEL_FIELD_MAX - 1) {
			break;
		}
		memcpy(out + o, from, out_len);
		o += out_len;
		i += len > 0 ? len : 1;
	}
	while (o > 0 && ascii_space((unsigned char)out[o - 1])) {
		o--;
	}
	out[o] = '\0';
}

static const struct {
	const char *name;
	size_t offset;
	bool lower;
} utm_params[] = {
	{ "utm_source", offsetof(struct campaign, source), true },
	{ "utm_medium", offsetof(struct campaign, medium), true },
	{ "utm_campaign", offsetof(struct campaign, name), false },
	{ "utm_term", offsetof(struct campaign, term), false },
	{ "utm_content", offsetof(struct campaign, content), false },
};

/* Reads one name=value parameter [p, end) into out, unless an earlier
 * one already gave that field a value. */
static void
read_param(const char *p, const char *end, struct campaign *out)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));
	const char *value = eq != NULL ? eq + 1 : end;
	char name[32], text[CHANNEL_FIELD_MAX];

	if (!decode_name(p, eq != NULL ? eq : end, name, sizeof(name))) {
		return;
	}
	for (size_t i = 0; i < N_OF(utm_params); i++) {
		char *field = (char *)out + utm_params[i].offset;

		if (!urltext_equal_ci(name, utm_params[i].name)) {
			continue;
		}
		if (field[0] == '\0') {
			decode_value(value, end, field);
			if (utm_params[i].lower) {
				lower_copy(field, CHANNEL_FIELD_MAX, field);
			}
		}
		return;
	}
	if (out->click_id_kind[0] != '\0' || !privacy_is_click_id(name)) {
		return;
	}
	/* An empty click id is no click, as an empty utm_ value is none. */
	decode_value(value, end, text);
	if (text[0] != '\0') {
		lower_copy(out->click_id_kind, sizeof(out->click_id_kind),
		    name);
	}
}

void
campaign_from_url(const char *url, struct campaign *out)
{
	const char *end, *p;

	memset(out, 0, sizeof(*out));
	if (url == NULL) {
		return;
	}
	end = url + strcspn(url, "#");
	p = memchr(url, '?', (size_t)(end - url));
	if (p == NULL) {
		return;
	}
	for (p++;;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));

		read_param(p, amp != NULL ? amp : end, out);
		if (amp == NULL) {
			return;
		}
		p = amp + 1;
	}
}

/* --- hosts ---------------------------------------------------------------- */

/* Where the authority of url starts: after "scheme://" or after the "//"
 * of a scheme-relative URL; NULL when url has no authority. */
static const char *
authority_of(const char *url)
{
	const char *p = url;

	if (p[0] == '/' && p[1] == '/') {
		return p + 2;
	}
	if (!ascii_alpha((unsigned char)*p)) {
		return NULL;
	}
	while (ascii_alpha((unsigned char)*p) || ascii_digit((unsigned char)*p)
	    || *p == '+' || *p == '-' || *p == '.') {
		p++;
	}
	return strncmp(p, "://", 3) == 0 ? p + 3 : NULL;
}

/* "www." in any case: www.example.com is the site example.com. */
static bool
starts_with_www(const char *s)
{
	for (int i = 0; i < 3; i++) {
		if (urltext_lower((unsigned char)s[i]) != 'w') {
			return false;
		}
	}
	return s[3] == '.';
}

/* Whether [p, end) is a host channel_url_host hands out: an IPv6 literal
 * in brackets, or letters, digits, '-', '.', '_' and UTF-8 (an IDN not
 * yet in punycode). Anything else is a malformed URL, not a source. */
static bool
host_chars_ok(const char *p, const char *end)
{
	const unsigned char *s = (const unsigned char *)p;
	const unsigned char *e = (const unsigned char *)end;

	if (*s == '[') {
		if (e - s < 3 || e[-1] != ']') {
			return false;
		}
		for (s++; s < e - 1; s++) {
			if (urltext_hex(*s) < 0 && *s != ':' && *s != '.') {
				return false;
			}
		}
		return true;
	}
	/* No empty label: not first, not last, not between two dots. */
	if (*s == '.' || e[-1] == '.') {
		return false;
	}
	while (s < e) {
		size_t len = utf8_char_len(s, (size_t)(e - s));

		if (len == 0 || (len == 1 && !ascii_alpha(*s) &&
		    !ascii_digit(*s) && *s != '-' && *s != '.' && *s != '_') ||
		    (*s == '.' && s[1] == '.')) {
			return false;
		}
		s += len;
	}
	return true;
}

void
channel_url_host(const char *url, char out[CHANNEL_HOST_MAX])
{
	const char *auth, *end, *host, *host_end, *port;
	size_t n;

	out[0] = '\0';
	if (url == NULL || (auth = authority_of(url)) == NULL) {
		return;
	}
	/* Browsers read '\' as '/' in http(s) URLs. */
	end = auth + strcspn(auth, "/?#\\");
	host = auth;
	for (const char *p = auth; p < end; p++) {
		if (*p == '@') {
			host = p + 1;	/* the last '@' ends userinfo */
		}
	}
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		host_end = host_end != NULL ? host_end + 1 : end;
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		host_end = host_end != NULL ? host_end : end;
	}
	/* An empty port is allowed (RFC 3986), letters are not. */
	port = host_end;
	if (port < end && *port++ != ':') {
		return;
	}
	for (; port < end; port++) {
		if (!ascii_digit((unsigned char)*port)) {
			return;
		}
	}
	if (host_end > host && host_end[-1] == '.') {
		host_end--;	/* the absolute form "example.com." */
	}
	if (host_end - host > 4 && starts_with_www(host)) {
		host += 4;
	}
	n = (size_t)(host_end - host);
	if (n == 0 || n >= CHANNEL_HOST_MAX || !host_chars_ok(host, host_end)) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = (char)urltext_lower((unsigned char)host[i]);
	}
	out[n] = '\0';
}

bool
channel_same_site(const char *host, const char *site_host)
{
	size_t h, s;

	if (host == NULL || site_host == NULL || *site_host == '\0') {
		return false;
	}
	h = strlen(host);
	s = strlen(site_host);
	if (h == s) {
		return urltext_equal_ci(host, site_host);
	}
	return h > s && host[h - s - 1] == '.' &&
	    urltext_equal_ci(host + h - s, site_host);
}

/* Whether s is a top-level domain as "name.*" means it: one label of
 * letters (de, com), or a common second level and a country (co.uk,
 * com.br). */
static bool
tld_like(const char *s)
{
	static const char *const second[] = { "ac", "co", "com", "edu", "go",
		"gob", "gov", "ne", "net", "or", "org" };
	const char *dot = strchr(s, '.');
	char label[8];

	if (dot != NULL) {
		size_t n = (size_t)(dot - s);
		if (n >= sizeof(label)) {
			return false;
		}
		memcpy(label, s, n);
		label[n] = '\0';
		if (!listed(label, second, N_OF(second))) {
			return false;
		}
		s = dot + 1;
	}
	if (*s == '\0') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (!ascii_alpha((unsigned char)*s)) {
			return false;
		}
	}
	return true;
}

static bool
host_matches(const char *host, const struct host_source *hs)
{
	size_t h = strlen(host), p = strlen(hs->pattern);

	if (hs->pattern[p - 1] != '*') {
		if (h == p) {
			return strcmp(host, hs->pattern) == 0;
		}
		return hs->subdomains && h > p && host[h - p - 1] == '.' &&
		    strcmp(host + h - p, hs->pattern) == 0;
	}
	/* "name.*": try each place where a label "name." starts. Every
	 * turn moves past a dot, so a host like ".x" ends the loop too. */
	p--;
	for (const char *at = host;; at++) {
		if (strncmp(at, hs->pattern, p) == 0 && tld_like(at + p)) {
			return true;
		}
		if (!hs->subdomains || (at = strchr(at, '.')) == NULL) {
			return false;
		}
	}
}

void
channel_source_of_host(const char *host, char out[CHANNEL_FIELD_MAX])
{
	char h[CHANNEL_FIELD_MAX];
	const char *s = h;

	if (host == NULL) {
		out[0] = '\0';
		return;
	}
	lower_copy(h, sizeof(h), host);
	if (starts_with_www(s) && s[4] != '\0') {
		s += 4;
	}
	for (size_t i = 0; i < N_OF(host_sources); i++) {
		if (host_matches(s, &host_sources[i])) {
			s = host_sources[i].source;
			break;
		}
	}
	memmove(out, s, strlen(s) + 1);
}

/* --- rules from the configuration ----------------------------------------- */

enum rule_field {
	FIELD_SOURCE,
	FIELD_MEDIUM,
	FIELD_REFERRER,
};

static const char *const field_names[] = {
	[FIELD_SOURCE] = "source",
	[FIELD_MEDIUM] = "medium",
	[FIELD_REFERRER] = "referrer",
};

struct rule {
	enum rule_field field;
	regex_t re;
	enum channel channel;
};

struct channel_rules {
	struct rule *items;
	size_t n;		/* compiled, and so to be freed */
};

/* The index of s in names[0..n), or n. */
static size_t
name_index(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; s != NULL && i < n && strcmp(s, names[i]) != 0; i++) {
	}
	return s != NULL ? i : n;
}

/* Compiles rule i of the array from obj into r; false with err set. The
 * messages name the rule as the configuration does: channel_rules[i]. */
static bool
rule_parse(const json_t *obj, size_t i, struct rule *r, struct error *err)
{
	static const char *const keys[] = { "field", "pattern", "channel" };
	const char *k, *pattern, *channel;
	char msg[200];
	size_t field;
	json_t *v;

	if (!json_is_object(obj)) {
		error_set(err, ERR_CONFIG, "channel_rules[%zu]: must be an "
		    "object", i);
		return false;
	}
	json_object_foreach((json_t *)obj, k, v) {
		if (name_index(k, keys, N_OF(keys)) == N_OF(keys)) {
			error_set(err, ERR_CONFIG, "channel_rules[%zu]: "
			    "unknown key \"%s\"", i, k);
			return false;
		}
	}
	field = name_index(json_string_value(json_object_get(obj, "field")),
	    field_names, N_OF(field_names));
	if (field == N_OF(field_names)) {
		error_set(err, ERR_CONFIG, "channel_rules[%zu].field: must be "
		    "\"source\", \"medium\" or \"referrer\"", i);
		return false;
	}
	channel = json_string_value(json_object_get(obj, "channel"));
	if (channel_from_name(channel) < 0) {
		error_set(err, ERR_CONFIG, "channel_rules[%zu].channel: "
		    "must be a channel name as docs/enrichment.md spells "
		    "it, like \"Paid Search\"", i);
		return false;
	}
	r->field = (enum rule_field)field;
	r->channel = (enum channel)channel_from_name(channel);
	pattern = json_string_value(json_object_get(obj, "pattern"));
	if (pattern == NULL || *pattern == '\0') {
		error_set(err, ERR_CONFIG, "channel_rules[%zu].pattern: must "
		    "be a non-empty string", i);
		return false;
	}
	if (!ere_compile(&r->re, pattern, REG_ICASE, msg, sizeof(msg))) {
		error_set(err, ERR_CONFIG, "channel_rules[%zu].pattern: %s", i,
		    msg);
		return false;
	}
	return true;
}

struct channel_rules *
channel_rules_new(const char *json_text, struct error *err)
{
	struct channel_rules *rules = NULL;
	json_t *root = NULL, *v;
	json_error_t jerr;
	size_t i;

	rules = calloc(1, sizeof(*rules));
	if (rules == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (json_text == NULL) {
		return rules;
	}
	root = json_loads(json_text, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		error_set(err, ERR_CONFIG, "channel_rules: line %d: %s",
		    jerr.line, jerr.text);
		goto fail;
	}
	if (!json_is_array(root)) {
		error_set(err, ERR_CONFIG, "channel_rules: must be an array");
		goto fail;
	}
	if (json_array_size(root) > 0) {
		rules->items = calloc(json_array_size(root),
		    sizeof(*rules->items));
		if (rules->items == NULL) {
			error_set(err, ERR_NOMEM, "out of memory");
			goto fail;
		}
	}
	json_array_foreach(root, i, v) {
		if (!rule_parse(v, i, &rules->items[i], err)) {
			goto fail;
		}
		rules->n++;
	}
	json_decref(root);
	return rules;
fail:
	channel_rules_free(rules);
	json_decref(root);
	return NULL;
}

void
channel_rules_free(struct channel_rules *rules)
{
	if (rules == NULL) {
		return;
	}
	for (size_t i = 0; i < rules->n; i++) {
		regfree(&rules->items[i].re);
	}
	free(rules->items);
	free(rules);
}

/* --- channel_classify ----------------------------------------------------- */

/* A visit as the steps see it. */
struct visit {
	/* utm_source, else the source of the referrer. */
	char source[CHANNEL_FIELD_MAX];
	char medium[CHANNEL_FIELD_MAX];
	char ref_host[CHANNEL_HOST_MAX];
	enum category cat;		/* of the source, see visit_init */
	bool tagged;			/* any utm_ value */
	bool has_click;			/* any click id, known or not */
	const struct click_id *click;	/* NULL: none, or unknown */
};

static enum category
category_of(const char *source)
{
	char canon[CHANNEL_FIELD_MAX];

	/* utm_source=facebook.com means facebook. */
	channel_source_of_host(source, canon);
	for (size_t i = 0; i < N_OF(source_categories); i++) {
		if (strcmp(canon, source_categories[i].name) == 0) {
			return source_categories[i].cat;
		}
	}
	return CAT_NONE;
}

/* The category is utm_source's if it has one, else the referrer's, else
 * what a click id hints at: what a site tagged beats what it did not. */
static void
visit_init(struct visit *v, const struct campaign *c, const char *ref_host)
{
	char ref_source[CHANNEL_FIELD_MAX];

	lower_copy(v->medium, sizeof(v->medium), c->medium);
	lower_copy(v->ref_host, sizeof(v->ref_host),
	    ref_host != NULL ? ref_host : "");
	channel_source_of_host(v->ref_host, ref_source);
	if (c->source[0] != '\0') {
		lower_copy(v->source, sizeof(v->source), c->source);
	} else {
		memcpy(v->source, ref_source, sizeof(v->source));
	}
	v->tagged = c->source[0] != '\0' || c->medium[0] != '\0' ||
	    c->name[0] != '\0' || c->term[0] != '\0' || c->content[0] != '\0';
	v->has_click = c->click_id_kind[0] != '\0';
	v->click = NULL;
	for (size_t i = 0; v->has_click && i < N_OF(click_ids); i++) {
		if (urltext_equal_ci(c->click_id_kind, click_ids[i].name)) {
			v->click = &click_ids[i];
		}
	}
	v->cat = c->source[0] != '\0' ? category_of(v->source) : CAT_NONE;
	if (v->cat == CAT_NONE) {
		v->cat = category_of(ref_source);
	}
	if (v->cat == CAT_NONE && v->click != NULL) {
		v->cat = v->click->hints;
	}
}

/* GA4's paid mediums: ^(.*cp.*|ppc|retargeting|paid.*)$ */
static bool
paid_medium(const char *m)
{
	return strstr(m, "cp") != NULL || strcmp(m, "ppc") == 0 ||
	    strcmp(m, "retargeting") == 0 || strncmp(m, "paid", 4) == 0;
}

#define NO_ANSWER (-1)

/* A link tagged with utm_campaign alone is not a direct visit: GA4
 * makes it (not set), Unassigned. */
static int
step_direct(const struct visit *v)
{
	if (!v->tagged && v->ref_host[0] == '\0' && !v->has_click) {
		return CHANNEL_DIRECT;
	}
	if (strcmp(v->source, "(direct)") == 0 && (v->medium[0] == '\0' ||
	    listed(v->medium, none_mediums, N_OF(none_mediums)))) {
		return CHANNEL_DIRECT;
	}
	return NO_ANSWER;
}

static int
step_click_id(const struct visit *v)
{
	if (v->click == NULL || v->click->proves == CHANNEL_COUNT_) {
		return NO_ANSWER;
	}
	/* Google's click ids come with display campaigns too, which the
	 * medium may say. */
	if (v->click->proves == CHANNEL_PAID_SEARCH && listed(v->medium,
	    display_mediums, N_OF(display_mediums))) {
		return CHANNEL_DISPLAY;
	}
	return (int)v->click->proves;
}

/* GA4's "Paid Other" has no channel of ours: the medium's own word when
 * it has one, else Display, where ad networks that are neither search
 * nor social belong. */
static int
step_paid(const struct visit *v)
{
	if (!paid_medium(v->medium)) {
		return NO_ANSWER;
	}
	if (v->cat == CAT_SEARCH) {
		return CHANNEL_PAID_SEARCH;
	}
	if (v->cat == CAT_SOCIAL || strstr(v->medium, "social") != NULL) {
		return CHANNEL_PAID_SOCIAL;
	}
	if (strstr(v->medium, "search") != NULL) {
		return CHANNEL_PAID_SEARCH;
	}
	return CHANNEL_DISPLAY;
}

static int
step_referral(const struct visit *v)
{
	return v->ref_host[0] != '\0' || listed(v->medium, referral_mediums,
	    N_OF(referral_mediums)) ? CHANNEL_REFERRAL : NO_ANSWER;
}

/* The steps between the paid ones and Referral: a kind of source (none
 * for Display and Affiliates) or one of a list of mediums names the
 * channel. */
static const struct {
	enum category cat;
	const char *const *mediums;
	size_t n_mediums;
	enum channel channel;
} medium_steps[] = {
	{ CAT_NONE, display_mediums, N_OF(display_mediums), CHANNEL_DISPLAY },
	{ CAT_EMAIL, email_mediums, N_OF(email_mediums), CHANNEL_EMAIL },
	{ CAT_NONE, affiliate_mediums, N_OF(affiliate_mediums),
	  CHANNEL_AFFILIATES },
	{ CAT_SOCIAL, social_mediums, N_OF(social_mediums),
	  CHANNEL_ORGANIC_SOCIAL },
	{ CAT_SEARCH, search_mediums, N_OF(search_mediums),
	  CHANNEL_ORGANIC_SEARCH },
};

static int
step_by_medium(const struct visit *v)
{
	for (size_t i = 0; i < N_OF(medium_steps); i++) {
		if ((medium_steps[i].cat != CAT_NONE &&
		    v->cat == medium_steps[i].cat) || listed(v->medium,
		    medium_steps[i].mediums, medium_steps[i].n_mediums)) {
			return (int)medium_steps[i].channel;
		}
	}
	return NO_ANSWER;
}

/* The built-in steps, in the order docs/enrichment.md gives them. */
static int (*const steps[])(const struct visit *) = {
	step_direct,
	step_click_id,
	step_paid,
	step_by_medium,
	step_referral,
};

enum channel
channel_classify(const struct channel_rules *rules,
    const struct campaign *c, const char *ref_host)
{
	struct visit v;

	visit_init(&v, c, ref_host);
	for (size_t i = 0; rules != NULL && i < rules->n; i++) {
		const struct rule *r = &rules->items[i];
		const char *s = r->field == FIELD_SOURCE ? v.source :
		    r->field == FIELD_MEDIUM ? v.medium : v.ref_host;

		if (regexec(&r->re, s, 0, NULL, 0) == 0) {
			return r->channel;
		}
	}
	for (size_t i = 0; i < N_OF(steps); i++) {
		int ch = steps[i](&v);

		if (ch != NO_ANSWER) {
			return (enum channel)ch;
		}
	}
	return CHANNEL_UNASSIGNED;
}
