/* auth.h - which site a write key, or a secret server key, belongs to. */
#ifndef MILEPOST_SERVER_AUTH_H
#define MILEPOST_SERVER_AUTH_H

#include "common/config.h"

/* The configured site whose write key is key, or NULL. Borrowed from cfg. */
const struct config_site *auth_find_site(const struct config *cfg,
    const char *key);

/* The configured site that key is a server key of (its SHA-256 is in the
 * site's server_keys), or NULL. Borrowed from cfg. */
const struct config_site *auth_find_server_site(const struct config *cfg,
    const char *key);

#endif
