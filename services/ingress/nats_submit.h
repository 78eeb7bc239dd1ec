/* NATS-native submit (DESIGN §5): request-reply on reqrun.submit.<tenant>, queue group
 * "ingress". Payload = the HTTP body, NATS header Idempotency-Key; the reply carries the
 * HTTP answer's body with headers Reqrun-Status and Reqrun-Request-Id. Submissions run
 * on a small worker pool: a wait must not block the subscription's thread. */
#ifndef RR_NATS_SUBMIT_H
#define RR_NATS_SUBMIT_H

#include "ingress.h"

typedef struct rr_nats_submit rr_nats_submit;

rr_status rr_nats_submit_start(rr_nats_submit **out, rr_ingress *ing);
/* Unsubscribes, answers what is queued, joins the workers, frees. NULL-safe. */
void rr_nats_submit_stop(rr_nats_submit *ns);

#endif
