/* Reading and cancelling requests by id: GET /v1/requests/{id} (with long-poll) and
 * POST /v1/requests/{id}/cancel. Tenant-scoped: another tenant's id is not found. */
#ifndef RR_REQUESTS_H
#define RR_REQUESTS_H

#include "ingress.h"
#include "reply.h"

#include <stdbool.h>
#include <stdint.h>

/* The record view; with wait_ms > 0 holds until terminal or wait_ms. */
void rr_requests_get(rr_ingress *ing, const char *tenant, const char *id, bool with_attempts,
                     int64_t wait_ms, rr_reply *out);
/* queued/retrying -> cancelled at once; processing -> cancel_requested and a cancel
 * message to the owning executor; terminal -> unchanged. Answers the record view. */
void rr_requests_cancel(rr_ingress *ing, const char *tenant, const char *id, rr_reply *out);

#endif
