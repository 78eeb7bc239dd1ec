/* Submitting a chat request (DESIGN §4, "Submit"): validate, deduplicate by key,
 * publish durably, create the record, and wait or answer at once. Shared by the HTTP
 * endpoint and the NATS-native submit. */
#ifndef RR_SUBMIT_H
#define RR_SUBMIT_H

#include "ingress.h"
#include "reply.h"

#include <stddef.h>

typedef struct rr_submit_input {
    const char *tenant;
    const char *body;
    size_t len;
    const char *header_key; /* Idempotency-Key header, or NULL */
} rr_submit_input;

/* Fills out with the answer; never fails without an answer. */
void rr_submit(rr_ingress *ing, const rr_submit_input *in, rr_reply *out);

/* Holds a request open on an existing record until it is terminal or wait_ms passes,
 * then answers as rr_reply_from_record does. Used by joins and long-polls. */
void rr_submit_wait_existing(rr_ingress *ing, const char *tenant, const char *id,
                             int64_t wait_ms, rr_record *rec, uint64_t *rev);

#endif
