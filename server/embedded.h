/* embedded.h - files compiled into the binary by server/embed.py. */
#ifndef MILEPOST_SERVER_EMBEDDED_H
#define MILEPOST_SERVER_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
	const char *name;		/* base name, e.g. "0001_init.sql" */
	const unsigned char *data;	/* NUL-terminated */
	size_t len;			/* without the NUL */
};

/* The SQL files of migrations/, in name order. */
extern const struct embedded_file migrations_embedded[];
extern const size_t migrations_embedded_count;

/* The static files GET serves (server/static_files.h), in name order. */
extern const struct embedded_file static_embedded[];
extern const size_t static_embedded_count;

/* The dashboard's files (server/dashboard/), in name order. */
extern const struct embedded_file dashboard_embedded[];
extern const size_t dashboard_embedded_count;

#endif
