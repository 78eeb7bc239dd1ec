/* The webhook dispatcher: a few threads pulling from consumer "webhooks" on
 * REQRUN_EVENTS, delivering each terminal event once to the request's webhook URL (or
 * the tenant's default), with durable retries by NakWithDelay and a delivery log on the
 * record. A restart loses nothing: an unacked event is redelivered. */
#ifndef RR_WEBHOOKS_H
#define RR_WEBHOOKS_H

#include "reqrun/bus.h"
#include "reqrun/config.h"
#include "reqrun/metrics.h"
#include "reqrun/webhook.h"

typedef struct rr_webhooks rr_webhooks;

rr_status rr_webhooks_start(rr_webhooks **out, const rr_config *cfg, rr_bus *bus,
                            const rr_webhook_secrets *secrets, rr_metrics *metrics);
/* Stops fetching, finishes the deliveries in hand, joins the threads, frees. NULL-safe. */
void rr_webhooks_stop(rr_webhooks *w);

#endif
