/* useragent.h - what a User-Agent header says about the visitor's device:
 * its class, browser family, OS family, and whether it is a bot.
 *
 * Table-driven and allocation-free: the families are constant strings.
 * Families are coarse on purpose (what dashboards group by), not versions.
 * Pure functions, thread-safe. */
#ifndef MILEPOST_COMMON_USERAGENT_H
#define MILEPOST_COMMON_USERAGENT_H

#include <stdbool.h>

enum ua_device {
	UA_DEVICE_UNKNOWN,	/* empty or unrecognisable header */
	UA_DEVICE_DESKTOP,
	UA_DEVICE_MOBILE,
	UA_DEVICE_TABLET,
	UA_DEVICE_BOT,		/* crawlers, monitors, scripts, headless */
};

struct useragent {
	enum ua_device device;
	const char *browser;	/* "Chrome", "Safari", "Firefox", "Edge",
				 * "Opera", "Samsung Internet", ..., "Other" */
	const char *os;		/* "Windows", "macOS", "iOS", "iPadOS",
				 * "Android", "Linux", "ChromeOS", ..., "Other" */
	bool bot;		/* device == UA_DEVICE_BOT */
	const char *bot_name;	/* "Googlebot", ..., or NULL */
};

/* Classifies ua (may be NULL or empty: unknown device, families "Other",
 * not a bot). Only the first 1024 bytes are looked at. */
void useragent_parse(const char *ua, struct useragent *out);

/* "desktop", "mobile", "tablet", "bot" or "unknown". */
const char *useragent_device_name(enum ua_device device);

#endif
