/* pgcopy.c - binary COPY rows (pgcopy.h). The format is PostgreSQL's
 * "Binary Format" of COPY: a signature, flags and a header extension once,
 * then per row a 16-bit field count and per field a 32-bit length (-1:
 * NULL) and its bytes; a count of -1 ends the data. */
#include "server/pgcopy.h"

#include <string.h>

#include "server/db.h"

#define SIGNATURE "PGCOPY\n\377\r\n"
#define SIGNATURE_LEN 11
#define US_2000 INT64_C(946684800000000)	/* 2000-01-01 after 1970 */

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

bool
pgcopy_begin(struct pgcopy *c, PGconn *pg, const char *sql,
    struct error *err)
{
	PGresult *res = PQexec(pg, sql);
	bool ok = PQresultStatus(res) == PGRES_COPY_OUT;

	memset(c, 0, sizeof(*c));
	c->pg = pg;
	if (!ok) {
		db_error_from_conn(pg, res, err);
		c->done = true;
	}
	PQclear(res);
	return ok;
}

/* The COPY's final result: ok or the error it ended with. */
static bool
finish(struct pgcopy *c, struct error *err)
{
	PGresult *res;
	bool ok = true;

	c->done = true;
	while ((res = PQgetResult(c->pg)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && ok) {
			db_error_from_conn(c->pg, res, err);
			ok = false;
		}
		PQclear(res);
	}
	return ok;
}

/* Splits the row of len bytes at p into fields. */
static bool
split(struct pgcopy *c, const unsigned char *p, size_t len,
    struct error *err)
{
	size_t at = 0;
	int n;

	if (!c->header_seen) {
		if (len < SIGNATURE_LEN + 8 ||
		    memcmp(p, SIGNATURE, SIGNATURE_LEN) != 0) {
			goto bad;
		}
		at = SIGNATURE_LEN + 4;
		at += 4 + be32(p + at);
		c->header_seen = true;
	}
	if (at + 2 > len) {
		goto bad;
	}
	n = (int16_t)((p[at] << 8) | p[at + 1]);
	at += 2;
	if (n == -1) {
		c->n_fields = -1;
		return true;
	}
	if (n < 0 || n > PGCOPY_FIELDS_MAX) {
		goto bad;
	}
	for (int i = 0; i < n; i++) {
		int32_t flen;
		if (at + 4 > len) {
			goto bad;
		}
		flen = (int32_t)be32(p + at);
		at += 4;
		if (flen < 0) {
			c->field[i] = (struct pgcopy_field){ NULL, 0 };
			continue;
		}
		if ((size_t)flen > len - at) {
			goto bad;
		}
		c->field[i] = (struct pgcopy_field){ (const char *)p + at,
			(size_t)flen };
		at += (size_t)flen;
	}
	c->n_fields = n;
	return true;
bad:
	error_set(err, ERR_DATABASE, "a binary COPY row was malformed");
	return false;
}

bool
pgcopy_next(struct pgcopy *c, struct error *err)
{
	int len;

	error_clear(err);
	for (;;) {
		if (c->row != NULL) {
			PQfreemem(c->row);
			c->row = NULL;
		}
		if (c->done) {
			return false;
		}
		len = PQgetCopyData(c->pg, &c->row, 0);
		if (len == -1) {
			finish(c, err);
			return false;
		}
		if (len < 0) {
			db_error_from_conn(c->pg, NULL, err);
			finish(c, err);
			return false;
		}
		if (!split(c, (const unsigned char *)c->row, (size_t)len, err)) {
			pgcopy_end(c);
			return false;
		}
		if (c->n_fields >= 0) {
			return true;
		}
		/* The trailer: the end comes as -1 next. */
	}
}

void
pgcopy_end(struct pgcopy *c)
{
	struct error ignored;
	char *row;

	if (c->row != NULL) {
		PQfreemem(c->row);
		c->row = NULL;
	}
	while (!c->done && PQgetCopyData(c->pg, &row, 0) >= 0) {
		PQfreemem(row);
	}
	if (!c->done) {
		finish(c, &ignored);
	}
}

int64_t
pgcopy_int8(const struct pgcopy_field *f)
{
	const unsigned char *p = (const unsigned char *)f->data;

	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

int64_t
pgcopy_time(const struct pgcopy_field *f)
{
	return pgcopy_int8(f) + US_2000;
}

double
pgcopy_float8(const struct pgcopy_field *f)
{
	uint64_t bits = (uint64_t)pgcopy_int8(f);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

bool
pgcopy_bool(const struct pgcopy_field *f)
{
	return f->data[0] != 0;
}

bool
pgcopy_fixed(const struct pgcopy_field *f, size_t len)
{
	return f->data != NULL && f->len == len;
}
