/* Fault 8: the distributed engine. A 3-node nats-server cluster on loopback (stream and
 * bucket with 3 replicas; services given all three URLs), two executors. 240 keyed
 * requests (mock latency 200 ms) go out at 20/s; 4 s in, the node leading stream
 * REQRUN_REQUESTS is killed (kill -9), and restarted on its store 6 s later. Clients
 * retry with their keys through the election. Nothing acknowledged is lost; no request
 * has two terminal records: each id has exactly one terminal event in REQRUN_EVENTS
 * (reqrun.events.default.<id>.<status>), no event after it, and its KV record is still
 * at that event's revision (never written after turning terminal). */
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
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=10", NULL},
                       .executors = 2,
                       .cluster = true,
                       .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_kill_stream_leader(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "cluster_leader", 240);
    chaos_mock_latency(&r, 200);
    r.rate = 20;
    r.threads = 16;
    chaos_start(&r);

    rt_sleep_ms(4000);
    char leader[64], kv_leader[64] = "", new_leader[64] = "";
    bool found;
    RT_POLL(found, chaos_stream_leader(&stack, "REQRUN_REQUESTS", leader, sizeof leader), 10000);
    chaos_stream_leader(&stack, "KV_reqrun_records", kv_leader, sizeof kv_leader);
    int victim = found ? chaos_cluster_node(&stack, leader) : -1;
    int64_t kill_at = chaos_elapsed_ms(&r);
    if (victim >= 0)
        rt_nats_stop(&stack.cluster.node[victim], SIGKILL);
    bool elected;
    RT_POLL(elected, chaos_stream_leader(&stack, "REQRUN_REQUESTS", new_leader,
                                         sizeof new_leader) &&
                         strcmp(new_leader, leader) != 0,
            20000);
    fprintf(stderr, "CHAOS cluster_leader: killed %s (node %d, stream leader; KV leader was "
                    "%s) at %lld ms; new stream leader %s at %lld ms\n",
            leader, victim, kv_leader, (long long)kill_at, new_leader,
            (long long)chaos_elapsed_ms(&r));
    int64_t down_until = kill_at + 6000;
    if (down_until > chaos_elapsed_ms(&r))
        rt_sleep_ms(down_until - chaos_elapsed_ms(&r)); /* the node stays down 6 s */
    bool restarted = victim >= 0 && rt_cluster_restart_node(&stack.cluster, victim);
    fprintf(stderr, "CHAOS cluster_leader: node %d restarted at %lld ms\n", victim,
            (long long)chaos_elapsed_ms(&r));

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    bool queue_empty;
    RT_POLL(queue_empty, chaos_queue_settled(&stack), 60000);
    int leftovers = chaos_queue_leftovers(&r, &f.violations);
    int copies = 0, diverged = 0;
    int event_violations = chaos_check_events(&r, &copies, &diverged);
    fprintf(stderr, "CHAOS cluster_leader: %d extra copies of terminal events, %d messages "
                    "left in the work queue\n",
            copies, leftovers);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0 || event_violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(found);
    assert_true(victim >= 0);
    assert_true(elected);
    assert_true(restarted);
    assert_true(queue_empty);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(event_violations, 0);
    assert_int_equal(f.ok, r.n);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_stream_leader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
