/* Fault-injection suite support: a load driver of keyed clients that retry with the same
 * key, a verifier that checks every acknowledged request against its record and the
 * mock's call log, the figures line every scenario prints, and the probes the scenarios
 * share (executor metrics, mock configuration, the work queue, REQRUN_EVENTS, leaders).
 *
 * A run owns its requests; chaos_run_free frees them. The load runs on its own threads
 * between chaos_start and chaos_join: the test injects its fault meanwhile. */
#ifndef RR_CHAOS_H
#define RR_CHAOS_H

#include "harness.h"

#include "reqrun/ids.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CHAOS_MAX_THREADS 256
#define CHAOS_MAX_STATUSES 32

/* One client request: one idempotency key, sent until a definitive answer. */
typedef struct chaos_req {
    /* set by chaos_run_init, adjustable before chaos_start */
    char key[64];
    char id[RR_ID_BUF];       /* rr_id_derive("default", key) */
    char mock[160];           /* members of the body's "mock" object; "" for none */
    const char *want_status;  /* terminal status the record must reach ("completed") */
    bool faulted;             /* the upstream answers with an injected fault: calls are
                                 checked against the record's attempts, not against one */

    /* the client's view, written by the thread that sends it */
    int64_t sent_ms;          /* first send, ms since the run started; -1 never sent */
    int64_t first_2xx_ms;     /* first 2xx answer; -1 none */
    int64_t answered_ms;      /* the definitive answer (2xx or final); -1 none (unknown) */
    long final_status;        /* HTTP status of the definitive answer */
    bool replayed;            /* the definitive answer had Idempotent-Replayed: true */
    char *final_body;         /* its body (owned) */
    int tries;
    int n_503, n_transport;
    int n_statuses;
    long statuses[CHAOS_MAX_STATUSES]; /* every answer in order; 0 = transport error */
    bool id_mismatch;         /* an answer named another request id */

    /* the verifier's view */
    json_t *record;           /* GET /v1/requests/<id>?include=attempts at the end */
    long calls;               /* the mock's calls for the id */
    int attempts;             /* the record's attempt count */
    int interrupted;          /* attempts with outcome "interrupted" */
    long duplicate;           /* calls that are duplicate work (see chaos_verify) */
    bool lost;
} chaos_req;

typedef struct chaos_run {
    const char *name;
    rt_stack *s;
    chaos_req *reqs;
    int n;

    /* the load's shape, set before chaos_start */
    int threads;             /* client threads (default 32, at most CHAOS_MAX_THREADS) */
    int rate;                /* first sends per second, paced; 0: as fast as threads go */
    int wait_s;              /* the body's "wait": 0 sends false */
    int64_t give_up_ms;      /* a client stops retrying a key this long after its first
                                send (default 60 s); the key is then "unknown" */
    int64_t retry_max_ms;    /* the longest pause between two tries (default 1000) */

    /* run state */
    int64_t t0;
    atomic_int next;
    atomic_int sent;         /* keys sent at least once */
    atomic_int acked;        /* keys with a 2xx */
    atomic_int done;         /* keys with a definitive answer or given up */
    atomic_int n_503;        /* 503 answers over all keys */
    atomic_int n_transport;  /* transport errors over all keys */
    pthread_t th[CHAOS_MAX_THREADS];
    int n_threads;
} chaos_run;

typedef struct chaos_figures {
    int submitted;           /* keys sent at least once */
    int ok;                  /* acknowledged and terminal in the wanted status */
    int lost;                /* acknowledged with a 2xx, not terminal by the end */
    int unknown;             /* sent, never a definitive answer */
    long duplicate_upstream_calls;
    double p50_ms, p99_ms;   /* first send to definitive answer, retries included */
    double done_p50_ms, done_p99_ms; /* records: created_at to updated_at when terminal */
    int interrupted_records; /* records with an interrupted attempt */
    int violations;          /* other failed checks, each printed when found */
} chaos_figures;

/* ---- the run ---- */

/* n requests with keys "<name>-<i>", no mock fault, wanting "completed". */
void chaos_run_init(chaos_run *r, rt_stack *s, const char *name, int n);
void chaos_run_free(chaos_run *r);
/* Every request's upstream call takes latency_ms (the mock's "latency_ms"). */
void chaos_mock_latency(chaos_run *r, int latency_ms);
/* Starts the client threads. */
void chaos_start(chaos_run *r);
/* Waits for every client thread. */
void chaos_join(chaos_run *r);
/* ms since chaos_start. */
int64_t chaos_elapsed_ms(const chaos_run *r);

/* Waits until every acknowledged request is terminal (or timeout_ms, scaled), fetches
 * records and mock calls, and computes the figures. Checks, each failure printed and
 * counted in violations: the terminal status is the wanted one; every answer named the
 * key's derived id; the final answer is a 2xx; the mock never saw more calls than the
 * record has attempts (no call without an owning attempt); a completed request was
 * called; a duplicate call is recorded as an interrupted attempt. Duplicate work: calls
 * beyond one for a request without an injected fault; beyond the record's attempts for
 * one with a fault. */
void chaos_verify(chaos_run *r, int64_t timeout_ms, chaos_figures *f);
/* The figures line: "CHAOS <name> submitted=... p99_ms=..." on stderr, and appended to
 * the file named by REQRUN_CHAOS_FIGURES when set; then a details line (503s, transport
 * errors, interrupted records, violations, time to terminal from the records). */
void chaos_print(const chaos_run *r, const chaos_figures *f);

/* Number of attempts of rec with this outcome; with executor_prefix (may be NULL) only
 * those made by an executor whose instance id starts with it. */
int chaos_attempts_with(json_t *rec, const char *outcome, const char *executor_prefix);
/* The record as compact JSON (caller frees), for before/after comparisons. */
char *chaos_record_dump(json_t *rec);

/* ---- probes ---- */

/* A metric of executor i: name alone sums its label sets, name{label="v"} is that one
 * series (0 when absent); -1 when unreadable. */
double chaos_executor_metric(rt_stack *s, int i, const char *name);
/* The running executor with the most upstream calls in flight (reqrun_upstream_in_flight),
 * and that number; -1 when none answers. */
int chaos_busiest_executor(rt_stack *s, double *in_flight);
/* Waits up to 15 s (scaled) for the busiest executor to have at least min_in_flight calls
 * in flight: the victim of a fault. -1 when none got there: the load never reached the
 * executors and there is no fault to inject (end the run with chaos_abandon). */
int chaos_await_victim(rt_stack *s, double min_in_flight, double *in_flight);
/* Ends a run that cannot go on: waits for its clients, frees it, prints the logs. */
void chaos_abandon(chaos_run *r);
/* POST <mock>/mock/config with body json. */
bool chaos_mock_config(rt_stack *s, const char *json);

/* Consumer "executors" has nothing pending and nothing ack-pending: every request
 * message was settled. */
bool chaos_queue_settled(rt_stack *s);
/* Messages still stored in REQRUN_REQUESTS once the consumer is settled (each printed).
 * Each must belong to a request whose record is terminal (call after chaos_verify), else
 * *violations is incremented: a stored message that is never delivered again would be a
 * request stuck for good. */
int chaos_queue_leftovers(chaos_run *r, int *violations);
/* The server name of the leader of a stream ("n<port>"), "" when unknown. */
bool chaos_stream_leader(rt_stack *s, const char *stream, char *out, size_t n);
/* The cluster node whose server name is name; -1 when none. */
int chaos_cluster_node(rt_stack *s, const char *name);

/* Reads all of REQRUN_EVENTS and the records as the KV stream's leader has them: each
 * acknowledged request has exactly one terminal event (by message id <id>.<revision>), no
 * event after it, and its stored record is the one that event announced (same state,
 * update time and attempt: never written after turning terminal). Returns the number of
 * violations, each printed. *copies gets the extra copies of a terminal event (same
 * message id: at-least-once publishing); *diverged the records found under another
 * revision than the terminal event's, or than the leader's through a direct get (any
 * replica answers): replicas whose sequences disagree, a nats-server fault reported
 * apart from ReqRun's. */
int chaos_check_events(chaos_run *r, int *copies, int *diverged);

#endif
