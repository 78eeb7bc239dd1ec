/* Fuzz target of the two files operators hand ReqRun: the API keys file
 * (rr_keyring_parse) and the webhook secrets file (rr_webhook_secrets_parse). A refusal
 * names its line and allocates nothing; an accepted file has valid entries, and writing
 * them back out and parsing again gives the same entries. */
#include "fuzz_target.h"

#include "reqrun/auth.h"
#include "reqrun/crypto.h"
#include "reqrun/ids.h"
#include "reqrun/webhook.h"

#include <string.h>

static void check_keyring(const char *text, size_t len)
{
    rr_keyring *k = NULL;
    char err[256] = "";
    rr_status s = rr_keyring_parse(&k, text, len, err, sizeof err);
    if (s != RR_OK) {
        FUZZ_CHECK(k == NULL);
        FUZZ_CHECK(s == RR_INVALID || s == RR_NOMEM);
        FUZZ_CHECK(s == RR_NOMEM || strncmp(err, "line ", 5) == 0);
        return;
    }
    /* write it back out: "<tenant> <hex> [<secret>]" per line, and parse again */
    size_t n = rr_keyring_size(k);
    char *out = malloc(n * (RR_TENANT_BUF + 2 * RR_SHA256_LEN + RR_SIGNING_SECRET_MAX + 8) + 1);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const rr_key_entry *e = rr_keyring_at(k, i);
        FUZZ_CHECK(rr_tenant_valid(e->tenant));
        FUZZ_CHECK(strlen(e->secret) <= RR_SIGNING_SECRET_MAX);
        FUZZ_CHECK(rr_keyring_has_tenant(k, e->tenant));
        char hex[RR_SHA256_HEX_BUF];
        rr_hex(e->key_hash, RR_SHA256_LEN, hex);
        used += (size_t)sprintf(out + used, "%s %s%s%s\n", e->tenant, hex, e->secret[0] ? " " : "",
                                e->secret);
    }
    rr_keyring *again = NULL;
    FUZZ_CHECK(rr_keyring_parse(&again, out, used, err, sizeof err) == RR_OK);
    FUZZ_CHECK(rr_keyring_size(again) == n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(memcmp(rr_keyring_at(k, i), rr_keyring_at(again, i), sizeof(rr_key_entry)) ==
                   0);
    /* a lookup walks every entry whatever the key */
    FUZZ_CHECK(rr_keyring_lookup(k, text, len > 64 ? 64 : len) == NULL ||
               rr_keyring_lookup(k, text, len > 64 ? 64 : len) != NULL);
    rr_keyring_destroy(again);
    rr_keyring_destroy(k);
    free(out);
}

static void check_webhook_secrets(const char *text, size_t len)
{
    rr_webhook_secrets *w = NULL;
    char err[256] = "";
    rr_status s = rr_webhook_secrets_parse(&w, text, len, err, sizeof err);
    if (s != RR_OK) {
        FUZZ_CHECK(w == NULL);
        FUZZ_CHECK(s == RR_NOMEM || strncmp(err, "line ", 5) == 0);
        return;
    }
    size_t n = rr_webhook_secrets_size(w);
    char *out = malloc(n * (RR_TENANT_BUF + 2 * RR_WEBHOOK_SECRET_MAX + 2049 + 16) + 1);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const rr_webhook_tenant *t = rr_webhook_secrets_at(w, i);
        FUZZ_CHECK(rr_tenant_valid(t->tenant));
        FUZZ_CHECK(t->secret_len >= 16 && t->secret_len <= RR_WEBHOOK_SECRET_MAX);
        FUZZ_CHECK(rr_webhook_secrets_find(w, t->tenant) == t);
        char b64[2 * RR_WEBHOOK_SECRET_MAX];
        FUZZ_CHECK(rr_base64_encode(t->secret, t->secret_len, b64, sizeof b64) > 0);
        used += (size_t)sprintf(out + used, "%s whsec_%s%s%s\n", t->tenant, b64,
                                t->default_url[0] ? " " : "", t->default_url);
    }
    rr_webhook_secrets *again = NULL;
    FUZZ_CHECK(rr_webhook_secrets_parse(&again, out, used, err, sizeof err) == RR_OK);
    FUZZ_CHECK(rr_webhook_secrets_size(again) == n);
    for (size_t i = 0; i < n; i++) {
        const rr_webhook_tenant *a = rr_webhook_secrets_at(w, i), *b = rr_webhook_secrets_at(again, i);
        FUZZ_CHECK(strcmp(a->tenant, b->tenant) == 0 && a->secret_len == b->secret_len &&
                   memcmp(a->secret, b->secret, a->secret_len) == 0 &&
                   strcmp(a->default_url, b->default_url) == 0);
    }
    rr_webhook_secrets_destroy(again);
    rr_webhook_secrets_destroy(w);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_keyring((const char *)data, size);
    check_webhook_secrets((const char *)data, size);
    return 0;
}
