/* Client authentication (DESIGN §6): the API keys file (tenant, SHA-256 of the key,
 * optional signing secret), constant-time key lookup, and the hosted-compatible request
 * signature (X-ReqRun-Timestamp / -Nonce / -Signature). Nonce replay is checked by the
 * caller against the nonce bucket (it needs NATS). */
#ifndef RR_AUTH_H
#define RR_AUTH_H

#include "reqrun/api_error.h"
#include "reqrun/crypto.h"
#include "reqrun/ids.h"
#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_SIGNATURE_WINDOW_MS (300 * 1000)
#define RR_SIGNING_SECRET_MAX 256

typedef struct rr_key_entry {
    char tenant[RR_TENANT_BUF];
    uint8_t key_hash[RR_SHA256_LEN];
    char secret[RR_SIGNING_SECRET_MAX + 1]; /* "" when the key needs no signature */
} rr_key_entry;

typedef struct rr_keyring rr_keyring;

/* Parses the text of an API keys file: lines "<tenant> <sha256 hex of key> [<signing
 * secret>]", '#' comments and blank lines allowed. RR_INVALID with err naming the line
 * on anything else (bad tenant, bad hex, duplicate key). */
rr_status rr_keyring_parse(rr_keyring **out, const char *text, size_t len, char *err,
                           size_t errlen);
/* Reads and parses a file. */
rr_status rr_keyring_load(rr_keyring **out, const char *path, char *err, size_t errlen);
void rr_keyring_destroy(rr_keyring *k);
size_t rr_keyring_size(const rr_keyring *k);
/* Entry i (< size), in file order. */
const rr_key_entry *rr_keyring_at(const rr_keyring *k, size_t i);
/* The entry of a presented key, or NULL. Compares the key's SHA-256 with every entry in
 * constant time (no early exit). */
const rr_key_entry *rr_keyring_lookup(const rr_keyring *k, const char *key, size_t len);

/* True when some key maps to tenant. */
bool rr_keyring_has_tenant(const rr_keyring *k, const char *tenant);

/* The signed parts of a request, as sent. */
typedef struct rr_signed_request {
    const char *method;
    const char *target;    /* path, plus "?query" when present */
    const char *timestamp; /* X-ReqRun-Timestamp */
    const char *nonce;     /* X-ReqRun-Nonce */
    const char *signature; /* X-ReqRun-Signature: "v1=<hex>" */
    const void *body;
    size_t body_len;
} rr_signed_request;

/* hex(HMAC-SHA256(secret, METHOD "\n" TARGET "\n" TIMESTAMP "\n" NONCE "\n"
 * hex(SHA-256(body)))) into out (65 bytes). */
void rr_signature_compute(const char *secret, const rr_signed_request *r, char out[65]);
/* Checks presence, freshness (+-300 s of now_ms) and the MAC, in that order. RR_OK, or
 * RR_INVALID with *code one of SIGNATURE_REQUIRED, STALE_TIMESTAMP, INVALID_SIGNATURE. */
rr_status rr_signature_verify(const char *secret, const rr_signed_request *r, int64_t now_ms,
                              rr_api_code *code);
/* Parses "2026-11-24T06:00:00.000Z" (JavaScript's toISOString(); the fraction is
 * optional) into unix ms. */
bool rr_iso_timestamp_parse(const char *s, int64_t *ms);

#endif
