/* Fault 3: SIGSTOP an executor past AckWait, SIGCONT it later. 80 keyed requests (mock
 * latency 4 s) at 40/s to two executors with REQRUN_ACK_WAIT_S=3; 1 s in, the busier
 * executor is stopped for AckWait + 2 s. Its deliveries go to the other executor, which
 * takes the records over (the stalled attempt becomes "interrupted") and calls again.
 * When the stalled executor wakes up with its own answers, its compare-and-set loses:
 * its result is discarded. Records terminal at SIGCONT never change after it; the others
 * finish with the other executor's result; each id has exactly one terminal event and
 * its KV record stays at that revision. */
#include "chaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACK_WAIT_MS 3000

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=3", NULL}, .executors = 2, .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_stalled_executor_loses_its_writes(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "stall_executor", 80);
    chaos_mock_latency(&r, 4000);
    r.rate = 40;
    r.threads = 16;
    chaos_start(&r);

    rt_sleep_ms(1000);
    double in_flight = 0;
    int victim = chaos_await_victim(&stack, 5, &in_flight);
    if (victim < 0) {
        chaos_abandon(&r);
        fail_msg("no executor had calls in flight within 15 s");
    }
    rt_proc_signal(&stack.executor[victim], SIGSTOP);
    int64_t stop_at = chaos_elapsed_ms(&r);
    rt_sleep_ms(ACK_WAIT_MS + 2000); /* the fault: stalled past AckWait */

    /* what the other executor wrote before the stalled one wakes up */
    char **before = calloc((size_t)r.n, sizeof *before);
    int terminal_before = 0;
    for (int i = 0; i < r.n; i++) {
        json_t *rec = rt_get_request(&stack, r.reqs[i].id, "include=attempts");
        if (rec != NULL && rt_status_terminal(rt_json_str(rec, "status"))) {
            before[i] = chaos_record_dump(rec);
            terminal_before++;
        }
        json_decref(rec);
    }
    rt_proc_signal(&stack.executor[victim], SIGCONT);
    fprintf(stderr, "CHAOS stall_executor: executor%d stopped at %lld ms with %.0f calls in "
                    "flight, continued at %lld ms; %d records terminal by then\n",
            victim, (long long)stop_at, in_flight, (long long)chaos_elapsed_ms(&r),
            terminal_before);

    chaos_join(&r);
    /* the stalled executor has settled (dropped or acked) everything it held */
    bool settled;
    RT_POLL(settled, chaos_executor_metric(&stack, victim, "reqrun_executor_jobs") == 0, 30000);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    bool queue_empty;
    RT_POLL(queue_empty, chaos_queue_settled(&stack), 30000);

    char prefix[48];
    snprintf(prefix, sizeof prefix, "test-executor-%d-", victim);
    int victim_records = 0, not_repeated = 0, changed = 0;
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
        if (chaos_attempts_with(q->record, "success", NULL) != 1) {
            fprintf(stderr, "CHAOS violation: %s: not exactly one successful attempt\n", q->id);
            f.violations++;
        }
        /* the late writer never wins: its attempt stays interrupted, the result is the
         * other executor's */
        if (by_victim > 0 && chaos_attempts_with(q->record, "success", prefix) > 0) {
            fprintf(stderr, "CHAOS violation: %s: the stalled executor's result was kept\n",
                    q->id);
            f.violations++;
        }
        if (before[i] != NULL) {
            char *after = chaos_record_dump(q->record);
            if (strcmp(before[i], after) != 0) {
                fprintf(stderr, "CHAOS violation: %s changed after SIGCONT\n    before %s\n"
                                "    after  %s\n",
                        q->id, before[i], after);
                changed++;
            }
            free(after);
        }
        free(before[i]);
    }
    free(before);
    f.violations += changed;
    int copies = 0, diverged = 0;
    int event_violations = chaos_check_events(&r, &copies, &diverged);
    int leftovers = chaos_queue_leftovers(&r, &f.violations);
    int discarded = rt_proc_log_count(&stack.executor[victim],
                                      "another delivery owns the request: result discarded");
    fprintf(stderr, "CHAOS stall_executor: %d records taken over from the stalled executor "
                    "(%d of them not yet called), %d results discarded (log), %d records "
                    "terminal at SIGCONT unchanged, %d extra event copies\n",
            victim_records, not_repeated, discarded, terminal_before - changed, copies);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0 || event_violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(settled);
    assert_true(queue_empty);
    assert_int_equal(leftovers, 0);
    assert_true(rt_proc_alive(&stack.executor[victim]));
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(event_violations, 0);
    assert_int_equal(f.ok, r.n);
    /* the stall hit calls in flight; only those were repeated */
    assert_true(victim_records > 0);
    assert_true(f.duplicate_upstream_calls <= victim_records);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_executor_loses_its_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
