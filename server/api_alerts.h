/* api_alerts.h - alert rules over the API (docs/api.md, docs/alerts.md):
 * GET and POST /api/v1/alerts/rules, GET, PUT and DELETE
 * /api/v1/alerts/rules/{id}. Reading takes a read key, changing an admin
 * key. */
#ifndef MILEPOST_SERVER_API_ALERTS_H
#define MILEPOST_SERVER_API_ALERTS_H

#include "server/app.h"

struct request;

void api_alert_rules_list(struct request *req, struct app *app);
void api_alert_rules_create(struct request *req, struct app *app);
void api_alert_rule_get(struct request *req, struct app *app);
void api_alert_rule_replace(struct request *req, struct app *app);
void api_alert_rule_delete(struct request *req, struct app *app);
/* POST /api/v1/alerts/rules/{id}/evaluate (admin key): the rule measured
 * and judged now; nothing stored, nobody notified. */
void api_alert_rule_action(struct request *req, struct app *app);
/* GET /api/v1/alerts (read key): every rule's state. */
void api_alerts_states(struct request *req, struct app *app);
/* GET /api/v1/alerts/events (read key): the transitions, newest first. */
void api_alerts_events(struct request *req, struct app *app);

#endif
