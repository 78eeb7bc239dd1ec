/* One delivery of a request through DESIGN §4's executor steps: read or create the
 * record, decide, claim it with a compare-and-set, call upstream, classify, write the
 * outcome, settle the message once. */
#ifndef RR_JOB_H
#define RR_JOB_H

#include "executor.h"

#include "reqrun/record.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum rr_job_phase {
    RR_JOB_NEW,     /* delivered; nothing decided */
    RR_JOB_CALLING, /* the upstream call is in flight */
    RR_JOB_CALLED,  /* the call ended; its outcome is to be written */
} rr_job_phase;

struct rr_job {
    rr_executor *ex;
    rr_delivery *delivery;
    rr_delivery_meta meta;
    rr_request req;
    rr_record rec;
    uint64_t rev;
    rr_job_phase phase;
    uint64_t call_id;
    rr_call *call;
    int64_t call_timeout_ms;
    bool deadline_capped;    /* the call's timeout is the request's deadline */
    /* Parts still running before finish: the call, and on the hot path also the write of
     * the processing record (run at once); the part that ends last runs finish. */
    atomic_int parts;
    rr_status created;       /* hot path: how the processing record's write went */
    pthread_mutex_t mu;      /* guards settled, cancel_seen, draining, phase vs heartbeats */
    bool settled;
    bool cancel_seen;        /* a cancel message arrived for this request */
    bool draining;           /* the executor is handing this call back */
    char key[RR_RECORD_KEY_BUF];
    rr_job *next;            /* work queue */
    rr_job *reg_next;        /* registry */
    rr_job *reg_prev;
};

rr_job *rr_job_new(rr_executor *ex, rr_delivery *d);
/* Frees the job; its delivery must have been settled. */
void rr_job_free(rr_job *job);
/* Runs the job's current phase on a worker thread. The job either ends (settled and
 * left for the caller to free: returns true) or waits for its upstream call. */
bool rr_job_run(rr_executor *ex, rr_job *job);
/* A cancel message for this job's request: aborts its call if one is in flight. */
void rr_job_cancel(rr_executor *ex, rr_job *job);
/* Drain: the job's call is aborted and the request handed back to another executor. */
void rr_job_hand_back(rr_executor *ex, rr_job *job);
/* Heartbeat: tells NATS the job is still owned (unless it is settled). */
void rr_job_heartbeat(rr_job *job);

#endif
