/* Unit tests of retry.c: the classification table of DESIGN §4 row by row, Retry-After
 * and retry-after-ms parsing, and the full-jitter backoff (bounds, cap, determinism). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/clock.h"
#include "reqrun/retry.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A fixed "now": 2026-11-24T06:00:00Z. */
#define NOW_MS 1795500000000LL

#define BUSY "{\"error\":{\"message\":\"busy\"}}"
#define NO "{\"error\":{\"message\":\"no\"}}"

static rr_retry_decision answered(int status, const char *body)
{
    return rr_retry_classify(RR_CALL_ANSWERED, status, body, body != NULL ? strlen(body) : 0,
                             true);
}

static void test_success(void **state)
{
    (void)state;
    static const int ok[] = {200, 201, 204, 299};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rr_retry_decision d = answered(ok[i], "{\"id\":\"x\"}");
        assert_int_equal(d.outcome, RR_OUTCOME_SUCCESS);
        assert_false(d.retry);
        assert_string_equal(d.error_code, "");
    }
}

static void test_never_sent_retries(void **state)
{
    (void)state;
    for (int amb = 0; amb <= 1; amb++) {
        /* Safe whatever REQRUN_RETRY_AMBIGUOUS says: the upstream saw nothing. */
        rr_retry_decision d = rr_retry_classify(RR_CALL_NEVER_SENT, 0, NULL, 0, amb != 0);
        assert_int_equal(d.outcome, RR_OUTCOME_NEVER_SENT);
        assert_true(d.retry);
        assert_string_equal(d.error_code, "upstream_unreachable");
    }
}

static void test_retryable_statuses(void **state)
{
    (void)state;
    static const int statuses[] = {408, 409, 425, 429, 500, 502, 503, 504, 529};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        for (int amb = 0; amb <= 1; amb++) {
            rr_retry_decision d = rr_retry_classify(RR_CALL_ANSWERED, statuses[i],
                                                    BUSY, strlen(BUSY),
                                                    amb != 0);
            if (!d.retry || d.outcome != RR_OUTCOME_RETRYABLE)
                fail_msg("status %d: retry=%d outcome=%d", statuses[i], d.retry, d.outcome);
            char want[32];
            snprintf(want, sizeof want, "upstream_http_%d", statuses[i]);
            assert_string_equal(d.error_code, want);
        }
    }
    /* A 429 without a body (or with a body that is not JSON) is a plain rate limit. */
    rr_retry_decision d = answered(429, NULL);
    assert_true(d.retry);
    d = answered(429, "slow down: insufficient_quota? no, just busy");
    assert_true(d.retry);
    assert_int_equal(d.outcome, RR_OUTCOME_RETRYABLE);
}

static void test_insufficient_quota_final(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        ("{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":"
         "\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}"),
        "{\"error\":{\"message\":\"quota\",\"code\":\"insufficient_quota\"}}",
        "{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\",\"code\":null}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        rr_retry_decision d = answered(429, bodies[i]);
        assert_false(d.retry);
        assert_int_equal(d.outcome, RR_OUTCOME_FINAL);
        assert_string_equal(d.error_code, "insufficient_quota");
    }
    /* The words elsewhere in the body do not make a quota error. */
    rr_retry_decision d =
        answered(429, "{\"error\":{\"message\":\"insufficient_quota\",\"code\":\"rate_limit\"}}");
    assert_true(d.retry);
    assert_int_equal(d.outcome, RR_OUTCOME_RETRYABLE);
    /* Only 429 carries that exception: a 400 is final anyway, a 503 retried. */
    d = answered(503, bodies[1]);
    assert_true(d.retry);
}

static void test_ambiguous(void **state)
{
    (void)state;
    static const struct {
        rr_call_kind kind;
        const char *code;
    } v[] = {{RR_CALL_TIMEOUT, "upstream_timeout"}, {RR_CALL_LOST, "upstream_connection_lost"}};
    for (size_t i = 0; i < 2; i++) {
        rr_retry_decision d = rr_retry_classify(v[i].kind, 0, NULL, 0, true);
        assert_int_equal(d.outcome, RR_OUTCOME_AMBIGUOUS);
        assert_true(d.retry);
        assert_string_equal(d.error_code, v[i].code);
        d = rr_retry_classify(v[i].kind, 0, NULL, 0, false);
        assert_int_equal(d.outcome, RR_OUTCOME_AMBIGUOUS);
        assert_false(d.retry);
        assert_string_equal(d.error_code, v[i].code);
    }
}

static void test_final_statuses(void **state)
{
    (void)state;
    static const int statuses[] = {400, 401, 402, 403, 404, 405, 410, 413, 415, 422, 451,
                                   499, 501, 505, 511, 100, 301, 304};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        for (int amb = 0; amb <= 1; amb++) {
            rr_retry_decision d = rr_retry_classify(
                RR_CALL_ANSWERED, statuses[i], NO, strlen(NO), amb != 0);
            if (d.retry || d.outcome != RR_OUTCOME_FINAL)
                fail_msg("status %d: retry=%d outcome=%d", statuses[i], d.retry, d.outcome);
            char want[32];
            snprintf(want, sizeof want, "upstream_http_%d", statuses[i]);
            assert_string_equal(d.error_code, want);
        }
    }
}

static void test_cancel_deadline_too_large(void **state)
{
    (void)state;
    for (int amb = 0; amb <= 1; amb++) {
        rr_retry_decision d = rr_retry_classify(RR_CALL_CANCELLED, 0, NULL, 0, amb != 0);
        assert_int_equal(d.outcome, RR_OUTCOME_CANCELLED);
        assert_false(d.retry);
        assert_string_equal(d.error_code, "request_cancelled");
        d = rr_retry_classify(RR_CALL_DEADLINE, 0, NULL, 0, amb != 0);
        assert_int_equal(d.outcome, RR_OUTCOME_EXPIRED);
        assert_false(d.retry);
        assert_string_equal(d.error_code, "deadline_exceeded");
        d = rr_retry_classify(RR_CALL_TOO_LARGE, 200, NULL, 0, amb != 0);
        assert_int_equal(d.outcome, RR_OUTCOME_FINAL);
        assert_false(d.retry);
        assert_string_equal(d.error_code, "upstream_response_too_large");
    }
}

/* Formats unix seconds as an IMF-fixdate, independently of the code under test. */
static void http_date(int64_t unix_s, char *out, size_t outlen)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    assert_true(strftime(out, outlen, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    int64_t d = -1;
    assert_true(rr_retry_after_parse("7", NOW_MS, &d));
    assert_int_equal(d, 7000);
    assert_true(rr_retry_after_parse("0", NOW_MS, &d));
    assert_int_equal(d, 0);
    assert_true(rr_retry_after_parse(" 120 ", NOW_MS, &d));
    assert_int_equal(d, 120000);

    char date[64];
    http_date(NOW_MS / 1000 + 7, date, sizeof date);
    d = -1;
    assert_true(rr_retry_after_parse(date, NOW_MS, &d));
    assert_int_equal(d, 7000);
    /* Sub-second now: the delay counts from now, not from the second. */
    assert_true(rr_retry_after_parse(date, NOW_MS + 250, &d));
    assert_int_equal(d, 6750);
    http_date(NOW_MS / 1000 - 30, date, sizeof date); /* in the past */
    d = -1;
    assert_true(rr_retry_after_parse(date, NOW_MS, &d));
    assert_int_equal(d, 0);
    assert_true(rr_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW_MS, &d));
    assert_int_equal(d, 0);
    /* the obsolete forms RFC 9110 requires recipients to accept */
    {
        time_t t = (time_t)(NOW_MS / 1000 + 9);
        struct tm tm;
        gmtime_r(&t, &tm);
        char rfc850[96], day[40], clock[24], asc[64];
        assert_true(strftime(day, sizeof day, "%A, %d-%b-", &tm) > 0);
        assert_true(strftime(clock, sizeof clock, "%H:%M:%S GMT", &tm) > 0);
        snprintf(rfc850, sizeof rfc850, "%s%02d %s", day, tm.tm_year % 100, clock);
        assert_true(strftime(asc, sizeof asc, "%a %b %e %H:%M:%S %Y", &tm) > 0);
        d = -1;
        assert_true(rr_retry_after_parse(rfc850, NOW_MS, &d));
        assert_int_equal(d, 9000);
        d = -1;
        assert_true(rr_retry_after_parse(asc, NOW_MS, &d));
        assert_int_equal(d, 9000);
    }

    static const char *const bad[] = {"", "  ", "-1", "1.5", "soon", "7s", "0x10",
                                      "Sun, 06 Nov 1994 08:49:37", "9999999999",
                                      "Sun, 06 Nov 1994 08:49:37 GMT junk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = 12345;
        if (rr_retry_after_parse(bad[i], NOW_MS, &d))
            fail_msg("Retry-After \"%s\" accepted as %lld", bad[i], (long long)d);
    }
    assert_false(rr_retry_after_parse(NULL, NOW_MS, &d));
}

static void test_retry_after_ms_parse(void **state)
{
    (void)state;
    int64_t d = -1;
    assert_true(rr_retry_after_ms_parse("250", &d));
    assert_int_equal(d, 250);
    assert_true(rr_retry_after_ms_parse("0", &d));
    assert_int_equal(d, 0);
    assert_true(rr_retry_after_ms_parse("12.2", &d)); /* fractional: rounded up */
    assert_int_equal(d, 13);
    static const char *const bad[] = {"", "-5", "abc", "5ms", "nan", "inf", "1e13"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (rr_retry_after_ms_parse(bad[i], &d))
            fail_msg("retry-after-ms \"%s\" accepted", bad[i]);
    }
    assert_false(rr_retry_after_ms_parse(NULL, &d));
}

static void test_delay_header_precedence(void **state)
{
    (void)state;
    rr_retry_policy p = {.base_ms = 500, .max_ms = 60000};
    uint64_t rng = 42;
    /* retry-after-ms wins over Retry-After. */
    assert_int_equal(rr_retry_delay_ms(&p, 1, "9", "1500", NOW_MS, &rng), 1500);
    /* Retry-After in seconds, then as an HTTP date. */
    assert_int_equal(rr_retry_delay_ms(&p, 1, "9", NULL, NOW_MS, &rng), 9000);
    char date[64];
    http_date(NOW_MS / 1000 + 7, date, sizeof date);
    assert_int_equal(rr_retry_delay_ms(&p, 3, date, NULL, NOW_MS, &rng), 7000);
    http_date(NOW_MS / 1000 - 7, date, sizeof date);
    assert_int_equal(rr_retry_delay_ms(&p, 3, date, NULL, NOW_MS, &rng), 0);
    /* A bad retry-after-ms falls back to Retry-After. */
    assert_int_equal(rr_retry_delay_ms(&p, 1, "4", "soon", NOW_MS, &rng), 4000);
    /* Headers are honoured even past the backoff cap: the server knows best. */
    assert_int_equal(rr_retry_delay_ms(&p, 1, "120", NULL, NOW_MS, &rng), 120000);

    /* Garbage in both: full jitter of attempt 1, i.e. within [0, base]. The headers must
     * not leave the rng untouched and return a constant. */
    uint64_t a = 7, b = 7;
    for (int i = 0; i < 200; i++) {
        int64_t d = rr_retry_delay_ms(&p, 1, "tomorrow", "later", NOW_MS, &a);
        int64_t e = rr_retry_delay_ms(&p, 1, NULL, NULL, NOW_MS, &b);
        assert_true(d >= 0 && d <= 500);
        assert_int_equal(d, e); /* same seed, same draw: the headers were ignored */
    }
    assert_int_equal(a, b);
}

static void test_full_jitter_bounds(void **state)
{
    (void)state;
    rr_retry_policy p = {.base_ms = 500, .max_ms = 60000};
    uint64_t rng = 0x5eed;
    for (uint32_t n = 1; n <= 10; n++) {
        int64_t ceiling = 500LL << (n - 1);
        if (ceiling > 60000)
            ceiling = 60000;
        int64_t lo = INT64_MAX, hi = -1;
        double sum = 0;
        const int draws = 4000;
        for (int i = 0; i < draws; i++) {
            int64_t d = rr_retry_delay_ms(&p, n, NULL, NULL, NOW_MS, &rng);
            if (d < 0 || d > ceiling)
                fail_msg("attempt %u: delay %lld outside [0, %lld]", n, (long long)d,
                         (long long)ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += (double)d;
        }
        /* Full jitter spreads over the whole range, not a fixed or half range. */
        assert_true(lo <= ceiling / 20);
        assert_true(hi >= ceiling - ceiling / 20);
        double mean = sum / draws;
        assert_true(mean > 0.4 * (double)ceiling && mean < 0.6 * (double)ceiling);
    }
}

static void test_cap_holds(void **state)
{
    (void)state;
    rr_retry_policy p = {.base_ms = 1000, .max_ms = 3000};
    uint64_t rng = 1;
    for (uint32_t n = 1; n <= 200; n++) {
        for (int i = 0; i < 50; i++) {
            int64_t d = rr_retry_delay_ms(&p, n, NULL, NULL, NOW_MS, &rng);
            assert_true(d >= 0 && d <= 3000);
        }
    }
    /* Large attempt numbers must not overflow into negative or huge delays. */
    rr_retry_policy big = {.base_ms = 3600000, .max_ms = 3600000};
    for (int i = 0; i < 100; i++) {
        int64_t d = rr_retry_delay_ms(&big, UINT32_MAX, NULL, NULL, NOW_MS, &rng);
        assert_true(d >= 0 && d <= 3600000);
    }
    /* base == max: every attempt draws from [0, max]. */
    rr_retry_policy flat = {.base_ms = 10, .max_ms = 10};
    for (int i = 0; i < 100; i++) {
        int64_t d = rr_retry_delay_ms(&flat, 5, NULL, NULL, NOW_MS, &rng);
        assert_true(d >= 0 && d <= 10);
    }
}

static void test_determinism(void **state)
{
    (void)state;
    rr_retry_policy p = {.base_ms = 500, .max_ms = 60000};
    uint64_t s1 = 123456789, s2 = 123456789, s3 = 987654321;
    int64_t a[64], b[64], c[64];
    for (int i = 0; i < 64; i++) {
        uint32_t n = (uint32_t)(i % 10) + 1;
        a[i] = rr_retry_delay_ms(&p, n, NULL, NULL, NOW_MS, &s1);
        b[i] = rr_retry_delay_ms(&p, n, NULL, NULL, NOW_MS, &s2);
        c[i] = rr_retry_delay_ms(&p, n, NULL, NULL, NOW_MS, &s3);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(s1, s2);
    /* The rng advances: consecutive draws are not all the same. */
    uint64_t st = 99;
    uint64_t first = rr_rng_next(&st);
    bool differs = false;
    for (int i = 0; i < 8; i++)
        differs |= rr_rng_next(&st) != first;
    assert_true(differs);
    /* splitmix64 reference value (Vigna): seed 0 gives 0xe220a8397b1dcdaf first. */
    uint64_t zero = 0;
    assert_true(rr_rng_next(&zero) == 0xe220a8397b1dcdafULL);
}

/* Internal retries (NATS writes): waits double up to the cap and stop at the deadline. */
static void test_backoff_doubles_capped_until_deadline(void **state)
{
    (void)state;
    rr_backoff b = rr_backoff_start(1, 3, 2000);
    int64_t t0 = rr_mono_ms();
    assert_true(rr_backoff_wait(&b)); /* 1 ms */
    assert_int_equal(b.wait_ms, 2);
    assert_true(rr_backoff_wait(&b)); /* 2 ms */
    assert_int_equal(b.wait_ms, 3);
    assert_true(rr_backoff_wait(&b)); /* 3 ms, the cap */
    assert_int_equal(b.wait_ms, 3);
    assert_true(rr_mono_ms() - t0 >= 6);

    /* a wait that would end past the deadline is refused at once, without sleeping */
    rr_backoff late = rr_backoff_start(500, 1000, 100);
    t0 = rr_mono_ms();
    assert_false(rr_backoff_wait(&late));
    assert_int_equal(late.wait_ms, 500);
    assert_true(rr_mono_ms() - t0 < 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_never_sent_retries),
        cmocka_unit_test(test_retryable_statuses),
        cmocka_unit_test(test_insufficient_quota_final),
        cmocka_unit_test(test_ambiguous),
        cmocka_unit_test(test_final_statuses),
        cmocka_unit_test(test_cancel_deadline_too_large),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_retry_after_ms_parse),
        cmocka_unit_test(test_delay_header_precedence),
        cmocka_unit_test(test_full_jitter_bounds),
        cmocka_unit_test(test_cap_holds),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_backoff_doubles_capped_until_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
