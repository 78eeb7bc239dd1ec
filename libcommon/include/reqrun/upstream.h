/* The upstream HTTP client: many POST <base>/chat/completions transfers in flight on one
 * libcurl multi handle driven by one thread. The only module that sees libcurl. */
#ifndef RR_UPSTREAM_H
#define RR_UPSTREAM_H

#include "reqrun/retry.h"
#include "reqrun/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rr_upstream rr_upstream;
typedef struct rr_call rr_call;

typedef struct rr_call_result {
    rr_call_kind kind;
    int http_status;          /* when kind == RR_CALL_ANSWERED */
    char *body;               /* the answer's body (NUL-terminated), owned by the call */
    size_t body_len;
    char retry_after[64];     /* header values, "" when absent */
    char retry_after_ms[32];
    double duration_ms;
    char detail[256];         /* transport error text, "" on an answer */
} rr_call_result;

/* Runs on the client's thread when a call ends: must not block. The call stays valid
 * until rr_call_destroy. */
typedef void (*rr_call_done_fn)(rr_call *call, void *ctx);

typedef struct rr_upstream_options {
    const char *base_url;       /* POSTs go to <base_url>/chat/completions */
    const char *api_key;        /* may be NULL */
    size_t max_response_bytes;  /* larger answers end as RR_CALL_TOO_LARGE */
} rr_upstream_options;

/* Starts the client thread. */
rr_status rr_upstream_new(rr_upstream **out, const rr_upstream_options *opts);
/* Aborts what is in flight (done is called with RR_CALL_CANCELLED), stops the thread,
 * frees. NULL-safe. */
void rr_upstream_destroy(rr_upstream *u);

/* Starts a call. body is borrowed until done runs. *call_id identifies it for abort. */
rr_status rr_upstream_start(rr_upstream *u, const char *request_id, const void *body,
                            size_t len, int64_t timeout_ms, rr_call_done_fn done, void *ctx,
                            uint64_t *call_id);
/* Aborts a call if it is still in flight (done then sees RR_CALL_CANCELLED); a call
 * that already ended is left alone. Safe from any thread. */
void rr_upstream_abort(rr_upstream *u, uint64_t call_id);
/* Calls in flight now. */
int rr_upstream_in_flight(rr_upstream *u);

const rr_call_result *rr_call_result_of(const rr_call *call);
/* Frees a finished call (and its body). NULL-safe. */
void rr_call_destroy(rr_call *call);

#endif
