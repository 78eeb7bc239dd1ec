/* The executor's threads: a pool of workers fed by the continuous pull of consumer
 * "executors", one heartbeat thread, and the cancel subscription. Jobs live in one
 * registry from delivery to settle. */
#include "executor.h"

#include "job.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS 16
#define HAND_BACK_WAIT_MS 10000

static struct timespec mono_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* ---- registry and queue (ex->mu held) ---- */

static void registry_add(rr_executor *ex, rr_job *job)
{
    job->reg_prev = NULL;
    job->reg_next = ex->jobs;
    if (ex->jobs != NULL)
        ex->jobs->reg_prev = job;
    ex->jobs = job;
    ex->n_jobs++;
}

static void registry_remove(rr_executor *ex, rr_job *job)
{
    if (job->reg_prev != NULL)
        job->reg_prev->reg_next = job->reg_next;
    else
        ex->jobs = job->reg_next;
    if (job->reg_next != NULL)
        job->reg_next->reg_prev = job->reg_prev;
    ex->n_jobs--;
}

static void queue_push(rr_executor *ex, rr_job *job)
{
    job->next = NULL;
    if (ex->queue_tail != NULL)
        ex->queue_tail->next = job;
    else
        ex->queue_head = job;
    ex->queue_tail = job;
}

void rr_executor_enqueue(rr_executor *ex, rr_job *job)
{
    pthread_mutex_lock(&ex->mu);
    queue_push(ex, job);
    pthread_cond_signal(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
}

int rr_executor_jobs(rr_executor *ex)
{
    pthread_mutex_lock(&ex->mu);
    int n = ex->n_jobs;
    pthread_mutex_unlock(&ex->mu);
    return n;
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
    rr_executor *ex = arg;
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        while (ex->queue_head == NULL && !ex->workers_exit)
            pthread_cond_wait(&ex->work_cv, &ex->mu);
        rr_job *job = ex->queue_head;
        if (job == NULL) {
            pthread_mutex_unlock(&ex->mu);
            return NULL;
        }
        ex->queue_head = job->next;
        if (ex->queue_head == NULL)
            ex->queue_tail = NULL;
        pthread_mutex_unlock(&ex->mu);

        if (!rr_job_run(ex, job))
            continue; /* waiting for its upstream call */
        pthread_mutex_lock(&ex->mu);
        registry_remove(ex, job);
        pthread_cond_broadcast(&ex->slots_cv);
        pthread_mutex_unlock(&ex->mu);
        rr_job_free(job);
        rr_bus_consumer_released(ex->consumer, 1);
    }
}

/* A delivery from the continuous pull (the subscription's thread): queue it. */
static void on_delivery(rr_delivery *d, void *ctx)
{
    rr_executor *ex = ctx;
    rr_job *job = rr_job_new(ex, d);
    if (job == NULL) { /* redelivered after AckWait */
        rr_delivery_settle(d, RR_SETTLE_DROP, 0);
        rr_bus_consumer_released(ex->consumer, 1);
        return;
    }
    pthread_mutex_lock(&ex->mu);
    registry_add(ex, job);
    queue_push(ex, job);
    pthread_cond_signal(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
}

/* InProgress for every job still owned, every AckWait/3. */
static void *heartbeat_main(void *arg)
{
    rr_executor *ex = arg;
    int64_t interval = ex->cfg->ack_wait_s * 1000 / 3;
    pthread_mutex_lock(&ex->mu);
    while (!ex->workers_exit) {
        struct timespec until = mono_in(interval);
        if (pthread_cond_timedwait(&ex->hb_cv, &ex->mu, &until) == 0)
            continue; /* signalled: exit is checked by the loop */
        for (rr_job *j = ex->jobs; j != NULL; j = j->reg_next)
            rr_job_heartbeat(j);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

static void on_cancel(const rr_bus_msg *m, void *ctx)
{
    rr_executor *ex = ctx;
    const char *subject = rr_bus_msg_subject(m);
    size_t prefix = sizeof RR_SUBJ_CANCEL - 1;
    if (strncmp(subject, RR_SUBJ_CANCEL, prefix) != 0)
        return;
    const char *key = subject + prefix; /* <tenant>.<id> */
    pthread_mutex_lock(&ex->mu);
    for (rr_job *j = ex->jobs; j != NULL; j = j->reg_next) {
        if (strcmp(j->key, key) == 0)
            rr_job_cancel(ex, j);
    }
    pthread_mutex_unlock(&ex->mu);
}

/* ---- lifecycle ---- */

rr_status rr_executor_start(rr_executor *ex, const rr_config *cfg, rr_bus *bus,
                            rr_upstream *upstream, rr_metrics *metrics)
{
    ex->cfg = cfg;
    ex->bus = bus;
    ex->upstream = upstream;
    ex->metrics = metrics;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->work_cv, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ex->slots_cv, &attr);
    pthread_cond_init(&ex->hb_cv, &attr);
    pthread_condattr_destroy(&attr);

    rr_status s = rr_bus_subscribe(bus, RR_SUBJ_CANCEL ">", NULL, on_cancel, ex,
                                   &ex->cancel_sub);
    if (s != RR_OK)
        return s;
    ex->n_workers = WORKERS;
    ex->workers = calloc((size_t)ex->n_workers, sizeof *ex->workers);
    if (ex->workers == NULL)
        return RR_NOMEM;
    for (int i = 0; i < ex->n_workers; i++)
        pthread_create(&ex->workers[i], NULL, worker_main, ex);
    pthread_create(&ex->heartbeat, NULL, heartbeat_main, ex);
    /* last: deliveries may arrive the moment this returns */
    s = rr_bus_consumer_start(bus, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS,
                              (int)cfg->executor_concurrency, on_delivery, ex, &ex->consumer);
    if (s != RR_OK)
        return s;
    atomic_store(&ex->ready, true);
    return RR_OK;
}

static bool wait_for_jobs(rr_executor *ex, int64_t timeout_ms)
{
    struct timespec until = mono_in(timeout_ms);
    pthread_mutex_lock(&ex->mu);
    while (ex->n_jobs > 0) {
        if (pthread_cond_timedwait(&ex->slots_cv, &ex->mu, &until) != 0)
            break;
    }
    bool none = ex->n_jobs == 0;
    pthread_mutex_unlock(&ex->mu);
    return none;
}

void rr_executor_drain(rr_executor *ex)
{
    atomic_store(&ex->ready, false);
    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    pthread_mutex_unlock(&ex->mu);
    rr_bus_consumer_stop(ex->consumer);
    rr_info("draining: pulling stopped, %d job(s) in flight", rr_executor_jobs(ex));

    if (!wait_for_jobs(ex, ex->cfg->drain_timeout_s * 1000)) {
        pthread_mutex_lock(&ex->mu);
        rr_info("drain timeout: handing %d job(s) back", ex->n_jobs);
        for (rr_job *j = ex->jobs; j != NULL; j = j->reg_next)
            rr_job_hand_back(ex, j);
        pthread_mutex_unlock(&ex->mu);
        if (!wait_for_jobs(ex, HAND_BACK_WAIT_MS))
            rr_warn("%d job(s) not settled at exit: they are redelivered after AckWait",
                    rr_executor_jobs(ex));
    }
    rr_bus_unsubscribe(ex->cancel_sub);
    ex->cancel_sub = NULL;
    pthread_mutex_lock(&ex->mu);
    ex->workers_exit = true;
    pthread_cond_broadcast(&ex->work_cv);
    pthread_cond_broadcast(&ex->hb_cv);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 0; i < ex->n_workers; i++)
        pthread_join(ex->workers[i], NULL);
    pthread_join(ex->heartbeat, NULL);
}

void rr_executor_free(rr_executor *ex)
{
    /* Jobs still registered were never settled: drop them (redelivered after AckWait). */
    while (ex->jobs != NULL) {
        rr_job *j = ex->jobs;
        registry_remove(ex, j);
        if (j->delivery != NULL)
            rr_delivery_settle(j->delivery, RR_SETTLE_DROP, 0);
        j->delivery = NULL;
        rr_job_free(j);
    }
    rr_bus_consumer_close(ex->consumer);
    free(ex->workers);
    pthread_cond_destroy(&ex->work_cv);
    pthread_cond_destroy(&ex->slots_cv);
    pthread_cond_destroy(&ex->hb_cv);
    pthread_mutex_destroy(&ex->mu);
}
