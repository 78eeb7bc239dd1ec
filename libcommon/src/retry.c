/* Retry classification and backoff: the one implementation of DESIGN §4's table. */
#include "reqrun/retry.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool is_retryable_status(int status)
{
    switch (status) {
    case 408: case 409: case 425: case 429: case 500: case 502: case 503: case 504: case 529:
        return true;
    default:
        return false;
    }
}

/* OpenAI answers a spent quota with 429 and error.code (or type) insufficient_quota. */
static bool is_insufficient_quota(const char *body, size_t len)
{
    if (body == NULL || len == 0 || memmem(body, len, "insufficient_quota", 18) == NULL)
        return false;
    json_t *root = json_loadb(body, len, 0, NULL);
    if (root == NULL)
        return false;
    json_t *err = json_object_get(root, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *type = json_string_value(json_object_get(err, "type"));
    bool quota = (code != NULL && strcmp(code, "insufficient_quota") == 0) ||
                 (type != NULL && strcmp(type, "insufficient_quota") == 0);
    json_decref(root);
    return quota;
}

rr_retry_decision rr_retry_classify(rr_call_kind kind, int http_status, const char *body,
                                    size_t body_len, bool retry_ambiguous)
{
    rr_retry_decision d = {.outcome = RR_OUTCOME_FINAL, .retry = false, .error_code = ""};
    switch (kind) {
    case RR_CALL_ANSWERED:
        if (http_status >= 200 && http_status < 300) {
            d.outcome = RR_OUTCOME_SUCCESS;
            return d;
        }
        if (http_status == 429 && is_insufficient_quota(body, body_len)) {
            snprintf(d.error_code, sizeof d.error_code, "insufficient_quota");
            return d;
        }
        snprintf(d.error_code, sizeof d.error_code, "upstream_http_%d", http_status);
        if (is_retryable_status(http_status)) {
            d.outcome = RR_OUTCOME_RETRYABLE;
            d.retry = true;
        }
        return d;
    case RR_CALL_NEVER_SENT:
        d.outcome = RR_OUTCOME_NEVER_SENT;
        d.retry = true;
        snprintf(d.error_code, sizeof d.error_code, "upstream_unreachable");
        return d;
    case RR_CALL_TIMEOUT:
    case RR_CALL_LOST:
        d.outcome = RR_OUTCOME_AMBIGUOUS;
        d.retry = retry_ambiguous;
        snprintf(d.error_code, sizeof d.error_code, "%s",
                 kind == RR_CALL_TIMEOUT ? "upstream_timeout" : "upstream_connection_lost");
        return d;
    case RR_CALL_CANCELLED:
        d.outcome = RR_OUTCOME_CANCELLED;
        snprintf(d.error_code, sizeof d.error_code, "request_cancelled");
        return d;
    case RR_CALL_DEADLINE:
        d.outcome = RR_OUTCOME_EXPIRED;
        snprintf(d.error_code, sizeof d.error_code, "deadline_exceeded");
        return d;
    case RR_CALL_TOO_LARGE:
        snprintf(d.error_code, sizeof d.error_code, "upstream_response_too_large");
        return d;
    }
    return d;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static const char *trim(const char *s, size_t *n)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    *n = len;
    return s;
}

bool rr_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    if (value == NULL)
        return false;
    size_t n;
    const char *v = trim(value, &n);
    if (all_digits(v, n)) {
        if (n > 9) /* over 31 years: treat as absent rather than overflow */
            return false;
        *delay_ms = strtoll(v, NULL, 10) * 1000;
        return true;
    }
    /* HTTP date (RFC 9110 §5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the
     * obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37
     * 1994" forms a recipient must accept. */
    static const char *const formats[] = {"%a, %d %b %Y %H:%M:%S GMT",
                                          "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, v, n);
    buf[n] = '\0';
    struct tm tm;
    bool parsed = false;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0] && !parsed; i++) {
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(buf, formats[i], &tm);
        parsed = end != NULL && *end == '\0';
    }
    if (!parsed)
        return false;
    int64_t at_ms = (int64_t)timegm(&tm) * 1000;
    *delay_ms = at_ms > now_ms ? at_ms - now_ms : 0;
    return true;
}

bool rr_retry_after_ms_parse(const char *value, int64_t *delay_ms)
{
    if (value == NULL)
        return false;
    size_t n;
    const char *v = trim(value, &n);
    char buf[32];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, v, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double ms = strtod(buf, &end);
    if (errno != 0 || end == buf || *end != '\0' || !(ms >= 0) || ms > 1e12)
        return false;
    *delay_ms = (int64_t)ceil(ms);
    return true;
}

uint64_t rr_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t rr_retry_delay_ms(const rr_retry_policy *p, uint32_t attempt, const char *retry_after,
                          const char *retry_after_ms, int64_t now_ms, uint64_t *rng)
{
    int64_t d;
    if (rr_retry_after_ms_parse(retry_after_ms, &d))
        return d;
    if (rr_retry_after_parse(retry_after, now_ms, &d))
        return d;
    int64_t ceiling = p->base_ms;
    for (uint32_t i = 1; i < attempt && ceiling < p->max_ms; i++)
        ceiling *= 2;
    if (ceiling > p->max_ms)
        ceiling = p->max_ms;
    return (int64_t)(rr_rng_next(rng) % (uint64_t)(ceiling + 1));
}
