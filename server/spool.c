/* spool.c - the spool's files. */
#include "server/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/spool_record.h"

/* A file is closed for appends past this size, so that replay reads
 * files of a bounded size and frees the disk as it goes. */
#define SPOOL_FILE_MAX ((int64_t)16 << 20)

#define SEQ_DIGITS 20
#define SPOOL_SUFFIX ".spool"

struct spool {
	char *dir;
	int dir_fd;
	int lock_fd;
	uint64_t max_bytes;
	pthread_mutex_t mu;
	/* Guarded by mu. */
	int fd;			/* the file appended to, or -1 */
	int64_t fd_bytes;
	uint64_t next_seq;
	uint64_t files, bytes;
	uint64_t appended, refused_full;
};

/* The sequence number of a spool file's name; false for other names. */
static bool
seq_of_name(const char *name, uint64_t *seq)
{
	char *end;

	if (strlen(name) != SEQ_DIGITS + strlen(SPOOL_SUFFIX) ||
	    strcmp(name + SEQ_DIGITS, SPOOL_SUFFIX) != 0 ||
	    name[0] < '0' || name[0] > '9') {
		return false;
	}
	errno = 0;
	*seq = strtoull(name, &end, 10);
	return errno == 0 && end == name + SEQ_DIGITS;
}

/* mkdir -p of dir. */
static bool
make_dirs(const char *dir, struct error *err)
{
	char *path = strdup(dir);
	bool ok = true;

	if (path == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return false;
	}
	for (char *p = path + 1; ok; p++) {
		char c = *p;
		if (c != '/' && c != '\0') {
			continue;
		}
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			error_set(err, ERR_IO, "spool_dir: cannot create %s: "
			    "%s", path, strerror(errno));
			ok = false;
		}
		*p = c;
		if (c == '\0') {
			break;
		}
	}
	free(path);
	return ok;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Counts the files an earlier run left, and continues their numbering. */
static bool
scan(struct spool *s, struct error *err)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	struct stat st;
	uint64_t seq;

	if (d == NULL) {
		error_set(err, ERR_IO, "spool_dir %s: %s", s->dir,
		    strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		if (!seq_of_name(de->d_name, &seq) ||
		    fstatat(s->dir_fd, de->d_name, &st, 0) != 0) {
			continue;
		}
		s->files++;
		s->bytes += (uint64_t)st.st_size;
		if (seq >= s->next_seq) {
			s->next_seq = seq + 1;
		}
	}
	closedir(d);
	return true;
}

struct spool *
spool_open(const char *dir, int64_t max_bytes, struct error *err)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->fd = s->dir_fd = s->lock_fd = -1;
	s->max_bytes = (uint64_t)max_bytes;
	pthread_mutex_init(&s->mu, NULL);
	if (!make_dirs(dir, err)) {
		goto fail;
	}
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->lock_fd = s->dir_fd < 0 ? -1 : openat(s->dir_fd, "lock",
	    O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		error_set(err, ERR_IO, "spool_dir %s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		error_set(err, ERR_IO, "spool_dir %s is used by another "
		    "milepost process (%s)", dir, strerror(errno));
		goto fail;
	}
	if (!scan(s, err)) {
		goto fail;
	}
	if (s->files > 0) {
		log_info("spool %s: %" PRIu64 " file(s), %" PRIu64 " bytes "
		    "left by an earlier run, replayed once the database is "
		    "there", dir, s->files, s->bytes);
	}
	return s;
fail:
	spool_close(s);
	return NULL;
}

/* Starts a new file to append to. Called with mu held. */
static bool
open_next(struct spool *s)
{
	char name[SEQ_DIGITS + sizeof(SPOOL_SUFFIX)];

	snprintf(name, sizeof(name), "%0*" PRIu64 SPOOL_SUFFIX, SEQ_DIGITS,
	    s->next_seq);
	s->fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL |
	    O_APPEND | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		return false;
	}
	s->next_seq++;
	s->files++;
	s->fd_bytes = 0;
	/* The new name must survive a crash as surely as its records. */
	return fsync(s->dir_fd) == 0;
}

bool
spool_append(struct spool *s, const struct writer_item *item,
    struct error *err)
{
	struct strbuf rec;
	bool ok = false;

	strbuf_init(&rec);
	spool_record_encode(&rec, item, timeutil_now_us());
	if (strbuf_failed(&rec)) {
		error_set(err, ERR_NOMEM, "out of memory");
		strbuf_finish(&rec);
		return false;
	}
	pthread_mutex_lock(&s->mu);
	if (s->bytes + rec.len > s->max_bytes) {
		s->refused_full++;
		error_set(err, ERR_SPOOL_FULL, "the database is unavailable "
		    "and the spool is full; nothing was stored, retry later");
		goto done;
	}
	if (s->fd >= 0 && s->fd_bytes >= SPOOL_FILE_MAX) {
		close(s->fd);
		s->fd = -1;
	}
	if ((s->fd < 0 && !open_next(s)) ||
	    !write_all(s->fd, rec.data, rec.len) || fdatasync(s->fd) != 0) {
		error_set(err, ERR_IO, "cannot write to the spool: %s",
		    strerror(errno));
		/* A partial record would read as torn in the middle of the
		 * file: cut it. After a failed fdatasync the file's pages
		 * cannot be trusted either, so the next record goes to a
		 * new file. */
		if (s->fd >= 0) {
			if (ftruncate(s->fd, s->fd_bytes) != 0) {
				log_error("spool: cannot cut a partial record "
				    "(%s); replay drops it as torn",
				    strerror(errno));
			}
			close(s->fd);
			s->fd = -1;
		}
		goto done;
	}
	s->fd_bytes += (int64_t)rec.len;
	s->bytes += rec.len;
	s->appended++;
	ok = true;
done:
	pthread_mutex_unlock(&s->mu);
	strbuf_finish(&rec);
	return ok;
}

bool
spool_oldest(struct spool *s, char *path, size_t cap)
{
	uint64_t best = UINT64_MAX, seq;
	struct dirent *de;
	DIR *d;

	pthread_mutex_lock(&s->mu);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	d = s->files > 0 ? opendir(s->dir) : NULL;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (seq_of_name(de->d_name, &seq) && seq < best) {
			best = seq;
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	pthread_mutex_unlock(&s->mu);
	if (best == UINT64_MAX) {
		return false;
	}
	snprintf(path, cap, "%s/%0*" PRIu64 SPOOL_SUFFIX, s->dir, SEQ_DIGITS,
	    best);
	return true;
}

void
spool_remove(struct spool *s, const char *path, size_t size)
{
	if (unlink(path) != 0) {
		log_error("spool: cannot remove %s, which is stored (its "
		    "events would be skipped as duplicates if replayed): %s",
		    path, strerror(errno));
		return;
	}
	(void)fsync(s->dir_fd);
	pthread_mutex_lock(&s->mu);
	s->files--;
	s->bytes -= size < s->bytes ? size : s->bytes;
	pthread_mutex_unlock(&s->mu);
}

bool
spool_set_aside(struct spool *s, const char *path, const char *suffix,
    const void *data, size_t len, struct error *err)
{
	const char *base = strrchr(path, '/');
	char aside[4096];
	int fd = -1;
	bool ok;

	snprintf(aside, sizeof(aside), "%s/failed", s->dir);
	if (!make_dirs(aside, err)) {
		return false;
	}
	snprintf(aside, sizeof(aside), "%s/failed/%s%s", s->dir,
	    base != NULL ? base + 1 : path, suffix);
	fd = open(aside, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ok = fd >= 0 && write_all(fd, data, len) && fsync(fd) == 0;
	if (!ok) {
		error_set(err, ERR_IO, "cannot write %s: %s", aside,
		    strerror(errno));
	}
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

void
spool_stats(struct spool *s, struct spool_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = (struct spool_stats){
		.files = s->files, .bytes = s->bytes,
		.max_bytes = s->max_bytes, .appended = s->appended,
		.refused_full = s->refused_full,
	};
	pthread_mutex_unlock(&s->mu);
}

void
spool_metrics(struct spool *s, struct strbuf *out)
{
	struct spool_stats st;

	spool_stats(s, &st);
	strbuf_appendf(out,
	    "# HELP milepost_spool_files Spool files waiting for the "
	    "database.\n# TYPE milepost_spool_files gauge\n"
	    "milepost_spool_files %" PRIu64 "\n"
	    "# HELP milepost_spool_bytes Bytes of spool files waiting for the "
	    "database.\n# TYPE milepost_spool_bytes gauge\n"
	    "milepost_spool_bytes %" PRIu64 "\n"
	    "# HELP milepost_spool_max_bytes The spool's size limit "
	    "(spool_max_bytes).\n# TYPE milepost_spool_max_bytes gauge\n"
	    "milepost_spool_max_bytes %" PRIu64 "\n"
	    "# HELP milepost_spool_appended_total Requests acknowledged from "
	    "the spool while the database was unavailable.\n"
	    "# TYPE milepost_spool_appended_total counter\n"
	    "milepost_spool_appended_total %" PRIu64 "\n"
	    "# HELP milepost_spool_full_total Requests answered 503 because "
	    "the spool was full.\n# TYPE milepost_spool_full_total counter\n"
	    "milepost_spool_full_total %" PRIu64 "\n",
	    st.files, st.bytes, st.max_bytes, st.appended, st.refused_full);
}

void
spool_close(struct spool *s)
{
	if (s == NULL) {
		return;
	}
	if (s->fd >= 0) {
		close(s->fd);
	}
	if (s->lock_fd >= 0) {
		close(s->lock_fd);
	}
	if (s->dir_fd >= 0) {
		close(s->dir_fd);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->dir);
	free(s);
}
