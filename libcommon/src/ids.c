/* Id derivation and validation of the names that become subject and key tokens. */
#include "reqrun/ids.h"

#include "reqrun/crypto.h"

#include <stdio.h>
#include <string.h>

static void id_from_bytes(char out[RR_ID_BUF], const uint8_t *bytes, size_t n)
{
    char b32[64];
    rr_base32_lower(bytes, n, b32, sizeof b32);
    memcpy(out, "rr_", 3);
    memcpy(out + 3, b32, 26);
    out[RR_ID_LEN] = '\0';
}

void rr_id_derive(char out[RR_ID_BUF], const char *tenant, const char *key, size_t keylen)
{
    size_t tlen = strlen(tenant);
    uint8_t buf[RR_TENANT_BUF + 1 + RR_IDEM_KEY_MAX];
    uint8_t digest[RR_SHA256_LEN];
    if (tlen > RR_TENANT_MAX)
        tlen = RR_TENANT_MAX;
    if (keylen > RR_IDEM_KEY_MAX)
        keylen = RR_IDEM_KEY_MAX;
    memcpy(buf, tenant, tlen);
    buf[tlen] = 0x00;
    memcpy(buf + tlen + 1, key, keylen);
    rr_sha256(buf, tlen + 1 + keylen, digest);
    id_from_bytes(out, digest, sizeof digest);
}

rr_status rr_id_random(char out[RR_ID_BUF])
{
    uint8_t bytes[17]; /* 136 bits; the first 130 become the 26 chars */
    if (rr_random_bytes(bytes, sizeof bytes) != RR_OK)
        return RR_ERR;
    id_from_bytes(out, bytes, sizeof bytes);
    return RR_OK;
}

bool rr_id_valid(const char *id)
{
    if (strlen(id) != RR_ID_LEN || strncmp(id, "rr_", 3) != 0)
        return false;
    for (int i = 3; i < RR_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
            return false;
    }
    return true;
}

bool rr_tenant_valid(const char *tenant)
{
    size_t n = strlen(tenant);
    if (n < 1 || n > RR_TENANT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tenant[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool rr_idem_key_valid(const char *key, size_t len)
{
    if (len < 1 || len > RR_IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    }
    return true;
}

void rr_record_key(char out[RR_RECORD_KEY_BUF], const char *tenant, const char *id)
{
    snprintf(out, RR_RECORD_KEY_BUF, "%s.%s", tenant, id);
}
