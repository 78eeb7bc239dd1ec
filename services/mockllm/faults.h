/* The mock's fault model (DESIGN §8): what to answer for one call, chosen from the
 * request's "mock" object (or the env defaults) and the call count of its request id. */
#ifndef RR_MOCK_FAULTS_H
#define RR_MOCK_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mock_action {
    MOCK_COMPLETE,   /* 200 with a chat.completion */
    MOCK_ERROR,      /* an HTTP error answer (status, body, Retry-After) */
    MOCK_HANG,       /* never answer; notice when the client goes away */
    MOCK_RESET,      /* close the connection with a TCP reset */
} mock_action;

typedef struct mock_fault {
    enum { F_NONE, F_STATUS_N, F_HANG, F_RESET, F_QUOTA, F_400, F_FLAKY } kind;
    int status; /* F_STATUS_N: 429, 500 or 503 */
    long n;     /* F_STATUS_N: how many calls fail; F_FLAKY: percent of calls that fail */
} mock_fault;

/* Parses "429:N", "500:N", "503:N", "hang", "reset", "quota", "400", and "flaky:P" (P% of
 * calls answer 429 or 500, without Retry-After: an upstream storm); false otherwise. */
bool mock_fault_parse(const char *spec, mock_fault *out);

typedef struct mock_plan {
    mock_action action;
    int status;
    int64_t latency_ms;
    bool retry_after; /* send Retry-After: 1 */
    char *body;       /* malloc'd answer body (complete or error) */
    size_t body_len;
} mock_plan;

typedef struct mock_defaults {
    mock_fault fault;
    int64_t latency_ms;
    const char *api_key; /* when set, chat calls must present it */
} mock_defaults;

/* Decides the answer to a POST /v1/chat/completions body; call_number is this call's
 * count for its request id (1 for the first). */
void mock_plan_for(const char *body, size_t len, long call_number, const mock_defaults *def,
                   uint64_t completion_seq, mock_plan *out);
void mock_plan_free(mock_plan *p);
/* The 401 a provider gives for a missing or wrong key (the key is never echoed whole). */
void mock_plan_unauthorized(const char *presented, mock_plan *out);

#endif
