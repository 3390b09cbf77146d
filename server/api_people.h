/* api_people.h - DELETE /api/v1/people/{id}: erasure of one person (admin
 * key). */
#ifndef MILEPOST_SERVER_API_PEOPLE_H
#define MILEPOST_SERVER_API_PEOPLE_H

#include "server/app.h"

struct request;

void api_people_erase(struct request *req, struct app *app);

#endif
