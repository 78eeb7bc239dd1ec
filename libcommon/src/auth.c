/* API keys and request signatures. */
#include "reqrun/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rr_keyring {
    rr_key_entry *entries;
    size_t n;
};

static rr_status line_error(char *err, size_t errlen, int line, const char *why)
{
    snprintf(err, errlen, "line %d: %s", line, why);
    return RR_INVALID;
}

/* Splits s (modified in place) on spaces/tabs into at most max fields. */
static int split_fields(char *s, char **fields, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
        if (n == max)
            return max + 1;
        fields[n++] = tok;
    }
    return n;
}

rr_status rr_keyring_parse(rr_keyring **out, const char *text, size_t len, char *err,
                           size_t errlen)
{
    *out = NULL;
    rr_keyring *k = calloc(1, sizeof *k);
    if (k == NULL)
        return RR_NOMEM;
    rr_status s = RR_OK;
    size_t cap = 0;
    int lineno = 0;
    for (size_t pos = 0; pos < len && s == RR_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        char line[1024];
        if (n >= sizeof line) {
            s = line_error(err, errlen, lineno, "line too long");
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + 1;
        if (memchr(line, '\0', n) != NULL) {
            s = line_error(err, errlen, lineno, "NUL byte");
            break;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *f[3];
        int nf = split_fields(line, f, 3);
        if (nf == 0)
            continue;
        if (nf < 2 || nf > 3) {
            s = line_error(err, errlen, lineno,
                           "expected '<tenant> <sha256 hex of key> [<signing secret>]'");
            break;
        }
        rr_key_entry e;
        memset(&e, 0, sizeof e);
        if (!rr_tenant_valid(f[0])) {
            s = line_error(err, errlen, lineno, "tenant must match ^[a-z0-9_-]{1,64}$");
            break;
        }
        if (!rr_unhex(f[1], e.key_hash, RR_SHA256_LEN)) {
            s = line_error(err, errlen, lineno, "the key hash must be 64 hex digits");
            break;
        }
        if (nf == 3) {
            if (strlen(f[2]) > RR_SIGNING_SECRET_MAX) {
                s = line_error(err, errlen, lineno, "signing secret longer than 256 bytes");
                break;
            }
            snprintf(e.secret, sizeof e.secret, "%s", f[2]);
        }
        snprintf(e.tenant, sizeof e.tenant, "%s", f[0]);
        for (size_t i = 0; i < k->n; i++) {
            if (memcmp(k->entries[i].key_hash, e.key_hash, RR_SHA256_LEN) == 0) {
                s = line_error(err, errlen, lineno, "the same key is listed twice");
                break;
            }
        }
        if (s != RR_OK)
            break;
        if (k->n == cap) {
            cap = cap ? cap * 2 : 8;
            rr_key_entry *grown = realloc(k->entries, cap * sizeof *grown);
            if (grown == NULL) {
                s = RR_NOMEM;
                break;
            }
            k->entries = grown;
        }
        k->entries[k->n++] = e;
    }
    if (s != RR_OK) {
        rr_keyring_destroy(k);
        return s;
    }
    *out = k;
    return RR_OK;
}

rr_status rr_keyring_load(rr_keyring **out, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return RR_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return RR_NOMEM;
            }
            buf = grown;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    rr_status s = rr_keyring_parse(out, buf != NULL ? buf : "", len, err, errlen);
    free(buf);
    return s;
}

void rr_keyring_destroy(rr_keyring *k)
{
    if (k == NULL)
        return;
    free(k->entries);
    free(k);
}

size_t rr_keyring_size(const rr_keyring *k)
{
    return k->n;
}

const rr_key_entry *rr_keyring_at(const rr_keyring *k, size_t i)
{
    return i < k->n ? &k->entries[i] : NULL;
}

const rr_key_entry *rr_keyring_lookup(const rr_keyring *k, const char *key, size_t len)
{
    uint8_t digest[RR_SHA256_LEN];
    rr_sha256(key, len, digest);
    const rr_key_entry *found = NULL;
    for (size_t i = 0; i < k->n; i++) {
        /* every entry is compared: the time does not say which one matched */
        bool eq = rr_consttime_eq(digest, k->entries[i].key_hash, RR_SHA256_LEN);
        if (eq && found == NULL)
            found = &k->entries[i];
    }
    return found;
}

bool rr_keyring_has_tenant(const rr_keyring *k, const char *tenant)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->entries[i].tenant, tenant) == 0)
            return true;
    }
    return false;
}

void rr_signature_compute(const char *secret, const rr_signed_request *r, char out[65])
{
    uint8_t body_hash[RR_SHA256_LEN];
    char body_hex[RR_SHA256_HEX_BUF];
    rr_sha256(r->body != NULL ? r->body : "", r->body_len, body_hash);
    rr_hex(body_hash, RR_SHA256_LEN, body_hex);
    size_t n = strlen(r->method) + strlen(r->target) + strlen(r->timestamp) + strlen(r->nonce) +
               sizeof body_hex + 8;
    char *msg = malloc(n);
    if (msg == NULL) {
        out[0] = '\0';
        return;
    }
    int len = snprintf(msg, n, "%s\n%s\n%s\n%s\n%s", r->method, r->target, r->timestamp,
                       r->nonce, body_hex);
    uint8_t mac[RR_SHA256_LEN];
    rr_hmac_sha256(secret, strlen(secret), msg, (size_t)len, mac);
    free(msg);
    rr_hex(mac, RR_SHA256_LEN, out);
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool rr_iso_timestamp_parse(const char *s, int64_t *ms)
{
    /* YYYY-MM-DDTHH:MM:SS[.sss]Z */
    size_t n = strlen(s);
    if ((n != 20 && n != 24) || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
        s[7] != '-' || !digits(s + 8, 2) || s[10] != 'T' || !digits(s + 11, 2) ||
        s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2) ||
        s[n - 1] != 'Z')
        return false;
    int frac = 0;
    if (n == 24) {
        if (s[19] != '.' || !digits(s + 20, 3))
            return false;
        frac = atoi(s + 20);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return true;
}

rr_status rr_signature_verify(const char *secret, const rr_signed_request *r, int64_t now_ms,
                              rr_api_code *code)
{
    if (r->timestamp == NULL || r->nonce == NULL || r->signature == NULL ||
        r->nonce[0] == '\0' || strlen(r->nonce) > 128) {
        *code = RR_E_SIGNATURE_REQUIRED;
        return RR_INVALID;
    }
    int64_t at = 0;
    if (!rr_iso_timestamp_parse(r->timestamp, &at) || at < now_ms - RR_SIGNATURE_WINDOW_MS ||
        at > now_ms + RR_SIGNATURE_WINDOW_MS) {
        *code = RR_E_STALE_TIMESTAMP;
        return RR_INVALID;
    }
    char want[65];
    rr_signature_compute(secret, r, want);
    const char *got = r->signature;
    char lower[65] = "";
    if (strncmp(got, "v1=", 3) == 0 && strlen(got + 3) == 64) {
        for (int i = 0; i < 64; i++)
            lower[i] = (char)tolower((unsigned char)got[3 + i]);
        lower[64] = '\0';
    }
    if (lower[0] == '\0' || !rr_consttime_eq(lower, want, 64)) {
        *code = RR_E_INVALID_SIGNATURE;
        return RR_INVALID;
    }
    return RR_OK;
}
