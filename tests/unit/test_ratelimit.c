/* The token bucket against a fake clock: bursts, refill, Retry-After,
 * batches larger than the burst, separate keys, and bounded memory when
 * more keys come than the table holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>

#include "common/ratelimit.h"

static int64_t fake_now;

static int64_t
fake_clock(void)
{
	return fake_now;
}

static struct ratelimit *
limiter(double rate, double burst, size_t slots)
{
	struct error err = { 0 };
	struct ratelimit *rl = ratelimit_new(rate, burst, slots, fake_clock,
	    &err);

	if (rl == NULL) {
		fail_msg("ratelimit_new: %s", err.message);
	}
	return rl;
}

static bool
take(struct ratelimit *rl, const char *key, double cost, long *retry)
{
	return ratelimit_take(rl, key, strlen(key), cost, retry);
}

static void
test_burst_then_refusal(void **state)
{
	struct ratelimit *rl;
	long retry = -1;

	(void)state;
	fake_now = 1000;
	rl = limiter(2, 5, 256);
	for (int i = 0; i < 5; i++) {
		assert_true(take(rl, "a", 1, &retry));
	}
	assert_false(take(rl, "a", 1, &retry));
	/* 2 per second: one token is 500 ms away, announced as 1 s. */
	assert_int_equal(retry, 1);
	fake_now += 499;
	assert_false(take(rl, "a", 1, &retry));
	fake_now += 1;
	assert_true(take(rl, "a", 1, &retry));
	assert_false(take(rl, "a", 1, &retry));
	/* Refill stops at the burst. */
	fake_now += 60000;
	for (int i = 0; i < 5; i++) {
		assert_true(take(rl, "a", 1, &retry));
	}
	assert_false(take(rl, "a", 1, &retry));
	ratelimit_free(rl);
}

static void
test_retry_after_counts_the_cost(void **state)
{
	struct ratelimit *rl;
	long retry = -1;

	(void)state;
	fake_now = 0;
	rl = limiter(0.5, 10, 256);
	assert_true(take(rl, "k", 10, &retry));
	/* 4 tokens at 0.5/s: 8 s. */
	assert_false(take(rl, "k", 4, &retry));
	assert_int_equal(retry, 8);
	fake_now += 7999;
	assert_false(take(rl, "k", 4, &retry));
	assert_int_equal(retry, 1);
	fake_now += 1;
	assert_true(take(rl, "k", 4, &retry));
	ratelimit_free(rl);
}

static void
test_cost_above_burst_goes_into_debt(void **state)
{
	struct ratelimit *rl;
	long retry = -1;

	(void)state;
	fake_now = 0;
	rl = limiter(10, 20, 256);
	/* 50 events with a burst of 20: admitted on a full bucket... */
	assert_true(take(rl, "k", 50, &retry));
	/* ...which then owes 30: 3 s to zero, 3.1 s to one token. */
	assert_false(take(rl, "k", 1, &retry));
	assert_int_equal(retry, 4);
	fake_now += 3100;
	assert_true(take(rl, "k", 1, &retry));
	/* A second big batch waits for a full bucket again. */
	assert_false(take(rl, "k", 50, &retry));
	assert_int_equal(retry, 2);
	ratelimit_free(rl);
}

static void
test_keys_are_separate(void **state)
{
	struct ratelimit *rl;
	long retry;

	(void)state;
	fake_now = 0;
	rl = limiter(1, 1, 256);
	assert_true(take(rl, "alpha", 1, &retry));
	assert_false(take(rl, "alpha", 1, &retry));
	assert_true(take(rl, "beta", 1, &retry));
	/* Keys are bytes: a prefix is another key. */
	assert_true(ratelimit_take(rl, "alphabet", 5, 1, &retry) == false);
	assert_true(ratelimit_take(rl, "alphabet", 6, 1, &retry));
	ratelimit_free(rl);
}

static void
test_many_keys_bounded_table(void **state)
{
	struct ratelimit *rl;
	char key[32];
	long retry;
	int refused = 0;

	(void)state;
	fake_now = 0;
	/* 100,000 keys through a table of 256 slots: every new key finds a
	 * slot (the least recently used goes), none is refused. */
	rl = limiter(1, 1, 256);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		refused += !take(rl, key, 1, &retry);
	}
	assert_int_equal(refused, 0);
	/* A key just used is still remembered and limited. */
	assert_false(take(rl, key, 1, &retry));
	/* Once refilled, slots are free for new keys. */
	fake_now += 2000;
	assert_true(take(rl, "fresh", 1, &retry));
	ratelimit_free(rl);
}

#define RACERS 4
#define TRIES 2000

static struct ratelimit *shared;

static void *
racer(void *arg)
{
	long retry, *admitted = arg;
	int key;

	for (int i = 0; i < TRIES; i++) {
		*admitted += ratelimit_take(shared, "same", 4, 1, &retry);
		/* Other keys in other stripes at the same time; few, so
		 * that none takes the shared key's slot. */
		key = i % 32;
		ratelimit_take(shared, &key, sizeof(key), 1, &retry);
	}
	return NULL;
}

static void
test_threads_share_a_bucket(void **state)
{
	pthread_t threads[RACERS];
	long admitted[RACERS] = { 0 }, total = 0;

	(void)state;
	/* The clock stands still: exactly the burst is admitted, however
	 * the threads interleave. */
	fake_now = 0;
	shared = limiter(1, 1000, 4096);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(pthread_create(&threads[i], NULL, racer,
		    &admitted[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(threads[i], NULL);
		total += admitted[i];
	}
	assert_int_equal(total, 1000);
	ratelimit_free(shared);
}

static void
test_invalid_rate(void **state)
{
	struct error err = { 0 };

	(void)state;
	assert_null(ratelimit_new(0, 5, 256, fake_clock, &err));
	assert_int_equal(err.code, ERR_CONFIG);
	ratelimit_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refusal),
		cmocka_unit_test(test_retry_after_counts_the_cost),
		cmocka_unit_test(test_cost_above_burst_goes_into_debt),
		cmocka_unit_test(test_keys_are_separate),
		cmocka_unit_test(test_many_keys_bounded_table),
		cmocka_unit_test(test_threads_share_a_bucket),
		cmocka_unit_test(test_invalid_rate),
	};

	if (sodium_init() < 0) {
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
