/* auth.h - which site a write key belongs to. */
#ifndef MILEPOST_SERVER_AUTH_H
#define MILEPOST_SERVER_AUTH_H

#include "common/config.h"

/* The configured site whose write key is key, or NULL. Borrowed from cfg. */
const struct config_site *auth_find_site(const struct config *cfg,
    const char *key);

#endif
