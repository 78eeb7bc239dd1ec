/* Fault 1: kill -9 an executor mid-call. 300 keyed requests (mock latency 2 s) go out at
 * 50/s to two executors; 3 s in, the executor with more calls in flight is killed. Its
 * deliveries come back after AckWait (6 s) to the survivor. Every acknowledged request
 * ends completed; the only duplicate upstream calls are those the killed executor had in
 * flight, and each such record shows the killed executor's attempt as interrupted. */
#include "chaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=6", NULL}, .executors = 2, .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_kill_executor_mid_call(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "kill_executor", 300);
    chaos_mock_latency(&r, 2000);
    r.rate = 50;
    r.threads = 16;
    chaos_start(&r);

    /* the fault: 3 s into the load, once the victim has calls in flight */
    rt_sleep_ms(3000);
    double in_flight = 0;
    int victim = chaos_await_victim(&stack, 10, &in_flight);
    if (victim < 0) {
        chaos_abandon(&r);
        fail_msg("no executor had calls in flight within 15 s");
    }
    int exit_status = rt_proc_stop(&stack.executor[victim], SIGKILL, 5000);
    fprintf(stderr, "CHAOS kill_executor: executor%d killed at %lld ms with %.0f calls in "
                    "flight (exit %d)\n",
            victim, (long long)chaos_elapsed_ms(&r), in_flight, exit_status);

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);

    char prefix[48];
    snprintf(prefix, sizeof prefix, "test-executor-%d-", victim);
    int victim_records = 0, not_repeated = 0;
    for (int i = 0; i < r.n; i++) {
        chaos_req *q = &r.reqs[i];
        int by_victim = chaos_attempts_with(q->record, "interrupted", prefix);
        victim_records += by_victim > 0;
        not_repeated += by_victim > 0 && q->duplicate == 0; /* claimed, not yet called */
        if (q->interrupted != by_victim) {
            fprintf(stderr, "CHAOS violation: %s: an interrupted attempt not by executor%d\n",
                    q->id, victim);
            f.violations++;
        }
        if (q->duplicate > 0 && by_victim == 0) {
            fprintf(stderr, "CHAOS violation: %s: %ld duplicate call(s), no interrupted "
                            "attempt of the killed executor\n",
                    q->id, q->duplicate);
            f.violations++;
        }
    }
    fprintf(stderr, "CHAOS kill_executor: %d records interrupted by the kill (%d of them never "
                    "reached the mock), %ld duplicate calls, %.0f calls in flight just before "
                    "the kill\n",
            victim_records, not_repeated, f.duplicate_upstream_calls, in_flight);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0)
        rt_stack_dump_logs(&stack);

    assert_int_equal(exit_status, 128 + SIGKILL);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(f.ok, r.n);
    /* the kill hit calls in flight, and only those were repeated */
    assert_true(victim_records > 0);
    assert_true(f.duplicate_upstream_calls > 0);
    assert_true(f.duplicate_upstream_calls <= victim_records);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_executor_mid_call),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
