/* ReqRun's records in plain C, and their protobuf codec: Request (the stream message),
 * Record (the KV value) and Event. Only record.c sees the protobuf-c structs. */
#ifndef RR_RECORD_H
#define RR_RECORD_H

#include "reqrun/crypto.h"
#include "reqrun/ids.h"
#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rr_state {
    RR_STATE_UNSPECIFIED = 0,
    RR_STATE_QUEUED,
    RR_STATE_PROCESSING,
    RR_STATE_RETRYING,
    RR_STATE_COMPLETED,
    RR_STATE_FAILED,
    RR_STATE_CANCELLED,
    RR_STATE_EXPIRED,
} rr_state;

typedef enum rr_outcome {
    RR_OUTCOME_UNSPECIFIED = 0,
    RR_OUTCOME_IN_PROGRESS,
    RR_OUTCOME_SUCCESS,
    RR_OUTCOME_RETRYABLE,
    RR_OUTCOME_NEVER_SENT,
    RR_OUTCOME_AMBIGUOUS,
    RR_OUTCOME_FINAL,
    RR_OUTCOME_INTERRUPTED,
    RR_OUTCOME_CANCELLED,
    RR_OUTCOME_EXPIRED,
} rr_outcome;

#define RR_CODE_BUF 48
#define RR_INSTANCE_BUF 96
/* Longest webhook URL a request may carry (chatreq.c refuses longer ones). */
#define RR_WEBHOOK_URL_MAX 2048

typedef struct rr_kv_pair {
    char *key;
    char *value;
} rr_kv_pair;

typedef struct rr_attempt {
    uint32_t number;
    int64_t started_ms;
    int64_t finished_ms;
    uint32_t upstream_status;
    char error_code[RR_CODE_BUF];
    rr_outcome outcome;
    char executor[RR_INSTANCE_BUF];
} rr_attempt;

typedef struct rr_error_info {
    char code[RR_CODE_BUF];   /* "" when there is no error */
    char *message;            /* owned, may be NULL */
    uint32_t upstream_status;
    bool retryable;
} rr_error_info;

typedef struct rr_webhook_delivery {
    uint32_t number;
    int64_t at_ms;
    uint32_t http_status;
    char error_code[RR_CODE_BUF];
    bool delivered;
} rr_webhook_delivery;

/* The stream message. Owns every pointer; free with rr_request_free. */
typedef struct rr_request {
    char id[RR_ID_BUF];
    char tenant[RR_TENANT_BUF];
    uint8_t body_hash[RR_SHA256_LEN];
    uint8_t *body;
    size_t body_len;
    uint32_t max_attempts;
    int64_t deadline_ms;
    int64_t created_ms;
    rr_kv_pair *metadata;
    size_t n_metadata;
    char *webhook_url;
    bool has_idempotency_key;
    bool record_by_ingress; /* hint: the ingress creates the record itself */
} rr_request;

/* The KV value. Owns every pointer; free with rr_record_free. */
typedef struct rr_record {
    char id[RR_ID_BUF];
    char tenant[RR_TENANT_BUF];
    rr_state state;
    uint8_t body_hash[RR_SHA256_LEN];
    uint64_t stream_seq;
    uint32_t attempts;
    uint32_t max_attempts;
    int64_t created_ms;
    int64_t updated_ms;
    int64_t deadline_ms;
    int64_t next_attempt_ms;
    rr_attempt *attempt_log;
    size_t n_attempt_log;
    rr_error_info last_error;
    uint8_t *result;
    size_t result_len;
    uint32_t result_status;
    uint64_t owner_delivery;
    char owner_instance[RR_INSTANCE_BUF];
    bool cancel_requested;
    rr_kv_pair *metadata;
    size_t n_metadata;
    char *webhook_url;
    rr_webhook_delivery *webhook_log;
    size_t n_webhook_log;
} rr_record;

typedef struct rr_event {
    char id[RR_ID_BUF];
    char tenant[RR_TENANT_BUF];
    rr_state state;
    uint32_t attempt;
    char error_code[RR_CODE_BUF];
    uint64_t revision;
    int64_t created_ms;
    int64_t updated_ms;
    int64_t at_ms;
    char webhook_url[RR_WEBHOOK_URL_MAX + 1];
    uint32_t result_status;
} rr_event;

/* "queued", "processing", ... as the API shows them. */
const char *rr_state_str(rr_state s);
bool rr_state_terminal(rr_state s);
/* "success", "retryable", "never_sent", "ambiguous", "final", "interrupted", ... */
const char *rr_outcome_str(rr_outcome o);

/* Encoders return a malloc'd buffer (*len set) or NULL when out of memory. */
uint8_t *rr_request_encode(const rr_request *r, size_t *len);
uint8_t *rr_record_encode(const rr_record *r, size_t *len);
uint8_t *rr_event_encode(const rr_event *e, size_t *len);
/* Decoders fill a zeroed struct; RR_INVALID on bytes that are not a valid message. */
rr_status rr_request_decode(rr_request *out, const void *data, size_t len);
rr_status rr_record_decode(rr_record *out, const void *data, size_t len);
rr_status rr_event_decode(rr_event *out, const void *data, size_t len);

void rr_request_free(rr_request *r);
void rr_record_free(rr_record *r);

/* Builds a fresh record for a request: state as given, attempts 0. */
rr_status rr_record_from_request(rr_record *out, const rr_request *req, rr_state state,
                                 uint64_t stream_seq, int64_t now_ms);
/* Appends an attempt (copied) to the log. */
rr_status rr_record_add_attempt(rr_record *r, const rr_attempt *a);
/* The last attempt, or NULL. */
rr_attempt *rr_record_last_attempt(rr_record *r);
/* Sets last_error (message copied, may be NULL). */
rr_status rr_record_set_error(rr_record *r, const char *code, const char *message,
                              uint32_t upstream_status, bool retryable);
/* Replaces result (copied). */
rr_status rr_record_set_result(rr_record *r, const void *body, size_t len, uint32_t status);
/* Appends a webhook delivery to the log (keeps the last 20). */
rr_status rr_record_add_webhook_delivery(rr_record *r, const rr_webhook_delivery *d);
/* Fills an event for the record at a revision. */
void rr_event_from_record(rr_event *out, const rr_record *r, uint64_t revision, int64_t now_ms);

#endif
