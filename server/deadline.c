/* deadline.c - cuts connections whose request takes too long to arrive. */
#include "server/deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"

/* How often the watcher looks: the cut comes at most this late. */
#define TICK_MS 250

struct tracked {
	struct tracked *prev, *next;
	MHD_socket fd;
	int64_t since_ms;	/* the current request's time starts here */
	bool busy;		/* the request is complete */
	bool cut;
};

struct deadline {
	long timeout_ms;
	pthread_mutex_t lock;	/* guards the list and each entry */
	pthread_cond_t wake;
	bool stopping;
	bool running;
	pthread_t thread;
	struct tracked head;	/* circular list sentinel */
	atomic_ulong cuts;
};

static void
sweep(struct deadline *d)
{
	int64_t now = timeutil_monotonic_ms();

	for (struct tracked *t = d->head.next; t != &d->head; t = t->next) {
		if (t->busy || t->cut || now - t->since_ms <= d->timeout_ms) {
			continue;
		}
		/* The socket stays open (libmicrohttpd closes it, after
		 * telling us under this lock), so fd is still this one. */
		shutdown(t->fd, SHUT_RDWR);
		t->cut = true;
		atomic_fetch_add(&d->cuts, 1);
		log_info("closed a connection that took more than %lds to "
		    "send its request", d->timeout_ms / 1000);
	}
}

static void *
watch(void *arg)
{
	struct deadline *d = arg;
	struct timespec until;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->wake, &d->lock, &until);
		sweep(d);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

struct deadline *
deadline_new(long timeout_s, struct error *err)
{
	struct deadline *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	d->timeout_ms = timeout_s * 1000;
	d->head.next = d->head.prev = &d->head;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	if (timeout_s > 0) {
		if (pthread_create(&d->thread, NULL, watch, d) != 0) {
			error_set(err, ERR_INTERNAL, "cannot start the request "
			    "deadline thread");
			deadline_free(d);
			return NULL;
		}
		d->running = true;
	}
	return d;
}

void
deadline_free(struct deadline *d)
{
	if (d == NULL) {
		return;
	}
	if (d->running) {
		pthread_mutex_lock(&d->lock);
		d->stopping = true;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
	}
	/* MHD_stop_daemon reported every connection closed. */
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void
deadline_notify(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	struct deadline *d = cls;
	const union MHD_ConnectionInfo *info;
	struct tracked *t;

	if (!d->running) {
		return;
	}
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		t = calloc(1, sizeof(*t));
		/* Out of memory: this connection goes unbounded rather
		 * than refused. */
		if (t == NULL || info == NULL) {
			free(t);
			*socket_context = NULL;
			return;
		}
		t->fd = info->connect_fd;
		t->since_ms = timeutil_monotonic_ms();
		pthread_mutex_lock(&d->lock);
		t->next = d->head.next;
		t->prev = &d->head;
		t->next->prev = t;
		d->head.next = t;
		pthread_mutex_unlock(&d->lock);
		*socket_context = t;
		return;
	}
	t = *socket_context;
	if (t == NULL) {
		return;
	}
	pthread_mutex_lock(&d->lock);
	t->prev->next = t->next;
	t->next->prev = t->prev;
	pthread_mutex_unlock(&d->lock);
	free(t);
	*socket_context = NULL;
}

void
deadline_set_busy(struct deadline *d, struct MHD_Connection *conn,
    bool busy)
{
	const union MHD_ConnectionInfo *info;
	struct tracked *t;

	if (d == NULL || !d->running) {
		return;
	}
	info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	t = info != NULL ? info->socket_context : NULL;
	if (t == NULL) {
		return;
	}
	pthread_mutex_lock(&d->lock);
	t->busy = busy;
	t->since_ms = timeutil_monotonic_ms();
	pthread_mutex_unlock(&d->lock);
}

unsigned long
deadline_cut_count(const struct deadline *d)
{
	return d != NULL ? atomic_load(&d->cuts) : 0;
}
