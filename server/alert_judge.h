/* alert_judge.h - judging a stored rule: lock it, measure it, decide, and
 * (when asked) store its state and any transition, in one transaction.
 * The evaluator thread (alerter.c) and POST .../evaluate share it. */
#ifndef MILEPOST_SERVER_ALERT_JUDGE_H
#define MILEPOST_SERVER_ALERT_JUDGE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/alert_eval.h"
#include "common/alert_rule.h"
#include "common/error.h"
#include "server/alert_measure.h"
#include "server/app.h"
#include "server/query_index.h"

enum alert_outcome {
	ALERT_JUDGED,
	ALERT_BUSY,		/* another daemon is judging it right now */
	ALERT_ALREADY,		/* its last complete period is judged */
};

struct alert_judgement {
	enum alert_outcome outcome;
	long long id;
	struct alert_rule rule;
	struct alert_measurement m;
	struct alert_decision d;
	enum alert_state from, to;	/* the state before and after */
	bool recorded;			/* state stored (and the transition) */
	long long event_id;		/* the transition stored; 0: none */
	bool notified;			/* its webhooks queued */
};

/* Judges rule id of site at now_us against state's plan. record: store
 * the state, and the transition when it changed; otherwise only answer.
 * again: judge even a period already judged. False with err set on a
 * database error, ERR_NOT_FOUND for no such rule, or the rule's error
 * when the plan in force no longer allows it. */
bool alert_judge(PGconn *pg, struct query_index *qi,
    const struct app_state *state, const char *site, const char *id,
    int64_t now_us, bool record, bool again, struct alert_judgement *out,
    struct error *err);

#endif
