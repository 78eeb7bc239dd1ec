/* An answer of the ingress, independent of the transport: the HTTP layer writes it as a
 * response, the NATS-native submit as a reply with headers. */
#ifndef RR_REPLY_H
#define RR_REPLY_H

#include "reqrun/api_error.h"
#include "reqrun/ids.h"
#include "reqrun/record.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct rr_reply {
    int status;
    char *body;               /* owned */
    size_t body_len;
    char request_id[RR_ID_BUF];
    int attempts;             /* X-ReqRun-Attempts; 0 leaves it out */
    bool replayed;            /* Idempotent-Replayed: true */
    bool location;            /* Location: /v1/requests/<id> */
    int should_retry;         /* x-should-retry: -1 leaves it out, 0 false, 1 true */
    int retry_after_s;        /* Retry-After; 0 leaves it out */
} rr_reply;

void rr_reply_init(rr_reply *r);
/* Frees the body. NULL-safe. */
void rr_reply_free(rr_reply *r);
/* An error answer (status from the code's table); x-should-retry false for 4xx except
 * 429, true/false for 503 as given by the caller afterwards. */
void rr_reply_error(rr_reply *r, rr_api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same from a filled rr_api_error (keeps its param). */
void rr_reply_api_error(rr_reply *r, const rr_api_error *e);
/* The async object {"id","object":"chat.completion.async","status","created"}. */
void rr_reply_async(rr_reply *r, const char *id, rr_state state, int64_t created_ms);
/* The answer a client gets for a record: the completion, the upstream's final error,
 * a ReqRun error for other terminal states, or the async object when in flight. */
void rr_reply_from_record(rr_reply *r, const rr_record *rec);
/* The GET /v1/requests/{id} view of a record (DESIGN §3); with_attempts adds
 * attempt_log and last_error. */
void rr_reply_record_view(rr_reply *r, const rr_record *rec, bool with_attempts);

#endif
