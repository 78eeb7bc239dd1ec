/* Fault 5: kill -9 the ingress while clients wait. 100 clients at once send keyed
 * requests with wait:true (mock latency 2 s); once half the calls are upstream, the
 * ingress is killed, and restarted 1 s later. The clients see their connection drop and
 * retry with the same key: each gets the same id and the completed result (joined while
 * in flight, or replayed), and the upstream was called once per key. */
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
    rt_stack_opts o = {.env = {NULL}, .executors = 1, .no_wrap = true};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_kill_ingress_while_clients_wait(void **state)
{
    (void)state;
    chaos_run r;
    chaos_run_init(&r, &stack, "kill_ingress", 100);
    chaos_mock_latency(&r, 2000);
    r.threads = 100;
    r.rate = 0;
    r.wait_s = -1; /* wait: true */
    chaos_start(&r);

    bool ok;
    RT_POLL(ok, rt_mock_total(&stack) >= r.n / 2, 20000);
    long upstream_at_kill = rt_mock_total(&stack);
    int exit_status = rt_proc_stop(&stack.ingress, SIGKILL, 5000);
    int64_t kill_at = chaos_elapsed_ms(&r);
    rt_sleep_ms(1000); /* the outage */
    bool restarted = rt_stack_start_ingress(&stack, NULL);
    fprintf(stderr, "CHAOS kill_ingress: ingress killed at %lld ms with %ld calls upstream, "
                    "back at %lld ms\n",
            (long long)kill_at, upstream_at_kill, (long long)chaos_elapsed_ms(&r));

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 60000, &f);
    int cut = 0, replayed = 0;
    for (int i = 0; i < r.n; i++) {
        chaos_req *q = &r.reqs[i];
        cut += q->n_transport > 0;
        replayed += q->replayed;
        /* the answer is the completion itself, the one the record holds */
        json_t *body = q->final_body != NULL ? json_loads(q->final_body, 0, NULL) : NULL;
        const char *got = rt_json_str(body, "id");
        const char *want = rt_json_str(json_object_get(q->record, "result"), "id");
        if (q->final_status != 200 || strcmp(rt_json_str(body, "object"), "chat.completion") != 0 ||
            want[0] == '\0' || strcmp(got, want) != 0) {
            fprintf(stderr, "CHAOS violation: key %s: final answer %ld %.200s, record result "
                            "id %s\n",
                    q->key, q->final_status, q->final_body != NULL ? q->final_body : "", want);
            f.violations++;
        }
        json_decref(body);
    }
    fprintf(stderr, "CHAOS kill_ingress: %d clients lost their connection and retried, %d "
                    "final answers were replays\n",
            cut, replayed);
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(ok);
    assert_int_equal(exit_status, 128 + SIGKILL);
    assert_true(restarted);
    assert_true(cut > 0);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(f.ok, r.n);
    assert_int_equal(f.duplicate_upstream_calls, 0);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_ingress_while_clients_wait),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
