/* api_plan.c - GET /api/v1/plan. The plan is the one of the state the
 * call holds (api_begin), so a reload in between never mixes two plans. */
#include "server/api_plan.h"

#include "common/plan_framework.h"
#include "common/timeutil.h"
#include "server/api.h"

void
api_plan(struct request *req, struct app *app)
{
	struct api_call *call = api_begin(req, app, API_READ);
	json_t *map, *body;
	struct error err;

	if (call == NULL) {
		return;		/* answered */
	}
	if (!api_params_known(req, &err)) {
		http_respond_error(req, &err);
		return;
	}
	map = plan_framework_json(call->state->plan);
	body = json_pack("{s:s}", "site", call->site_id);
	if (map == NULL || body == NULL || json_object_update(body, map) != 0 ||
	    json_object_set_new(body, "as_of",
	    api_time_json(timeutil_now_us())) != 0) {
		json_decref(body);
		body = NULL;
	}
	json_decref(map);
	if (body == NULL) {
		error_set(&err, ERR_INTERNAL, "out of memory");
		http_respond_error(req, &err);
		return;
	}
	http_respond_json(req, 200, body);
}
