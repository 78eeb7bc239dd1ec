/* Internals shared by the bus's files (bus.c: connection, publishing, KV, subscriptions;
 * bus_provision.c: the resources of DESIGN §5; bus_consumer.c: pull consumers and
 * deliveries). Only these files include nats.h. */
#ifndef RR_BUS_INTERNAL_H
#define RR_BUS_INTERNAL_H

#include "reqrun/bus.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define JS_API_WAIT_MS 5000
/* JetStream error codes (nats-server errors.json). */
#define JS_ERR_STREAM_NAME_EXISTS 10058
#define JS_ERR_WRONG_LAST_SEQUENCE 10071
#define JS_ERR_STORE_FAILED 10077

struct rr_bus {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv[2]; /* indexed by rr_kv_bucket */
    atomic_uint_fast64_t reconnects;
    atomic_bool connected;
    atomic_bool closing;
    atomic_int_fast64_t ready_checked_ms;
    atomic_bool ready_cached;
    atomic_bool denied; /* the server refused a publish or subscription (permissions) */
    char inbox_prefix[72]; /* REQRUN_NATS_INBOX_PREFIX: reply subjects start "<it>." */
    /* nats.c calls the connection callbacks on its own thread, also after Close: the
     * bus is freed only once the closed callback, the last one, has run */
    pthread_mutex_t closed_mu;
    pthread_cond_t closed_cv;
    bool closed;
};

/* Bucket names, indexed by rr_kv_bucket. */
extern const char *const rr_bus_bucket_names[2];

/* SIGTERM or SIGINT is pending (the services block them): stop waiting at start-up. */
bool rr_bus_stop_signal_pending(void);

/* nats.c's status as ReqRun's. */
rr_status rr_bus_status_of(natsStatus s);

#endif
