/* ticker.c - the periodic thread. */
#include "server/ticker.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct ticker {
	void (*tick)(struct ticker *t, void *ctx);
	long (*interval_s)(void *ctx);
	void *ctx;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* to stop */
	bool stop;
};

bool
ticker_stopping(struct ticker *t)
{
	bool stop;

	pthread_mutex_lock(&t->lock);
	stop = t->stop;
	pthread_mutex_unlock(&t->lock);
	return stop;
}

static void *
ticker_main(void *arg)
{
	struct ticker *t = arg;
	struct timespec until;

	while (!ticker_stopping(t)) {
		t->tick(t, t->ctx);
		pthread_mutex_lock(&t->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += t->interval_s(t->ctx);
		while (!t->stop && pthread_cond_timedwait(&t->wake, &t->lock,
		    &until) == 0) {
			/* woken early, not to stop: wait on */
		}
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

struct ticker *
ticker_new(void (*tick)(struct ticker *t, void *ctx),
    long (*interval_s)(void *ctx), void *ctx, struct error *err)
{
	struct ticker *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		return NULL;
	}
	t->tick = tick;
	t->interval_s = interval_s;
	t->ctx = ctx;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
		error_set(err, ERR_INTERNAL, "cannot start a thread");
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

void
ticker_free(struct ticker *t)
{
	if (t == NULL) {
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
