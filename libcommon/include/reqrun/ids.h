/* Request ids (rr_ + 26 base32 chars), tenant names and idempotency keys (DESIGN §4). */
#ifndef RR_IDS_H
#define RR_IDS_H

#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>

#define RR_ID_LEN 29              /* "rr_" + 26 */
#define RR_ID_BUF (RR_ID_LEN + 1)
#define RR_TENANT_MAX 64
#define RR_TENANT_BUF (RR_TENANT_MAX + 1)
#define RR_IDEM_KEY_MAX 255
/* "<tenant>.<id>": the KV key of a record. */
#define RR_RECORD_KEY_BUF (RR_TENANT_BUF + RR_ID_BUF + 1)

/* The id every replica derives for (tenant, idempotency key): the first 26 chars of
 * base32(SHA-256(tenant 0x00 key)). */
void rr_id_derive(char out[RR_ID_BUF], const char *tenant, const char *key, size_t keylen);
/* A fresh id from 130 random bits. */
rr_status rr_id_random(char out[RR_ID_BUF]);
/* ^rr_[a-z2-7]{26}$ */
bool rr_id_valid(const char *id);
/* ^[a-z0-9_-]{1,64}$ */
bool rr_tenant_valid(const char *tenant);
/* 1..255 printable ASCII (0x20..0x7e). */
bool rr_idem_key_valid(const char *key, size_t len);
/* "<tenant>.<id>" */
void rr_record_key(char out[RR_RECORD_KEY_BUF], const char *tenant, const char *id);

#endif
