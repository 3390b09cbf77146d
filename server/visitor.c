/* visitor.c - the daily salt. */
#include "server/visitor.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "server/db.h"

#define US_PER_DAY (INT64_C(86400) * TIMEUTIL_US_PER_SEC)

struct visitor_salt {
	pthread_mutex_t lock;
	int64_t day;		/* days since the epoch; -1: none held */
	uint8_t salt[PRIVACY_SALT_BYTES];
};

static int64_t
day_of(int64_t us)
{
	return us >= 0 ? us / US_PER_DAY : (us - US_PER_DAY + 1) / US_PER_DAY;
}

struct visitor_salt *
visitor_salt_new(void)
{
	struct visitor_salt *vs = calloc(1, sizeof(*vs));

	if (vs == NULL) {
		return NULL;
	}
	pthread_mutex_init(&vs->lock, NULL);
	vs->day = -1;
	return vs;
}

void
visitor_salt_free(struct visitor_salt *vs)
{
	if (vs == NULL) {
		return;
	}
	privacy_wipe(vs->salt, sizeof(vs->salt));
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}

/* Whoever inserts first wins; everyone then reads the winner's salt. */
static const char salt_sql[] =
    "WITH made AS ("
    " INSERT INTO visitor_salts (day, salt)"
    " VALUES ($1::date, decode($2, 'hex'))"
    " ON CONFLICT (day) DO NOTHING RETURNING salt)"
    " SELECT encode(salt, 'hex') FROM made"
    " UNION ALL"
    " SELECT encode(salt, 'hex') FROM visitor_salts WHERE day = $1::date"
    " LIMIT 1";

static const char prune_sql[] =
    "DELETE FROM visitor_salts WHERE day < $1::date";

bool
visitor_salt_refresh(struct visitor_salt *vs, PGconn *pg, int64_t now_us,
    struct error *err)
{
	uint8_t fresh[PRIVACY_SALT_BYTES], got[PRIVACY_SALT_BYTES];
	char hex[2 * PRIVACY_SALT_BYTES + 1], date[TIMEUTIL_RFC3339_LEN];
	const char *params[2] = { date, hex };
	int64_t day = day_of(now_us);
	PGresult *res;
	const char *text;
	bool ok = false;

	timeutil_format_rfc3339(day * US_PER_DAY, date);
	date[10] = '\0';
	privacy_random(fresh, sizeof(fresh));
	privacy_hex(fresh, sizeof(fresh), hex);
	res = db_query(pg, salt_sql, 2, params, err);
	if (res == NULL) {
		goto done;
	}
	text = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	if (!privacy_unhex(text, got, sizeof(got))) {
		error_set(err, ERR_DATABASE, "visitor_salts holds no salt of "
		    "32 bytes for %s", date);
		goto done;
	}
	if (!db_exec(pg, prune_sql, 1, params, err)) {
		goto done;
	}
	pthread_mutex_lock(&vs->lock);
	memcpy(vs->salt, got, sizeof(got));
	vs->day = day;
	pthread_mutex_unlock(&vs->lock);
	ok = true;
done:
	PQclear(res);
	privacy_wipe(fresh, sizeof(fresh));
	privacy_wipe(got, sizeof(got));
	privacy_wipe(hex, sizeof(hex));
	return ok;
}

bool
visitor_id(struct visitor_salt *vs, int64_t now_us, const char *site_id,
    const char *ip, const char *user_agent,
    char out[PRIVACY_VISITOR_ID_LEN])
{
	bool held;

	pthread_mutex_lock(&vs->lock);
	held = vs->day == day_of(now_us);
	if (held) {
		privacy_visitor_id(vs->salt, site_id, ip, user_agent, out);
	}
	pthread_mutex_unlock(&vs->lock);
	return held;
}
