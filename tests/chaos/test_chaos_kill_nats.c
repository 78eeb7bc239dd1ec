/* Fault 4: kill -9 nats-server under load, restart it on the same store. 400 keyed
 * requests (mock latency 200 ms) at 40/s; 3 s in, nats-server is killed and stays down
 * 3 s, then restarts on its store. Meanwhile the ingress answers 503 (nothing stored,
 * nothing promised) and the clients retry with their keys. Every request that got a 2xx
 * has its record and reaches a terminal state; every key converges on its one id; no
 * upstream call is repeated; each id has exactly one terminal event and its record is
 * never written after it. */
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
    /* AckWait 10 s: a delivery whose settle was lost in the outage comes back soon */
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=10", NULL}, .executors = 1, .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_kill_nats_under_load(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "kill_nats", 400);
    chaos_mock_latency(&r, 200);
    r.rate = 40;
    r.threads = 32;
    chaos_start(&r);

    rt_sleep_ms(3000);
    int acked_before = atomic_load(&r.acked);
    rt_nats_stop(&stack.nats, SIGKILL);
    int64_t kill_at = chaos_elapsed_ms(&r);
    rt_sleep_ms(3000); /* the outage */
    bool restarted = rt_nats_restart(&stack.nats);
    bool js_ok;
    RT_POLL(js_ok, rt_js_ready(stack.nats.url), 30000);
    fprintf(stderr, "CHAOS kill_nats: nats-server killed at %lld ms (%d keys acknowledged), "
                    "JetStream back at %lld ms\n",
            (long long)kill_at, acked_before, (long long)chaos_elapsed_ms(&r));

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    bool queue_empty;
    RT_POLL(queue_empty, chaos_queue_settled(&stack), 40000);
    int copies = 0, diverged = 0;
    int event_violations = chaos_check_events(&r, &copies, &diverged);
    /* nats-server 2.9 persists WorkQueue removals lazily: after kill -9 some messages
     * acknowledged before the kill may come back behind the consumer's ack floor. They
     * are never delivered again, so each must belong to a finished request. */
    int leftovers = chaos_queue_leftovers(&r, &f.violations);
    int saw_503 = 0;
    for (int i = 0; i < r.n; i++)
        saw_503 += r.reqs[i].n_503 > 0;
    fprintf(stderr, "CHAOS kill_nats: %d keys saw a 503 and retried, %d extra event copies, "
                    "%d acknowledged messages back in the stream after the restart\n",
            saw_503, copies, leftovers);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0 || event_violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(restarted);
    assert_true(js_ok);
    assert_true(queue_empty);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(event_violations, 0);
    assert_int_equal(f.ok, r.n);
    assert_true(saw_503 > 0); /* the outage was seen, and answered 503 */
    assert_int_equal(f.duplicate_upstream_calls, 0);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_nats_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
