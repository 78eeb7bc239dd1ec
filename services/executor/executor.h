/* reqrun-executor's runtime: pulls deliveries of consumer "executors", runs each
 * through the job state machine (job.c) on a pool of workers, with upstream calls in
 * flight on one libcurl multi client, heartbeats for long calls, and cancel messages. */
#ifndef RR_EXECUTOR_H
#define RR_EXECUTOR_H

#include "reqrun/bus.h"
#include "reqrun/config.h"
#include "reqrun/metrics.h"
#include "reqrun/upstream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct rr_job rr_job;

typedef struct rr_executor_metrics {
    rr_counter *attempts;    /* outcome */
    rr_counter *terminal;    /* status */
    rr_counter *retries;     /* reason */
    rr_counter *deliveries;  /* result: processed, duplicate, stale, poison */
    rr_histogram *upstream_latency;
} rr_executor_metrics;

typedef struct rr_executor {
    const rr_config *cfg;
    rr_bus *bus;
    rr_upstream *upstream;
    rr_metrics *metrics;
    rr_executor_metrics m;

    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t work_cv;      /* workers: queue not empty */
    pthread_cond_t slots_cv;     /* drain: jobs went to zero */
    pthread_cond_t hb_cv;        /* heartbeat thread: exit */
    rr_job *queue_head;
    rr_job *queue_tail;
    rr_job *jobs;                /* every job not yet settled (registry) */
    int n_jobs;
    bool stopping;               /* no more pulling: new deliveries are handed back */
    bool workers_exit;

    pthread_t heartbeat;
    pthread_t *workers;
    int n_workers;
    rr_bus_consumer *consumer;
    rr_bus_sub *cancel_sub;
    atomic_bool ready;
} rr_executor;

/* Starts pulling and working. */
rr_status rr_executor_start(rr_executor *ex, const rr_config *cfg, rr_bus *bus,
                            rr_upstream *upstream, rr_metrics *metrics);
/* Stops pulling, lets in-flight work finish for up to REQRUN_DRAIN_TIMEOUT_S, hands
 * the rest back (attempt interrupted, NAK), then stops the threads. */
void rr_executor_drain(rr_executor *ex);
/* Frees what start allocated (after drain). */
void rr_executor_free(rr_executor *ex);
int rr_executor_jobs(rr_executor *ex);

/* Used by job.c: puts a job (back) on the work queue. */
void rr_executor_enqueue(rr_executor *ex, rr_job *job);

#endif
