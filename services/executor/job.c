/* The executor's per-delivery state machine (DESIGN §4, "Executor"). Every path ends in
 * exactly one settle of the delivery; a job that lost ownership settles with DROP. */
#include "job.h"

#include "reqrun/clock.h"
#include "reqrun/crypto.h"
#include "reqrun/log.h"
#include "reqrun/retry.h"
#include "reqrun/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAS_ROUNDS 8
#define TRANSIENT_NAK_MS 1000
#define EARLY_SLACK_MS 50
#define WRITE_RETRY_FIRST_MS 50
#define WRITE_RETRY_MAX_MS 2000

#define JOB_CTX(job)                                                                         \
    RR_LOG_CTX(.request_id = (job)->req.id, .tenant = (job)->req.tenant,                     \
               .attempt = (int)(job)->rec.attempts)

static _Thread_local uint64_t rng_state;

static uint64_t *thread_rng(void)
{
    if (rng_state == 0 && rr_random_bytes(&rng_state, sizeof rng_state) != RR_OK)
        rng_state = (uint64_t)rr_mono_us();
    return &rng_state;
}

rr_job *rr_job_new(rr_executor *ex, rr_delivery *d)
{
    rr_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->ex = ex;
    job->delivery = d;
    job->meta = rr_delivery_meta_of(d);
    job->phase = RR_JOB_NEW;
    pthread_mutex_init(&job->mu, NULL);
    return job;
}

void rr_job_free(rr_job *job)
{
    if (job == NULL)
        return;
    rr_request_free(&job->req);
    rr_record_free(&job->rec);
    rr_call_destroy(job->call);
    pthread_mutex_destroy(&job->mu);
    free(job);
}

static bool stopping(rr_executor *ex)
{
    pthread_mutex_lock(&ex->mu);
    bool s = ex->stopping;
    pthread_mutex_unlock(&ex->mu);
    return s;
}

/* Sends the one settle of this delivery. Returns true: the job is over. */
static bool settle(rr_executor *ex, rr_job *job, rr_settle how, int64_t delay_ms,
                   const char *result)
{
    pthread_mutex_lock(&job->mu);
    rr_status s = rr_delivery_settle(job->delivery, how, delay_ms);
    job->delivery = NULL;
    job->settled = true;
    pthread_mutex_unlock(&job->mu);
    if (s != RR_OK && how != RR_SETTLE_DROP)
        rr_log(RR_LOG_WARN, JOB_CTX(job), "settle failed (%s): the message is redelivered",
               rr_status_str(s));
    rr_counter_add(ex->m.deliveries, result, NULL, 1);
    return true;
}

static void log_terminal(rr_executor *ex, rr_job *job)
{
    const rr_record *rec = &job->rec;
    rr_counter_add(ex->m.terminal, rr_state_str(rec->state), NULL, 1);
    rr_log(RR_LOG_INFO,
           RR_LOG_CTX(.request_id = rec->id, .tenant = rec->tenant, .attempt = (int)rec->attempts,
                      .status = rr_state_str(rec->state),
                      .http_status = (int)rec->result_status,
                      .duration_us = (rec->updated_ms - rec->created_ms) * 1000 + 1,
                      .code = rec->last_error.code[0] ? rec->last_error.code : NULL),
           "request %s", rr_state_str(rec->state));
}

/* ---- record transitions ---- */

static void to_terminal(rr_record *rec, rr_state state, const char *code, const char *message,
                        uint32_t upstream_status, int64_t now)
{
    rec->state = state;
    rec->updated_ms = now;
    rec->next_attempt_ms = 0;
    rr_record_set_error(rec, code, message, upstream_status, false);
}

/* The attempt of an owner that stopped heartbeating (crash, stall, drain). */
static void interrupt_last_attempt(rr_record *rec, int64_t now, const char *code)
{
    rr_attempt *a = rr_record_last_attempt(rec);
    if (a != NULL && a->outcome == RR_OUTCOME_IN_PROGRESS) {
        a->outcome = RR_OUTCOME_INTERRUPTED;
        a->finished_ms = now;
        snprintf(a->error_code, sizeof a->error_code, "%s", code);
    }
}

/* Makes this delivery the owner of attempt n+1. */
static rr_status claim(rr_executor *ex, rr_job *job, int64_t now)
{
    rr_record *rec = &job->rec;
    rr_attempt a;
    memset(&a, 0, sizeof a);
    a.number = rec->attempts + 1;
    a.started_ms = now;
    a.outcome = RR_OUTCOME_IN_PROGRESS;
    snprintf(a.executor, sizeof a.executor, "%s", ex->cfg->instance_id);
    if (rr_record_add_attempt(rec, &a) != RR_OK)
        return RR_NOMEM;
    rec->attempts = a.number;
    rec->state = RR_STATE_PROCESSING;
    rec->updated_ms = now;
    rec->next_attempt_ms = 0;
    rec->owner_delivery = job->meta.consumer_seq;
    snprintf(rec->owner_instance, sizeof rec->owner_instance, "%s", ex->cfg->instance_id);
    return RR_OK;
}

/* This delivery claimed the record last (its state aside). */
static bool claimed_by_us(rr_executor *ex, const rr_job *job, const rr_record *rec)
{
    return rec->owner_delivery == job->meta.consumer_seq &&
           strcmp(rec->owner_instance, ex->cfg->instance_id) == 0;
}

static bool owned_by_us(rr_executor *ex, const rr_job *job, const rr_record *rec)
{
    return rec->state == RR_STATE_PROCESSING && claimed_by_us(ex, job, rec);
}

/* ---- begin: decode, read or create, decide, claim ---- */

/* Requests published directly on NATS may leave options unset: apply the defaults. */
static bool request_valid(rr_executor *ex, rr_job *job)
{
    rr_request *r = &job->req;
    char subject[128];
    snprintf(subject, sizeof subject, RR_SUBJ_REQUESTS "%s", r->tenant);
    if (!rr_id_valid(r->id) || !rr_tenant_valid(r->tenant) || r->body_len == 0 ||
        strcmp(subject, rr_delivery_subject(job->delivery)) != 0)
        return false;
    if (r->max_attempts == 0 || r->max_attempts > (uint32_t)ex->cfg->max_attempts)
        r->max_attempts = (uint32_t)ex->cfg->max_attempts;
    if (r->created_ms == 0)
        r->created_ms = rr_now_ms();
    int64_t cap = r->created_ms + ex->cfg->deadline_s * 1000;
    if (r->deadline_ms == 0 || r->deadline_ms > cap)
        r->deadline_ms = cap;
    return true;
}

/* The missing record, made processing and owned by this delivery (not yet written). */
static rr_status new_processing(rr_executor *ex, rr_job *job, int64_t now)
{
    rr_record_free(&job->rec);
    rr_status s = rr_record_from_request(&job->rec, &job->req, RR_STATE_QUEUED,
                                         job->meta.stream_seq, now);
    if (s == RR_OK)
        s = claim(ex, job, now);
    if (s != RR_OK)
        rr_record_free(&job->rec);
    return s;
}

/* Creates the missing record directly as processing (one write). */
static rr_status create_processing(rr_executor *ex, rr_job *job, int64_t now)
{
    rr_status s = new_processing(ex, job, now);
    if (s == RR_OK)
        s = rr_store_put(ex->bus, &job->rec, 0, &job->rev, NULL);
    if (s != RR_OK)
        rr_record_free(&job->rec);
    return s;
}

typedef enum decision_kind {
    D_ACK,        /* nothing to do: terminal or a duplicate submission */
    D_DROP,       /* another delivery owns the record */
    D_NAK,        /* a retry delivered before its time */
    D_WRITE_TERM, /* write a terminal state, then Term */
    D_CLAIM,      /* write processing, then call upstream */
} decision_kind;

static decision_kind decide(rr_executor *ex, rr_job *job, int64_t now, int64_t *nak_ms)
{
    rr_record *rec = &job->rec;
    if (rr_state_terminal(rec->state))
        return D_ACK;
    if (rec->stream_seq != job->meta.stream_seq ||
        memcmp(rec->body_hash, job->req.body_hash, RR_SHA256_LEN) != 0)
        return D_ACK;
    if (rec->state == RR_STATE_PROCESSING) {
        if (rec->owner_delivery >= job->meta.consumer_seq)
            return D_DROP;
        interrupt_last_attempt(rec, now, "executor_interrupted");
    }
    if (rec->deadline_ms > 0 && now >= rec->deadline_ms) {
        to_terminal(rec, RR_STATE_EXPIRED, "deadline_exceeded",
                    "the request's deadline passed before it completed", 0, now);
        return D_WRITE_TERM;
    }
    if (rec->cancel_requested) {
        to_terminal(rec, RR_STATE_CANCELLED, "request_cancelled", "cancelled by the client", 0,
                    now);
        return D_WRITE_TERM;
    }
    if (rec->state == RR_STATE_RETRYING && rec->next_attempt_ms > now + EARLY_SLACK_MS) {
        *nak_ms = rec->next_attempt_ms - now;
        return D_NAK;
    }
    if ((int64_t)job->meta.num_delivered >= rr_config_max_deliver(ex->cfg)) {
        to_terminal(rec, RR_STATE_FAILED, "max_deliveries_exceeded",
                    "the request was delivered the maximum number of times", 0, now);
        return D_WRITE_TERM;
    }
    if (rec->attempts >= rec->max_attempts) {
        char msg[128];
        snprintf(msg, sizeof msg, "gave up after %u attempt(s)", rec->attempts);
        to_terminal(rec, RR_STATE_FAILED, "max_attempts_exceeded", msg, 0, now);
        return D_WRITE_TERM;
    }
    if (claim(ex, job, now) != RR_OK)
        return D_DROP;
    return D_CLAIM;
}

static void start_call(rr_executor *ex, rr_job *job, int parts);
static bool finish(rr_executor *ex, rr_job *job);

/* A part of the job ended; true for the last one, which goes on to finish. */
static bool part_done(rr_job *job)
{
    return atomic_fetch_sub(&job->parts, 1) == 1;
}

/* The hot path: a first delivery whose record does not exist yet. The upstream call
 * starts at once and the processing record is written meanwhile, so the write costs no
 * time on the way to the answer. Should the write fail, finish discards the result. */
static bool begin_first(rr_executor *ex, rr_job *job)
{
    start_call(ex, job, 2);
    job->created = rr_store_put(ex->bus, &job->rec, 0, &job->rev, NULL);
    return part_done(job) ? finish(ex, job) : false;
}

static bool begin(rr_executor *ex, rr_job *job)
{
    size_t len = 0;
    const void *data = rr_delivery_data(job->delivery, &len);
    if (rr_request_decode(&job->req, data, len) != RR_OK || !request_valid(ex, job)) {
        rr_error("undecodable or invalid request message on %s (stream seq %llu): terminated",
                 rr_delivery_subject(job->delivery),
                 (unsigned long long)job->meta.stream_seq);
        return settle(ex, job, RR_SETTLE_TERM, 0, "poison");
    }
    rr_record_key(job->key, job->req.tenant, job->req.id);
    if (stopping(ex)) /* draining: leave new work to the other executors */
        return settle(ex, job, RR_SETTLE_NAK, rr_bus_consumer_quiet_ms(ex->consumer),
                      "handed_back");

    int64_t now = rr_now_ms();
    /* The hot path, unless the ingress said it writes the record itself. */
    if (job->meta.num_delivered == 1 && !job->req.record_by_ingress &&
        now < job->req.deadline_ms && new_processing(ex, job, now) == RR_OK)
        return begin_first(ex, job);
    for (int round = 0; round < MAX_CAS_ROUNDS; round++) {
        now = rr_now_ms();
        rr_record_free(&job->rec);
        rr_status s = rr_store_get(ex->bus, job->req.tenant, job->req.id, &job->rec, &job->rev);
        if (s == RR_NOT_FOUND) {
            /* A NATS-native submission, or an ingress that stopped between publish and
             * record: the message is the request. */
            if (now < job->req.deadline_ms) {
                s = create_processing(ex, job, now);
                if (s == RR_OK) {
                    start_call(ex, job, 1);
                    return false;
                }
                if (s == RR_EXISTS)
                    continue;
            } else {
                s = rr_record_from_request(&job->rec, &job->req, RR_STATE_QUEUED,
                                           job->meta.stream_seq, now);
                if (s == RR_OK) {
                    to_terminal(&job->rec, RR_STATE_EXPIRED, "deadline_exceeded",
                                "the request's deadline passed before it started", 0, now);
                    s = rr_store_put(ex->bus, &job->rec, 0, &job->rev, NULL);
                    if (s == RR_OK) {
                        log_terminal(ex, job);
                        return settle(ex, job, RR_SETTLE_TERM, 0, "processed");
                    }
                    if (s == RR_EXISTS)
                        continue;
                }
            }
        }
        if (s == RR_INVALID) /* a record we cannot read: leave it, stop the message */
            return settle(ex, job, RR_SETTLE_TERM, 0, "poison");
        if (s != RR_OK)
            return settle(ex, job, RR_SETTLE_NAK, TRANSIENT_NAK_MS, "transient");

        int64_t nak_ms = 0;
        switch (decide(ex, job, now, &nak_ms)) {
        case D_ACK:
            if (rr_state_terminal(job->rec.state) &&
                rr_store_publish_event(ex->bus, &job->rec, job->rev, true) != RR_OK)
                return settle(ex, job, RR_SETTLE_DROP, 0, "transient");
            return settle(ex, job, RR_SETTLE_ACK, 0,
                          rr_state_terminal(job->rec.state) ? "terminal" : "duplicate");
        case D_DROP:
            return settle(ex, job, RR_SETTLE_DROP, 0, "stale");
        case D_NAK:
            return settle(ex, job, RR_SETTLE_NAK, nak_ms, "early");
        case D_WRITE_TERM:
        case D_CLAIM: {
            bool term = rr_state_terminal(job->rec.state);
            rr_status es = RR_OK;
            s = rr_store_put(ex->bus, &job->rec, job->rev, &job->rev, &es);
            if (s == RR_CONFLICT)
                continue;
            if (s != RR_OK)
                return settle(ex, job, RR_SETTLE_NAK, TRANSIENT_NAK_MS, "transient");
            if (!term) {
                start_call(ex, job, 1);
                return false;
            }
            log_terminal(ex, job);
            /* Settle only once the terminal event is stored; else redelivery re-sends it. */
            return settle(ex, job, es == RR_OK ? RR_SETTLE_TERM : RR_SETTLE_DROP, 0,
                          "processed");
        }
        }
    }
    return settle(ex, job, RR_SETTLE_NAK, TRANSIENT_NAK_MS, "contended");
}

/* ---- the upstream call ---- */

static void on_call_done(rr_call *call, void *ctx)
{
    rr_job *job = ctx;
    pthread_mutex_lock(&job->mu);
    job->call = call;
    job->phase = RR_JOB_CALLED;
    rr_executor *ex = job->ex;
    pthread_mutex_unlock(&job->mu);
    if (part_done(job))
        rr_executor_enqueue(ex, job);
}

/* Starts the upstream call; PARTS counts it and what else runs before finish. */
static void start_call(rr_executor *ex, rr_job *job, int parts)
{
    atomic_store(&job->parts, parts);
    int64_t now = rr_now_ms();
    int64_t timeout = ex->cfg->upstream_timeout_s * 1000;
    int64_t remaining = job->rec.deadline_ms - now;
    job->deadline_capped = remaining < timeout;
    job->call_timeout_ms = job->deadline_capped ? remaining : timeout;
    pthread_mutex_lock(&job->mu);
    if (job->cancel_seen || job->draining) {
        /* Cancelled before the call started: finish as an aborted call. */
        job->phase = RR_JOB_CALLED;
        pthread_mutex_unlock(&job->mu);
        if (part_done(job))
            rr_executor_enqueue(ex, job);
        return;
    }
    job->phase = RR_JOB_CALLING;
    /* Holding job->mu: a cancel cannot read call_id before it is set. The done callback
     * runs on the client thread and waits for the lock. */
    rr_status s = rr_upstream_start(ex->upstream, job->req.id, job->req.body, job->req.body_len,
                                    job->call_timeout_ms, on_call_done, job, &job->call_id);
    if (s != RR_OK)
        job->phase = RR_JOB_CALLED; /* no call: finishes as aborted below */
    pthread_mutex_unlock(&job->mu);
    if (s != RR_OK && part_done(job))
        rr_executor_enqueue(ex, job);
}

void rr_job_cancel(rr_executor *ex, rr_job *job)
{
    pthread_mutex_lock(&job->mu);
    job->cancel_seen = true;
    if (job->phase == RR_JOB_CALLING)
        rr_upstream_abort(ex->upstream, job->call_id);
    pthread_mutex_unlock(&job->mu);
}

void rr_job_hand_back(rr_executor *ex, rr_job *job)
{
    pthread_mutex_lock(&job->mu);
    job->draining = true;
    if (job->phase == RR_JOB_CALLING)
        rr_upstream_abort(ex->upstream, job->call_id);
    pthread_mutex_unlock(&job->mu);
}

void rr_job_heartbeat(rr_job *job)
{
    pthread_mutex_lock(&job->mu);
    if (!job->settled && job->delivery != NULL)
        rr_delivery_in_progress(job->delivery);
    pthread_mutex_unlock(&job->mu);
}

/* ---- finish: classify, write the outcome, settle ---- */

typedef struct outcome {
    rr_call_kind kind;
    int http_status;
    const char *body;
    size_t body_len;
    const char *detail;
    const char *retry_after;
    const char *retry_after_ms;
    bool hand_back;
    rr_retry_decision d;
} outcome;

static outcome read_outcome(rr_executor *ex, rr_job *job)
{
    outcome o;
    memset(&o, 0, sizeof o);
    const rr_call_result *r = job->call != NULL ? rr_call_result_of(job->call) : NULL;
    pthread_mutex_lock(&job->mu);
    bool cancel_seen = job->cancel_seen, draining = job->draining;
    pthread_mutex_unlock(&job->mu);
    if (r != NULL) {
        o.kind = r->kind;
        o.http_status = r->http_status;
        o.body = r->body;
        o.body_len = r->body_len;
        o.detail = r->detail;
        o.retry_after = r->retry_after;
        o.retry_after_ms = r->retry_after_ms;
        rr_histogram_observe(ex->m.upstream_latency, r->duration_ms / 1000.0);
    } else {
        o.kind = RR_CALL_CANCELLED;
        o.detail = "aborted before the call started";
    }
    if (o.kind == RR_CALL_TIMEOUT && job->deadline_capped)
        o.kind = RR_CALL_DEADLINE;
    o.hand_back = o.kind == RR_CALL_CANCELLED && draining && !cancel_seen;
    o.d = rr_retry_classify(o.kind, o.http_status, o.body, o.body_len, ex->cfg->retry_ambiguous);
    if (o.hand_back) {
        o.d.outcome = RR_OUTCOME_INTERRUPTED;
        snprintf(o.d.error_code, sizeof o.d.error_code, "executor_draining");
    }
    return o;
}

/* Applies the call's outcome to job->rec. Returns how to settle after the write. */
static rr_settle apply_outcome(rr_executor *ex, rr_job *job, const outcome *o, int64_t now,
                               int64_t *nak_ms)
{
    rr_record *rec = &job->rec;
    rr_attempt *a = rr_record_last_attempt(rec);
    if (a != NULL && a->outcome == RR_OUTCOME_IN_PROGRESS) {
        a->finished_ms = now;
        a->upstream_status = o->kind == RR_CALL_ANSWERED ? (uint32_t)o->http_status : 0;
        a->outcome = o->d.outcome;
        snprintf(a->error_code, sizeof a->error_code, "%s", o->d.error_code);
    }
    rec->updated_ms = now;
    uint32_t status = o->kind == RR_CALL_ANSWERED ? (uint32_t)o->http_status : 0;

    if (o->hand_back) {
        *nak_ms = rr_bus_consumer_quiet_ms(ex->consumer);
        rec->state = RR_STATE_RETRYING;
        rec->next_attempt_ms = now + *nak_ms;
        return RR_SETTLE_NAK;
    }
    if (o->d.outcome == RR_OUTCOME_SUCCESS) {
        rec->state = RR_STATE_COMPLETED;
        rec->next_attempt_ms = 0;
        rr_record_set_result(rec, o->body, o->body_len, status);
        return RR_SETTLE_ACK;
    }
    if (rec->cancel_requested || o->kind == RR_CALL_CANCELLED) {
        to_terminal(rec, RR_STATE_CANCELLED, "request_cancelled", "cancelled by the client", 0,
                    now);
        return RR_SETTLE_TERM;
    }
    if (o->kind == RR_CALL_DEADLINE) {
        to_terminal(rec, RR_STATE_EXPIRED, "deadline_exceeded",
                    "the request's deadline passed during the attempt", 0, now);
        return RR_SETTLE_TERM;
    }
    char msg[384];
    if (o->d.retry) {
        if (rec->attempts >= rec->max_attempts) {
            snprintf(msg, sizeof msg, "gave up after %u attempt(s); last: %s", rec->attempts,
                     o->d.error_code);
            to_terminal(rec, RR_STATE_FAILED, "max_attempts_exceeded", msg, status, now);
            return RR_SETTLE_TERM;
        }
        rr_retry_policy p = {ex->cfg->retry_base_ms, ex->cfg->retry_max_ms};
        int64_t delay = rr_retry_delay_ms(&p, rec->attempts, o->retry_after, o->retry_after_ms,
                                          now, thread_rng());
        if (rec->deadline_ms > 0 && now + delay >= rec->deadline_ms) {
            snprintf(msg, sizeof msg, "the next attempt could not start before the deadline "
                                      "(last: %s)",
                     o->d.error_code);
            to_terminal(rec, RR_STATE_EXPIRED, "deadline_exceeded", msg, status, now);
            return RR_SETTLE_TERM;
        }
        rec->state = RR_STATE_RETRYING;
        rec->next_attempt_ms = now + delay;
        snprintf(msg, sizeof msg, "%s", o->kind == RR_CALL_ANSWERED ? "upstream answered"
                                                                   : o->detail);
        rr_record_set_error(rec, o->d.error_code, msg, status, true);
        rr_counter_add(ex->m.retries, o->d.error_code, NULL, 1);
        *nak_ms = delay;
        return RR_SETTLE_NAK;
    }
    snprintf(msg, sizeof msg, "%s",
             o->kind == RR_CALL_ANSWERED ? "the upstream's answer is final" : o->detail);
    to_terminal(rec, RR_STATE_FAILED, o->d.error_code, msg, status, now);
    if (o->kind == RR_CALL_ANSWERED)
        rr_record_set_result(rec, o->body, o->body_len, status);
    return RR_SETTLE_TERM;
}

/* Retries of a record write NATS did not take: while the message is surely ours (two
 * AckWaits: heartbeats go on meanwhile). */
static rr_backoff write_retry_start(rr_executor *ex)
{
    return rr_backoff_start(WRITE_RETRY_FIRST_MS, WRITE_RETRY_MAX_MS, ex->cfg->ack_wait_s * 2000);
}

/* How a delivery settles once REC is stored: as apply_outcome decided when writing it. */
static rr_settle settle_for(const rr_record *rec, int64_t now, int64_t *nak_ms)
{
    *nak_ms = 0;
    if (rec->state == RR_STATE_COMPLETED)
        return RR_SETTLE_ACK;
    if (rr_state_terminal(rec->state))
        return RR_SETTLE_TERM;
    *nak_ms = rec->next_attempt_ms > now ? rec->next_attempt_ms - now : 0;
    return RR_SETTLE_NAK;
}

/* After a failed write: did it land after all, is the fresh record still ours to write? */
typedef enum {
    RELOAD_LANDED, /* our write timed out, yet was applied */
    RELOAD_OURS,
    RELOAD_TERMINAL,
    RELOAD_LOST,
    RELOAD_ERROR,
} reload_result;

static reload_result reload(rr_executor *ex, rr_job *job)
{
    rr_record fresh;
    uint64_t rev = 0;
    if (rr_store_get(ex->bus, job->req.tenant, job->req.id, &fresh, &rev) != RR_OK)
        return RELOAD_ERROR;
    /* only this delivery moves a record it claimed on from processing */
    reload_result r = claimed_by_us(ex, job, &fresh) && fresh.state != RR_STATE_PROCESSING
                          ? RELOAD_LANDED
                      : rr_state_terminal(fresh.state) ? RELOAD_TERMINAL
                      : owned_by_us(ex, job, &fresh)   ? RELOAD_OURS
                                                       : RELOAD_LOST;
    rr_record_free(&job->rec);
    job->rec = fresh;
    job->rev = rev;
    return r;
}

/* The hot path's write of the processing record failed while the call ran. Keeps the
 * call's result when the record can still be ours: the write timed out yet landed, the
 * ingress wrote the record as queued after its wait ran out (claimed now, as begin
 * would), or NATS comes back while the message is still ours (written again). */
static bool recover_record(rr_executor *ex, rr_job *job)
{
    rr_backoff b = write_retry_start(ex);
    for (int exists = 0; exists < MAX_CAS_ROUNDS;) {
        rr_record fresh;
        uint64_t rev = 0;
        rr_status s = rr_store_get(ex->bus, job->req.tenant, job->req.id, &fresh, &rev);
        if (s == RR_OK) {
            rr_record_free(&job->rec);
            job->rec = fresh;
            job->rev = rev;
            int64_t nak_ms = 0;
            return owned_by_us(ex, job, &job->rec) ||
                   decide(ex, job, rr_now_ms(), &nak_ms) == D_CLAIM;
        }
        if (s == RR_NOT_FOUND) { /* job->rec is still the processing record */
            s = rr_store_put(ex->bus, &job->rec, 0, &job->rev, NULL);
            if (s == RR_OK)
                return true;
            if (s == RR_EXISTS) { /* written meanwhile: read it */
                exists++;
                continue;
            }
        }
        if (s == RR_INVALID || !rr_backoff_wait(&b))
            return false;
    }
    return false;
}

static bool finish(rr_executor *ex, rr_job *job)
{
    if (job->created != RR_OK && !recover_record(ex, job)) {
        /* redelivery decides from the record, whatever it turns out to be */
        rr_log(RR_LOG_WARN, JOB_CTX(job), "processing record not written (%s): result discarded",
               rr_status_str(job->created));
        return settle(ex, job, RR_SETTLE_NAK, TRANSIENT_NAK_MS, "transient");
    }
    outcome o = read_outcome(ex, job);
    rr_counter_add(ex->m.attempts, rr_outcome_str(o.d.outcome), NULL, 1);
    rr_backoff b = write_retry_start(ex);
    for (int conflicts = 0; conflicts < MAX_CAS_ROUNDS;) {
        int64_t nak_ms = 0;
        rr_settle how = apply_outcome(ex, job, &o, rr_now_ms(), &nak_ms);
        rr_status es = RR_OK;
        rr_status s = rr_store_put(ex->bus, &job->rec, job->rev, &job->rev, &es);
        if (s != RR_OK) {
            if (s == RR_CONFLICT) {
                conflicts++;
            } else if (!rr_backoff_wait(&b)) {
                /* NATS unreachable: the result was kept while the message was surely
                 * ours (heartbeats go on); past that, redelivery repeats the call. */
                rr_log(RR_LOG_ERROR, JOB_CTX(job),
                       "outcome not stored (%s): giving the message up", rr_status_str(s));
                return settle(ex, job, RR_SETTLE_DROP, 0, "transient");
            }
            switch (reload(ex, job)) {
            case RELOAD_OURS:
            case RELOAD_ERROR:
                continue; /* e.g. a cancel request landed: apply the outcome again */
            case RELOAD_LANDED:
                /* a write of ours timed out, yet was applied: its event was not sent */
                es = rr_store_publish_event(ex->bus, &job->rec, job->rev,
                                            rr_state_terminal(job->rec.state));
                how = settle_for(&job->rec, rr_now_ms(), &nak_ms);
                break;
            case RELOAD_TERMINAL:
                /* Another writer finished it: its event must be stored before the ack (as
                 * in begin); sending it again is harmless (same message id). */
                if (rr_store_publish_event(ex->bus, &job->rec, job->rev, true) != RR_OK)
                    return settle(ex, job, RR_SETTLE_DROP, 0, "transient");
                return settle(ex, job, RR_SETTLE_ACK, 0, "lost_race");
            case RELOAD_LOST:
                rr_log(RR_LOG_WARN, JOB_CTX(job),
                       "another delivery owns the request: result discarded");
                return settle(ex, job, RR_SETTLE_DROP, 0, "stale");
            }
        }
        bool term = rr_state_terminal(job->rec.state);
        if (term)
            log_terminal(ex, job);
        if (term && es != RR_OK)
            how = RR_SETTLE_DROP; /* redelivery finds it terminal and re-sends the event */
        return settle(ex, job, how, nak_ms, "processed");
    }
    return settle(ex, job, RR_SETTLE_DROP, 0, "contended");
}

bool rr_job_run(rr_executor *ex, rr_job *job)
{
    return job->phase == RR_JOB_NEW ? begin(ex, job) : finish(ex, job);
}
