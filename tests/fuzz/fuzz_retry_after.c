/* Fuzz target of retry.c's header parsing: Retry-After and retry-after-ms on arbitrary
 * bytes (NUL-terminated as the HTTP client hands them over), and rr_retry_delay_ms with
 * them under the configured extremes. Every delay is >= 0 and obeys the precedence
 * retry-after-ms, Retry-After, jittered backoff. */
#include "fuzz_target.h"

#include "reqrun/retry.h"

#include <string.h>

/* Clocks the parser may meet: the epoch, now-ish, the last second of year 9999. */
static const int64_t clocks_ms[] = {0, 1700000000000, 253402300799000};

/* The configuration default and both ends of config.c's bounds. */
static const rr_retry_policy policies[] = {
    {.base_ms = 500, .max_ms = 60000},
    {.base_ms = 1, .max_ms = 1},
    {.base_ms = 1, .max_ms = 3600000},
    {.base_ms = 3600000, .max_ms = 3600000},
};

static const uint32_t attempts[] = {1, 2, 20, 64, UINT32_MAX};

/* Largest Retry-After as delta seconds the parser takes: 9 digits. */
#define DELTA_MAX_MS (999999999LL * 1000)
#define RETRY_AFTER_MS_MAX 1000000000000LL

static void check_retry_after(const char *v)
{
    /* A delta ignores the clock; a date's delay shrinks as the clock moves on. Whether
     * the value parses never depends on the clock. */
    int64_t prev = -1;
    bool parsed = false;
    for (size_t i = 0; i < sizeof clocks_ms / sizeof clocks_ms[0]; i++) {
        int64_t d = -1;
        bool ok = rr_retry_after_parse(v, clocks_ms[i], &d);
        if (i == 0)
            parsed = ok;
        FUZZ_CHECK(ok == parsed);
        if (!ok)
            continue;
        FUZZ_CHECK(d >= 0);
        FUZZ_CHECK(i == 0 || d <= prev);
        prev = d;
    }
    /* At the end of year 9999 a date is at most a leap second away, so only a delta
     * can be large, and it has at most 9 digits. */
    FUZZ_CHECK(!parsed || prev <= DELTA_MAX_MS);
}

static void check_retry_after_ms(const char *v)
{
    int64_t d = -1;
    if (rr_retry_after_ms_parse(v, &d))
        FUZZ_CHECK(d >= 0 && d <= RETRY_AFTER_MS_MAX);
}

/* Precedence and bounds of the delay with these two header values (either NULL). */
static void check_delay(const char *retry_after, const char *retry_after_ms, uint64_t seed)
{
    for (size_t c = 0; c < sizeof clocks_ms / sizeof clocks_ms[0]; c++) {
        int64_t now = clocks_ms[c];
        int64_t want = -1;
        bool fixed = rr_retry_after_ms_parse(retry_after_ms, &want) ||
                     rr_retry_after_parse(retry_after, now, &want);
        for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
            for (size_t a = 0; a < sizeof attempts / sizeof attempts[0]; a++) {
                uint64_t rng = seed;
                int64_t d = rr_retry_delay_ms(&policies[p], attempts[a], retry_after,
                                              retry_after_ms, now, &rng);
                FUZZ_CHECK(d >= 0);
                if (fixed) {
                    /* A header decides, whatever the policy and attempt. */
                    FUZZ_CHECK(d == want);
                    break;
                }
                /* Full jitter in [0, min(max, base * 2^(attempt-1))]. */
                int64_t ceiling = policies[p].base_ms;
                for (uint32_t i = 1; i < attempts[a] && ceiling < policies[p].max_ms; i++)
                    ceiling *= 2;
                FUZZ_CHECK(d <= policies[p].max_ms && d <= ceiling);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Header values arrive NUL-terminated; an exact-size copy lets ASan see over-reads. */
    char *v = malloc(size + 1);
    FUZZ_CHECK(v != NULL);
    memcpy(v, data, size);
    v[size] = '\0';

    check_retry_after(v);
    check_retry_after_ms(v);
    uint64_t seed = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        seed = seed << 8 | data[i];
    check_delay(v, NULL, seed);
    check_delay(NULL, v, seed);
    check_delay(NULL, NULL, seed);
    /* Both headers at once: the first line is Retry-After, the rest retry-after-ms. */
    char *nl = strchr(v, '\n');
    if (nl != NULL) {
        *nl = '\0';
        check_delay(v, nl + 1, seed);
    } else {
        check_delay(v, v, seed);
    }
    free(v);
    return 0;
}
