/* auth.c - write keys. Sites are few, so a scan beats a hash table; the
 * comparison looks at every byte so that its time does not reveal how
 * much of a guessed key was right. */
#include "server/auth.h"

#include <string.h>

#include "common/privacy.h"

static bool
same_key(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la && i < lb; i++) {
		diff |= (unsigned char)(a[i] ^ b[i]);
	}
	return diff == 0;
}

const struct config_site *
auth_find_site(const struct config *cfg, const char *key)
{
	const struct config_site *found = NULL;

	for (size_t i = 0; i < cfg->n_sites; i++) {
		if (same_key(cfg->sites[i].write_key, key)) {
			found = &cfg->sites[i];
		}
	}
	return found;
}

const struct config_site *
auth_find_server_site(const struct config *cfg, const char *key)
{
	const struct config_site *found = NULL;

	for (size_t i = 0; i < cfg->n_sites; i++) {
		for (size_t k = 0; k < cfg->sites[i].n_server_keys; k++) {
			if (privacy_key_matches(key,
			    cfg->sites[i].server_keys[k])) {
				found = &cfg->sites[i];
			}
		}
	}
	return found;
}
