/* Fault 2: SIGTERM an executor under load. 200 keyed requests (mock latency 1 s) at 25/s
 * to two executors; 3 s in, the busier executor gets SIGTERM. It stops pulling, lets its
 * calls finish (REQRUN_DRAIN_TIMEOUT_S=10 is far above the 1 s calls), hands back what it
 * pulled but did not start, and exits 0 well before the grace period (drain timeout +
 * 3 s). The other executor takes the rest: nothing lost, no upstream call repeated, no
 * attempt interrupted. */
#include "chaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define DRAIN_TIMEOUT_S 10
#define GRACE_MS ((DRAIN_TIMEOUT_S + 3) * 1000)

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_DRAIN_TIMEOUT_S=10", NULL}, .executors = 2,
                       .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_sigterm_executor_under_load(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "sigterm_executor", 200);
    chaos_mock_latency(&r, 1000);
    r.rate = 25;
    r.threads = 16;
    chaos_start(&r);

    rt_sleep_ms(3000);
    double in_flight = 0;
    int victim = chaos_await_victim(&stack, 5, &in_flight);
    if (victim < 0) {
        chaos_abandon(&r);
        fail_msg("no executor had calls in flight within 15 s");
    }
    double jobs = chaos_executor_metric(&stack, victim, "reqrun_executor_jobs");
    int64_t sig_at = rt_now_ms();
    rt_proc_signal(&stack.executor[victim], SIGTERM);
    /* waits up to the grace period, then SIGKILL (exit 137) */
    int exit_status = rt_proc_stop(&stack.executor[victim], 0, GRACE_MS);
    int64_t took = rt_now_ms() - sig_at;
    fprintf(stderr, "CHAOS sigterm_executor: executor%d got SIGTERM with %.0f calls in flight, "
                    "%.0f deliveries held; exit %d after %lld ms (grace %d ms)\n",
            victim, in_flight, jobs, exit_status, (long long)took, GRACE_MS);
    int drained = rt_proc_log_count(&stack.executor[victim], "draining: pulling stopped");

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0 || exit_status != 0)
        rt_stack_dump_logs(&stack);

    assert_int_equal(exit_status, 0);
    assert_true(took < rt_ms(GRACE_MS));
    assert_int_equal(drained, 1);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(f.ok, r.n);
    /* in-flight work finished: nothing handed back mid-call, nothing called twice */
    assert_int_equal(f.interrupted_records, 0);
    assert_int_equal(f.duplicate_upstream_calls, 0);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_executor_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
