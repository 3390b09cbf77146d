/* spool_replay.c - storing the spool's files when the database is back. */
#include "server/spool_replay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/spool_record.h"

/* Records queued to the writer at once: enough for group commits of
 * several requests, few enough that a file's replay stops soon when the
 * database goes away again. */
#define REPLAY_WINDOW 64

/* How often an idle replay looks at the spool and the database. */
#define REPLAY_IDLE_MS 1000

struct slot {
	struct writer_item item;
	const char *raw;	/* the record's bytes in the file */
	size_t raw_len;
};

struct spool_replay {
	struct spool *spool;
	struct writer *writer;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* Guarded by mu. */
	bool stopping;
	size_t pending;		/* queued records not complete yet */
	/* Counters. */
	atomic_ullong records, files, set_aside;
	/* The replay thread's. */
	struct slot slots[REPLAY_WINDOW];
};

/* Writer thread. */
static void
on_done(struct writer_item *item, void *arg)
{
	struct spool_replay *r = arg;

	(void)item;
	pthread_mutex_lock(&r->mu);
	r->pending--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

static bool
stopping(struct spool_replay *r)
{
	bool stop;

	pthread_mutex_lock(&r->mu);
	stop = r->stopping;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

/* Queues the n records of slots and waits until each is complete. False
 * when some could not be stored for now (the database went away, or the
 * disk refused what must be set aside): the file stays. */
static bool
run_window(struct spool_replay *r, struct slot *slots, size_t n,
    const char *path)
{
	struct error err = { 0 };
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		slots[i].item.done = on_done;
		slots[i].item.arg = r;
		pthread_mutex_lock(&r->mu);
		r->pending++;
		pthread_mutex_unlock(&r->mu);
		if (!writer_enqueue(r->writer, &slots[i].item, &err)) {
			slots[i].item.status = WRITER_UNAVAILABLE;
			on_done(&slots[i].item, r);
		}
	}
	pthread_mutex_lock(&r->mu);
	while (r->pending > 0) {
		pthread_cond_wait(&r->cond, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < n; i++) {
		switch (slots[i].item.status) {
		case WRITER_COMMITTED:
			atomic_fetch_add(&r->records, 1);
			break;
		case WRITER_FAILED:
			if (!spool_set_aside(r->spool, path, ".refused",
			    slots[i].raw, slots[i].raw_len, &err)) {
				log_error("spool replay: %s", err.message);
				ok = false;
				break;
			}
			log_error("spool replay: PostgreSQL refused a record "
			    "of %s (%zu events); kept under failed/", path,
			    slots[i].item.n_events);
			atomic_fetch_add(&r->set_aside, 1);
			break;
		default:
			ok = false;
		}
	}
	return ok;
}

/* What follows the last whole record of a file. False when it must stay
 * (it could not be set aside). */
static bool
handle_tail(struct spool_replay *r, const char *path,
    enum spool_record_result res, const char *tail, size_t len)
{
	struct error err = { 0 };

	if (res == SPOOL_RECORD_TORN) {
		/* Its fdatasync never returned: never acknowledged. */
		log_warn("spool replay: %s ends with %zu bytes of a record "
		    "whose write did not finish; dropped", path, len);
		return true;
	}
	if (!spool_set_aside(r->spool, path, ".damaged", tail, len, &err)) {
		log_error("spool replay: %s", err.message);
		return false;
	}
	log_error("spool replay: %s has %zu bytes that are no record "
	    "(damaged, or from another version); kept under failed/", path,
	    len);
	atomic_fetch_add(&r->set_aside, 1);
	return true;
}

static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0 ||
	    (data = malloc((size_t)st.st_size + 1)) == NULL) {
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return data;
fail:
	log_error("spool replay: cannot read %s: %s", path, strerror(errno));
	free(data);
	if (fd >= 0) {
		close(fd);
	}
	return NULL;
}

/* Stores the file at path and removes it. False when it must be tried
 * again later. */
static bool
replay_file(struct spool_replay *r, const char *path)
{
	struct slot *slots = r->slots;
	enum spool_record_result res = SPOOL_RECORD_OK;
	size_t len, off = 0, n = 0, used;
	char *data = read_file(path, &len);
	bool ok = data != NULL;

	while (ok && res == SPOOL_RECORD_OK) {
		writer_item_init(&slots[n].item);
		res = spool_record_decode(data + off, len - off,
		    &slots[n].item, &used);
		if (res == SPOOL_RECORD_OK) {
			slots[n].raw = data + off;
			slots[n].raw_len = used;
			off += used;
			n++;
		} else {
			writer_item_finish(&slots[n].item);
		}
		if (n == REPLAY_WINDOW || (n > 0 && res != SPOOL_RECORD_OK)) {
			ok = run_window(r, slots, n, path) && !stopping(r);
			for (size_t i = 0; i < n; i++) {
				writer_item_finish(&slots[i].item);
			}
			n = 0;
		}
	}
	if (ok && res == SPOOL_RECORD_NOMEM) {
		log_error("spool replay: out of memory reading %s", path);
		ok = false;
	}
	if (ok && res != SPOOL_RECORD_END) {
		ok = handle_tail(r, path, res, data + off, len - off);
	}
	if (ok) {
		spool_remove(r->spool, path, len);
		atomic_fetch_add(&r->files, 1);
		log_info("spool replay: %s stored and removed", path);
	}
	free(data);
	return ok;
}

static void *
replay_main(void *arg)
{
	struct spool_replay *r = arg;
	char path[4096];
	struct timespec until;
	bool progressed;

	pthread_mutex_lock(&r->mu);
	while (!r->stopping) {
		pthread_mutex_unlock(&r->mu);
		progressed = writer_is_ready(r->writer) &&
		    spool_oldest(r->spool, path, sizeof(path)) &&
		    replay_file(r, path);
		pthread_mutex_lock(&r->mu);
		if (!progressed && !r->stopping) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += REPLAY_IDLE_MS / 1000;
			pthread_cond_timedwait(&r->cond, &r->mu, &until);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct spool_replay *
spool_replay_new(struct spool *spool, struct writer *writer,
    struct error *err)
{
	struct spool_replay *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	r->spool = spool;
	r->writer = writer;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pthread_create(&r->thread, NULL, replay_main, r) != 0) {
		error_set(err, ERR_INTERNAL, "cannot start the spool replay "
		    "thread");
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return NULL;
	}
	return r;
}

void
spool_replay_metrics(struct spool_replay *r, struct strbuf *out)
{
	strbuf_appendf(out,
	    "# HELP milepost_spool_replayed_total Spooled requests stored "
	    "in PostgreSQL by the replay.\n"
	    "# TYPE milepost_spool_replayed_total counter\n"
	    "milepost_spool_replayed_total %llu\n"
	    "# HELP milepost_spool_files_replayed_total Spool files stored "
	    "and removed.\n"
	    "# TYPE milepost_spool_files_replayed_total counter\n"
	    "milepost_spool_files_replayed_total %llu\n"
	    "# HELP milepost_spool_set_aside_total Spooled records (refused "
	    "by PostgreSQL) and damaged bytes moved under failed/.\n"
	    "# TYPE milepost_spool_set_aside_total counter\n"
	    "milepost_spool_set_aside_total %llu\n",
	    (unsigned long long)atomic_load(&r->records),
	    (unsigned long long)atomic_load(&r->files),
	    (unsigned long long)atomic_load(&r->set_aside));
}

void
spool_replay_free(struct spool_replay *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
