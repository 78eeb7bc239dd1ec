/* Authentication of HTTP requests: Bearer key -> tenant, then signature and nonce. */
#include "authn.h"

#include "reqrun/auth.h"
#include "reqrun/bus.h"
#include "reqrun/clock.h"
#include "reqrun/crypto.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool deny(rr_reply *out, rr_api_code code, const char *message)
{
    rr_reply_error(out, code, "%s", message);
    out->should_retry = 0;
    return false;
}

/* A nonce is accepted once: create-only write of <tenant>.<hash of nonce> in the nonce
 * bucket, whose TTL (10 min) outlives the signature window (+-5 min). */
static bool claim_nonce(rr_ingress *ing, const char *tenant, const char *nonce, rr_reply *out)
{
    uint8_t digest[RR_SHA256_LEN];
    char hex[RR_SHA256_HEX_BUF], key[RR_TENANT_BUF + RR_SHA256_HEX_BUF + 2];
    rr_sha256(nonce, strlen(nonce), digest);
    rr_hex(digest, 16, hex);
    snprintf(key, sizeof key, "%s.%s", tenant, hex);
    rr_status s = rr_bus_kv_create(ing->bus, RR_KV_NONCES, key, "1", 1, NULL);
    if (s == RR_OK)
        return true;
    if (s == RR_EXISTS)
        return deny(out, RR_E_NONCE_REUSED, "this nonce was already used");
    rr_reply_error(out, RR_E_UNAVAILABLE, "the nonce store is unavailable (%s)",
                   rr_status_str(s));
    out->retry_after_s = 1;
    out->should_retry = 1;
    return false;
}

bool rr_authn(rr_ingress *ing, const rr_authn_input *in, char tenant[RR_TENANT_BUF],
              rr_reply *out)
{
    if (ing->keys == NULL) {
        snprintf(tenant, RR_TENANT_BUF, "%s", RR_TENANT_DEV);
        return true;
    }
    const char *auth = in->authorization;
    if (auth == NULL || auth[0] == '\0')
        return deny(out, RR_E_MISSING_API_KEY,
                    "missing API key: send Authorization: Bearer <key>");
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return deny(out, RR_E_INVALID_API_KEY, "the Authorization header must be Bearer <key>");
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    const rr_key_entry *e = rr_keyring_lookup(ing->keys, key, strlen(key));
    if (e == NULL)
        return deny(out, RR_E_INVALID_API_KEY, "invalid API key");
    if (e->secret[0] != '\0') {
        rr_signed_request sr = {in->method, in->target, in->timestamp, in->nonce,
                                in->signature, in->body, in->body_len};
        rr_api_code code;
        if (rr_signature_verify(e->secret, &sr, rr_now_ms(), &code) != RR_OK) {
            static const char *const why[] = {
                [RR_E_SIGNATURE_REQUIRED] = "this key requires signed requests "
                                            "(X-ReqRun-Timestamp, X-ReqRun-Nonce, "
                                            "X-ReqRun-Signature)",
                [RR_E_STALE_TIMESTAMP] = "X-ReqRun-Timestamp is missing, malformed or more "
                                         "than 300 s away from the server's clock",
                [RR_E_INVALID_SIGNATURE] = "the signature does not match",
            };
            return deny(out, code, why[code]);
        }
        if (!claim_nonce(ing, e->tenant, in->nonce, out))
            return false;
    }
    snprintf(tenant, RR_TENANT_BUF, "%s", e->tenant);
    return true;
}
