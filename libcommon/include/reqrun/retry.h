/* Retry policy (DESIGN §4): which attempt outcomes are worth retrying, and how long
 * to wait before the next attempt. Pure functions, no I/O. */
#ifndef RR_RETRY_H
#define RR_RETRY_H

#include "reqrun/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the transport saw of one upstream call. */
typedef enum rr_call_kind {
    RR_CALL_ANSWERED,    /* an HTTP status came back */
    RR_CALL_NEVER_SENT,  /* DNS, connect refused, TLS handshake: the upstream saw nothing */
    RR_CALL_TIMEOUT,     /* sent, no answer within the timeout */
    RR_CALL_LOST,        /* sent, connection reset or closed before an answer */
    RR_CALL_CANCELLED,   /* aborted by a cancel */
    RR_CALL_DEADLINE,    /* aborted at the request's deadline */
    RR_CALL_TOO_LARGE,   /* answered with a body over the record limit */
} rr_call_kind;

typedef struct rr_retry_decision {
    rr_outcome outcome;
    bool retry;
    char error_code[RR_CODE_BUF]; /* "" on success */
} rr_retry_decision;

/* Classifies one attempt. body is the upstream's answer (for 429 insufficient_quota). */
rr_retry_decision rr_retry_classify(rr_call_kind kind, int http_status, const char *body,
                                    size_t body_len, bool retry_ambiguous);

/* Parses Retry-After (delta seconds or HTTP date) relative to now; false if absent/bad. */
bool rr_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);
/* Parses retry-after-ms (non-negative milliseconds, may be fractional). */
bool rr_retry_after_ms_parse(const char *value, int64_t *delay_ms);

typedef struct rr_retry_policy {
    int64_t base_ms;
    int64_t max_ms;
} rr_retry_policy;

/* Delay before the next attempt after attempt number `attempt` (1-based) failed:
 * retry-after-ms, else Retry-After, else full jitter in [0, min(max, base*2^(attempt-1))].
 * Either header may be NULL. rng is the caller's xorshift state (seed it per thread). */
int64_t rr_retry_delay_ms(const rr_retry_policy *p, uint32_t attempt, const char *retry_after,
                          const char *retry_after_ms, int64_t now_ms, uint64_t *rng);
/* splitmix64 step: the random source of the backoff, seedable for tests. */
uint64_t rr_rng_next(uint64_t *state);

#endif
