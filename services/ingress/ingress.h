/* The ingress's shared context: what every part of reqrun-ingress is handed. */
#ifndef RR_INGRESS_H
#define RR_INGRESS_H

#include "reqrun/bus.h"
#include "reqrun/chatreq.h"
#include "reqrun/config.h"
#include "reqrun/metrics.h"
#include "reqrun/webhook.h"

#include <stdatomic.h>
#include <stdbool.h>

typedef struct rr_waiters rr_waiters;
typedef struct rr_keyring rr_keyring;

typedef struct rr_ingress_metrics {
    rr_counter *http_requests;  /* route, code */
    rr_counter *submits;        /* outcome: accepted, duplicate, replayed, joined, rejected */
    rr_counter *wait_outcomes;  /* outcome: completed, async */
    rr_histogram *submit_latency;
} rr_ingress_metrics;

typedef struct rr_ingress {
    const rr_config *cfg;
    rr_bus *bus;
    rr_waiters *waiters;
    rr_keyring *keys; /* NULL: dev mode */
    rr_webhook_secrets *webhook_secrets;
    rr_webhook_policy webhook_policy;
    rr_metrics *metrics;
    rr_ingress_metrics m;
    rr_chatreq_limits limits;
    atomic_bool shutting_down;
} rr_ingress;

#endif
