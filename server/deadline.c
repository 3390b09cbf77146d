/* deadline.c - cuts connections whose request takes too long to arrive. */
#include "server/deadline.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/ticker.h"

/* How often the watcher looks: the cut comes at most this late. */
#define TICK_S 1

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
	struct ticker *watcher;	/* NULL: no bound */
	struct tracked head;	/* circular list sentinel */
	unsigned long long cut_total;	/* guarded by lock */
};

/* Watcher thread: shuts down the sockets past their deadline. */
static void
tick(struct ticker *ticker, void *arg)
{
	struct deadline *d = arg;
	int64_t now = timeutil_monotonic_ms();
	unsigned long cut = 0;

	(void)ticker;
	pthread_mutex_lock(&d->lock);
	for (struct tracked *t = d->head.next; t != &d->head; t = t->next) {
		if (t->busy || t->cut || now - t->since_ms <= d->timeout_ms) {
			continue;
		}
		/* The socket stays open (libmicrohttpd closes it, after
		 * telling us under this lock), so fd is still this one. */
		shutdown(t->fd, SHUT_RDWR);
		t->cut = true;
		cut++;
	}
	d->cut_total += cut;
	pthread_mutex_unlock(&d->lock);
	/* One line per sweep, however many: a flood must not flood the
	 * log too. */
	if (cut > 0) {
		log_info("closed %lu connection(s) that took more than %lds to "
		    "send a request", cut, d->timeout_ms / 1000);
	}
}

static long
tick_interval_s(void *arg)
{
	(void)arg;
	return TICK_S;
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
	if (timeout_s > 0 && (d->watcher = ticker_new(tick, tick_interval_s, d,
	    err)) == NULL) {
		deadline_free(d);
		return NULL;
	}
	return d;
}

void
deadline_free(struct deadline *d)
{
	if (d == NULL) {
		return;
	}
	/* MHD_stop_daemon reported every connection closed. */
	ticker_free(d->watcher);
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

	if (d->watcher == NULL) {
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

	if (d == NULL || d->watcher == NULL) {
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

unsigned long long
deadline_cut_total(struct deadline *d)
{
	unsigned long long n;

	pthread_mutex_lock(&d->lock);
	n = d->cut_total;
	pthread_mutex_unlock(&d->lock);
	return n;
}
