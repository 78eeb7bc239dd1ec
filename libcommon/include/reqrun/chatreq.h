/* Validation and canonicalisation of a POST /v1/chat/completions body (DESIGN §3):
 * extracts ReqRun's own fields, computes the canonical body and its SHA-256, and the
 * body passed upstream. Used by the HTTP and the NATS-native submit alike. */
#ifndef RR_CHATREQ_H
#define RR_CHATREQ_H

#include "reqrun/api_error.h"
#include "reqrun/crypto.h"
#include "reqrun/record.h"
#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused before parsing: jansson's parser recurses and
 * CivetWeb's worker stacks are 100 KiB. */
#define RR_JSON_MAX_DEPTH 64
#define RR_METADATA_MAX_PAIRS 16
#define RR_METADATA_KEY_MAX 64
#define RR_METADATA_VALUE_MAX 512

typedef struct rr_chatreq_limits {
    size_t max_messages;
    uint32_t max_attempts;   /* default and cap */
    int64_t deadline_s;      /* default and cap of reqrun.timeout_s */
    int64_t wait_default_s;  /* wait:true */
    int64_t wait_max_s;      /* cap of a numeric wait */
} rr_chatreq_limits;

typedef struct rr_chatreq {
    char *canonical;          /* body minus wait and idempotency_key, sorted, compact */
    size_t canonical_len;
    char *upstream_body;      /* canonical minus reqrun; may alias canonical */
    size_t upstream_len;
    uint8_t body_hash[RR_SHA256_LEN];
    int64_t wait_ms;          /* 0: answer at once */
    char *idempotency_key;    /* NULL when the body has none */
    uint32_t max_attempts;    /* resolved: default applied, capped */
    int64_t timeout_s;        /* resolved end-to-end deadline */
    rr_kv_pair *metadata;
    size_t n_metadata;
    char *webhook_url;
} rr_chatreq;

/* Parses and validates body. On RR_INVALID err says why (status 400 codes). */
rr_status rr_chatreq_parse(rr_chatreq *out, const char *body, size_t len,
                           const rr_chatreq_limits *lim, rr_api_error *err);
/* Frees what out owns. NULL-safe. */
void rr_chatreq_free(rr_chatreq *r);
/* Moves the upstream body, metadata and webhook URL into a fresh request (the chatreq
 * keeps its canonical body and hash). */
rr_status rr_chatreq_to_request(rr_chatreq *r, rr_request *out, const char *id,
                                const char *tenant, bool has_key, int64_t now_ms);
/* True when buf's bracket nesting (outside strings) stays within max_depth. */
bool rr_json_depth_ok(const char *buf, size_t len, int max_depth);

#endif
