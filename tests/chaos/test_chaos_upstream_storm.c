/* Fault 6: an upstream storm. For 30 s the mock answers half of all calls 429 or 500
 * (no Retry-After: POST /mock/config {"fault":"flaky:50"}), then recovers. 300 keyed
 * requests go out at 10/s during the storm, every tenth with its own fault "400" (a final
 * answer). With REQRUN_MAX_ATTEMPTS=20 and a short backoff (50..500 ms), every storm
 * request ends completed within its attempts, and the record's attempt count is exactly
 * the mock's call count for the id; every 400 request was called exactly once (no
 * 400-class call is retried) and failed with the upstream's 400. */
#include "chaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#define STORM_MS 30000
#define MAX_ATTEMPTS 20

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_MAX_ATTEMPTS=20", "REQRUN_RETRY_BASE_MS=50",
                               "REQRUN_RETRY_MAX_MS=500", NULL},
                       .executors = 1,
                       .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_upstream_storm(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "upstream_storm", 300);
    for (int i = 0; i < r.n; i++) {
        chaos_req *q = &r.reqs[i];
        q->faulted = true; /* every call may be a storm failure: calls must equal attempts */
        if (i % 10 == 5) {
            snprintf(q->mock, sizeof q->mock, "\"fault\":\"400\"");
            q->want_status = "failed";
        }
    }
    r.rate = 10;
    r.threads = 8;
    bool storm_on = chaos_mock_config(&stack, "{\"fault\":\"flaky:50\"}");
    chaos_start(&r);
    rt_sleep_ms(STORM_MS);
    bool storm_off = chaos_mock_config(&stack, "{\"fault\":\"\"}");
    fprintf(stderr, "CHAOS upstream_storm: storm from 0 to %lld ms, %d requests sent by then\n",
            (long long)chaos_elapsed_ms(&r), atomic_load(&r.sent));

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    int retried = 0, storm_requests = 0, final_400 = 0, max_attempts = 0;
    for (int i = 0; i < r.n; i++) {
        chaos_req *q = &r.reqs[i];
        if (q->record == NULL)
            continue;
        if (q->attempts > max_attempts)
            max_attempts = q->attempts;
        if (q->calls != q->attempts || q->attempts > MAX_ATTEMPTS) {
            fprintf(stderr, "CHAOS violation: key %s: %d attempts recorded, %ld calls\n", q->key,
                    q->attempts, q->calls);
            f.violations++;
        }
        if (strcmp(q->want_status, "failed") == 0) {
            json_t *a = json_array_get(json_object_get(q->record, "attempt_log"), 0);
            if (q->calls != 1 || q->attempts != 1 ||
                json_integer_value(json_object_get(a, "upstream_status")) != 400) {
                char *rec = chaos_record_dump(q->record);
                fprintf(stderr, "CHAOS violation: key %s: a 400 called %ld times: %s\n", q->key,
                        q->calls, rec);
                free(rec);
                f.violations++;
            } else {
                final_400++;
            }
        } else {
            storm_requests++;
            retried += q->attempts > 1;
        }
    }
    fprintf(stderr, "CHAOS upstream_storm: %d of %d storm requests needed retries (at most %d "
                    "attempts); %d requests failed once with a final 400\n",
            retried, storm_requests, max_attempts, final_400);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(storm_on);
    assert_true(storm_off);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(f.ok, r.n);
    assert_int_equal(final_400, r.n / 10);
    /* the storm was real: a good share of the requests met it (half of each try fails) */
    assert_true(retried >= storm_requests / 4);
    assert_int_equal(f.duplicate_upstream_calls, 0);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_storm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
