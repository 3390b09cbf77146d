/* useragent.c - User-Agent classification by ordered substring tables.
 *
 * Each table is read top to bottom and its first matching row wins, so a
 * row must come before any row that its user agents also match: Edge's
 * and Opera's contain "Chrome/", Chrome's contain "Safari/", a Windows
 * Phone's contain "Android" and "iPhone", Googlebot's smartphone one
 * contains "Android" and "Mobile". Needles are lower case; the header is
 * lowered once into a stack buffer and searched with strstr, so a call
 * costs a few microseconds and allocates nothing. */
#include "common/useragent.h"

#include <stddef.h>
#include <string.h>

/* Real headers are a few hundred bytes, in-app ones included; longer is
 * padding or an attack, and the bound keeps the cost of a call fixed. */
#define UA_SCAN_MAX 1024

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A row matches when needle occurs and so does also, if set. */
struct family_rule {
	const char *needle;
	const char *also;
	const char *name;
};

struct device_rule {
	const char *needle;
	const char *also;
	enum ua_device device;
};

/* A word that marks a bot wherever it occurs, except right after
 * not_after. */
struct bot_token {
	const char *needle;
	const char *not_after;
};

/* Named bots, before the generic tokens so that the name is kept. A bot
 * that quotes another's name comes first (TelegramBot says "like
 * TwitterBot", LinkedInBot says "Apache-HttpClient"). */
static const struct family_rule named_bots[] = {
	/* Search engines and their helpers. */
	{ "googlebot", NULL, "Googlebot" },
	{ "adsbot-google", NULL, "AdsBot-Google" },
	{ "mediapartners-google", NULL, "Mediapartners-Google" },
	{ "google-inspectiontool", NULL, "Google-InspectionTool" },
	{ "googleother", NULL, "GoogleOther" },
	{ "storebot-google", NULL, "Storebot-Google" },
	{ "bingbot", NULL, "Bingbot" },
	{ "bingpreview", NULL, "BingPreview" },
	{ "yandexbot", NULL, "YandexBot" },
	{ "baiduspider", NULL, "Baiduspider" },
	{ "duckduckbot", NULL, "DuckDuckBot" },
	{ "applebot", NULL, "Applebot" },
	{ "petalbot", NULL, "PetalBot" },
	/* Link previews. */
	{ "facebookexternalhit", NULL, "facebookexternalhit" },
	{ "meta-externalagent", NULL, "meta-externalagent" },
	{ "telegrambot", NULL, "TelegramBot" },
	{ "twitterbot", NULL, "Twitterbot" },
	{ "linkedinbot", NULL, "LinkedInBot" },
	{ "slackbot", NULL, "Slackbot" },
	{ "discordbot", NULL, "Discordbot" },
	{ "whatsapp/", NULL, "WhatsApp" },
	/* SEO tools and AI crawlers. */
	{ "ahrefsbot", NULL, "AhrefsBot" },
	{ "ahrefssiteaudit", NULL, "AhrefsSiteAudit" },
	{ "semrushbot", NULL, "SemrushBot" },
	{ "mj12bot", NULL, "MJ12bot" },
	{ "gptbot", NULL, "GPTBot" },
	{ "chatgpt-user", NULL, "ChatGPT-User" },
	{ "oai-searchbot", NULL, "OAI-SearchBot" },
	{ "claudebot", NULL, "ClaudeBot" },
	{ "anthropic-ai", NULL, "anthropic-ai" },
	{ "perplexitybot", NULL, "PerplexityBot" },
	{ "amazonbot", NULL, "Amazonbot" },
	{ "ccbot", NULL, "CCBot" },
	{ "bytespider", NULL, "Bytespider" },
	/* Monitors, audits and headless browsers: real engines, no people. */
	{ "uptimerobot", NULL, "UptimeRobot" },
	{ "pingdom", NULL, "Pingdom" },
	{ "statuscake", NULL, "StatusCake" },
	{ "site24x7", NULL, "Site24x7" },
	{ "lighthouse", NULL, "Lighthouse" },
	{ "headlesschrome", NULL, "HeadlessChrome" },
	{ "phantomjs", NULL, "PhantomJS" },
	/* HTTP clients left at their default user agent. okhttp is not
	 * here: Android apps send its default from real users' phones. Nor
	 * is Dalvik, the default of Android's own HttpURLConnection; Java/
	 * is that class's default on a JVM, so it is a server. */
	{ "curl/", NULL, "curl" },
	{ "wget/", NULL, "Wget" },
	{ "python-requests/", NULL, "python-requests" },
	{ "python-urllib/", NULL, "Python-urllib" },
	{ "python-httpx/", NULL, "python-httpx" },
	{ "aiohttp/", NULL, "aiohttp" },
	{ "scrapy/", NULL, "Scrapy" },
	{ "go-http-client/", NULL, "Go-http-client" },
	{ "apache-httpclient/", NULL, "Apache-HttpClient" },
	{ "java/", NULL, "Java" },
	{ "libwww-perl/", NULL, "libwww-perl" },
	{ "node-fetch/", NULL, "node-fetch" },
	{ "axios/", NULL, "axios" },
	{ "postmanruntime/", NULL, "PostmanRuntime" },
	{ "httpie/", NULL, "HTTPie" },
	{ "guzzlehttp/", NULL, "GuzzleHttp" },
};

/* The words the long tail of crawlers uses. A URL is a crawler's contact
 * address: no browser sends one. Cubot is a phone maker whose model names
 * ("CUBOT_X30") reach the user agent. */
static const struct bot_token bot_tokens[] = {
	{ "bot", "cu" },
	{ "crawl", NULL },
	{ "spider", NULL },
	{ "slurp", NULL },
	{ "headless", NULL },
	{ "http://", NULL },
	{ "https://", NULL },
};

/* Phones and tablets before desktops, since their user agents name
 * desktop systems too ("like Mac OS X", "Linux; Android"). */
static const struct device_rule devices[] = {
	{ "windows phone", NULL, UA_DEVICE_MOBILE },
	{ "ipad", NULL, UA_DEVICE_TABLET },
	{ "iphone", NULL, UA_DEVICE_MOBILE },
	{ "ipod", NULL, UA_DEVICE_MOBILE },
	/* Fire tablets; the old Silk said "Mobile" on a tablet. */
	{ "kindle", NULL, UA_DEVICE_TABLET },
	{ "silk/", NULL, UA_DEVICE_TABLET },
	{ "tablet", NULL, UA_DEVICE_TABLET },
	/* Android apps' default user agent says "Mobile" on no device;
	 * phones are by far the likelier. */
	{ "dalvik/", NULL, UA_DEVICE_MOBILE },
	/* Google's rule: Android browsers on phones say "Mobile", those on
	 * tablets do not. */
	{ "android", "mobile", UA_DEVICE_MOBILE },
	{ "android", NULL, UA_DEVICE_TABLET },
	/* An iPad asking for desktop sites sends a Mac's user agent, in web
	 * views with "Mobile/" added: desktop is all that can be told. */
	{ "macintosh", NULL, UA_DEVICE_DESKTOP },
	{ "windows", NULL, UA_DEVICE_DESKTOP },
	/* Feature phones and the odd mobile system without a known name
	 * (KaiOS, Opera Mini on J2ME), before Linux since some run it. */
	{ "mobi", NULL, UA_DEVICE_MOBILE },
	{ "x11", NULL, UA_DEVICE_DESKTOP },
	{ "linux", NULL, UA_DEVICE_DESKTOP },
	{ "cros ", NULL, UA_DEVICE_DESKTOP },
};

static const struct family_rule systems[] = {
	{ "windows phone", NULL, "Windows Phone" },
	{ "ipad", NULL, "iPadOS" },
	{ "iphone", NULL, "iOS" },
	{ "ipod", NULL, "iOS" },
	{ "android", NULL, "Android" },
	/* With its space: "microsoft" holds "cros". */
	{ "cros ", NULL, "ChromeOS" },
	{ "windows", NULL, "Windows" },
	{ "macintosh", NULL, "macOS" },
	{ "mac os x", NULL, "macOS" },
	/* X11 is not Linux: the BSDs send it too. */
	{ "freebsd", NULL, "Other" },
	{ "openbsd", NULL, "Other" },
	{ "netbsd", NULL, "Other" },
	{ "linux", NULL, "Linux" },
	{ "x11", NULL, "Linux" },
};

static const struct family_rule browsers[] = {
	/* In-app browsers name the app; their web views claim Safari or
	 * Chrome. */
	{ "instagram", NULL, "Instagram" },
	{ "fban/", NULL, "Facebook" },
	{ "fbav/", NULL, "Facebook" },
	{ "gsa/", NULL, "Google App" },
	/* Chromium's forks add their token to Chrome's. Brave adds none and
	 * counts as Chrome; Vivaldi dropped its token in 2019. */
	{ "edg/", NULL, "Edge" },
	{ "edga/", NULL, "Edge" },
	{ "edgios/", NULL, "Edge" },
	{ "edge/", NULL, "Edge" },
	{ "opr/", NULL, "Opera" },
	{ "opera", NULL, "Opera" },
	{ "samsungbrowser/", NULL, "Samsung Internet" },
	{ "yabrowser/", NULL, "Yandex Browser" },
	{ "vivaldi/", NULL, "Vivaldi" },
	{ "ucbrowser/", NULL, "UC Browser" },
	{ "silk/", NULL, "Silk" },
	{ "duckduckgo/", NULL, "DuckDuckGo" },
	{ "firefox/", NULL, "Firefox" },
	{ "fxios/", NULL, "Firefox" },
	{ "chrome/", NULL, "Chrome" },
	{ "crios/", NULL, "Chrome" },
	{ "chromium/", NULL, "Chrome" },
	/* Android's browser before Chrome said Safari and Version/ too. */
	{ "android", "version/", "Android Browser" },
	/* Every WebKit browser says Safari/; only Safari adds Version/
	 * without any of the tokens above. */
	{ "safari/", "version/", "Safari" },
	{ "msie ", NULL, "IE" },
	{ "trident/", NULL, "IE" },
};

static const char *const device_names[] = {
	[UA_DEVICE_UNKNOWN] = "unknown",
	[UA_DEVICE_DESKTOP] = "desktop",
	[UA_DEVICE_MOBILE] = "mobile",
	[UA_DEVICE_TABLET] = "tablet",
	[UA_DEVICE_BOT] = "bot",
};

/* Copies at most UA_SCAN_MAX bytes of src to dst, ASCII lower-cased (the
 * same whatever the locale), and returns how many it copied. */
static size_t
lower_copy(char dst[UA_SCAN_MAX + 1], const char *src)
{
	size_t n;

	for (n = 0; n < UA_SCAN_MAX && src[n] != '\0'; n++) {
		unsigned char c = (unsigned char)src[n];

		dst[n] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	dst[n] = '\0';
	return n;
}

static bool
rule_matches(const char *s, const char *needle, const char *also)
{
	return strstr(s, needle) != NULL &&
	    (also == NULL || strstr(s, also) != NULL);
}

static const char *
family_find(const char *s, const struct family_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (rule_matches(s, rules[i].needle, rules[i].also)) {
			return rules[i].name;
		}
	}
	return "Other";
}

static bool
token_occurs(const char *s, const struct bot_token *t)
{
	size_t skip = t->not_after != NULL ? strlen(t->not_after) : 0;
	const char *p;

	for (p = strstr(s, t->needle); p != NULL;
	    p = strstr(p + 1, t->needle)) {
		if (skip == 0 || (size_t)(p - s) < skip ||
		    strncmp(p - skip, t->not_after, skip) != 0) {
			return true;
		}
	}
	return false;
}

/* The bot's name, "Other" for an unnamed one, or NULL. */
static const char *
bot_find(const char *s)
{
	for (size_t i = 0; i < N_OF(named_bots); i++) {
		if (strstr(s, named_bots[i].needle) != NULL) {
			return named_bots[i].name;
		}
	}
	for (size_t i = 0; i < N_OF(bot_tokens); i++) {
		if (token_occurs(s, &bot_tokens[i])) {
			return "Other";
		}
	}
	return NULL;
}

static enum ua_device
device_find(const char *s)
{
	for (size_t i = 0; i < N_OF(devices); i++) {
		if (rule_matches(s, devices[i].needle, devices[i].also)) {
			return devices[i].device;
		}
	}
	return UA_DEVICE_UNKNOWN;
}

void
useragent_parse(const char *ua, struct useragent *out)
{
	char s[UA_SCAN_MAX + 1];

	out->device = UA_DEVICE_UNKNOWN;
	out->browser = "Other";
	out->os = "Other";
	out->bot = false;
	out->bot_name = NULL;
	if (ua == NULL || lower_copy(s, ua) == 0) {
		return;
	}
	/* A bot's browser and system are left "Other": crawlers dress up as
	 * Chrome on Android, and counting the disguise would swell those
	 * families wherever bots are not filtered out. */
	out->bot_name = bot_find(s);
	if (out->bot_name != NULL) {
		out->device = UA_DEVICE_BOT;
		out->bot = true;
		return;
	}
	out->device = device_find(s);
	out->os = family_find(s, systems, N_OF(systems));
	out->browser = family_find(s, browsers, N_OF(browsers));
}

const char *
useragent_device_name(enum ua_device device)
{
	/* The cast also sends a negative value out of range. */
	if ((size_t)device >= N_OF(device_names)) {
		return "unknown";
	}
	return device_names[device];
}
