/* libFuzzer target: hostile URLs, referrers and user agents through
 * everything ingest derives from them (campaign, host, channel, URL
 * scrubbing, device). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/channel.h"
#include "common/privacy.h"
#include "common/useragent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const deny[] = { "email", "token", "gclid" };
	char host[CHANNEL_HOST_MAX], source[CHANNEL_FIELD_MAX];
	char *text = malloc(size + 1), *stripped;
	struct campaign c;
	struct useragent ua;

	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	campaign_from_url(text, &c);
	channel_url_host(text, host);
	channel_source_of_host(host, source);
	(void)channel_same_site(host, "example.com");
	(void)channel_classify(NULL, &c, host);
	stripped = privacy_strip_url_params(text, deny, 3, NULL);
	/* Scrubbing never grows a URL. */
	if (stripped != NULL && strlen(stripped) > strlen(text)) {
		__builtin_trap();
	}
	free(stripped);
	useragent_parse(text, &ua);
	free(text);
	return 0;
}
