/* visitor.h - cookieless visitor ids: the day's salt, shared by every
 * collector through PostgreSQL, and the ids derived from it.
 *
 * The salt of a UTC day is made once (by whichever collector asks first),
 * kept in visitor_salts, and deleted as soon as a later day's salt exists,
 * here and in memory; so an id can be recomputed on its day only. */
#ifndef MILEPOST_SERVER_VISITOR_H
#define MILEPOST_SERVER_VISITOR_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/privacy.h"

struct visitor_salt;

struct visitor_salt *visitor_salt_new(void);
void visitor_salt_free(struct visitor_salt *vs);	/* NULL is fine */

/* Loads the salt of the UTC day holding now_us from the database (making
 * it if nobody has), deletes older salts there, and holds it in vs. */
bool visitor_salt_refresh(struct visitor_salt *vs, PGconn *pg,
    int64_t now_us, struct error *err);

/* The visitor id of (site, ip, user agent) at now_us under that day's
 * salt, in out. False when the salt held is not that day's (not loaded
 * yet, or the midnight refresh failed): an id made with yesterday's salt
 * would link the two days. */
bool visitor_id(struct visitor_salt *vs, int64_t now_us, const char *site_id,
    const char *ip, const char *user_agent,
    char out[PRIVACY_VISITOR_ID_LEN]);

#endif
