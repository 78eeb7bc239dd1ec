/* Graceful shutdown (issue 7): on SIGTERM the ingress fails /readyz first, answers held
 * requests with the async object, keeps serving for REQRUN_SHUTDOWN_DELAY_S and exits 0;
 * the executor stops fetching, lets in-flight calls finish, hands back what is left after
 * REQRUN_DRAIN_TIMEOUT_S (attempt "interrupted", NAK) and exits 0 in time. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rt_stack_opts o = {.env = {NULL}, .executors = 2};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

typedef struct held {
    long status;
    char object[64];
    char state[32];
    int64_t answered_at;
} held;

static void *hold(void *arg)
{
    held *h = arg;
    rt_resp r;
    rt_post_chat(&stack, &r,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"held\"}],"
                 "\"mock\":{\"latency_ms\":4000},\"wait\":30}",
                 NULL);
    h->answered_at = rt_now_ms();
    h->status = r.status;
    json_t *j = rt_resp_json(&r);
    snprintf(h->object, sizeof h->object, "%s", rt_json_str(j, "object"));
    snprintf(h->state, sizeof h->state, "%s", rt_json_str(j, "status"));
    json_decref(j);
    rt_resp_free(&r);
    return NULL;
}

static long get_status(const char *path)
{
    char url[160];
    snprintf(url, sizeof url, "%s%s", stack.base, path);
    rt_resp r;
    long st = rt_http(&r, "GET", url, NULL, NULL, 2000) ? r.status : 0;
    rt_resp_free(&r);
    return st;
}

static void test_ingress_sigterm(void **state)
{
    (void)state;
    rt_proc_stop(&stack.ingress, SIGTERM, 30000);
    char *delay[] = {"REQRUN_SHUTDOWN_DELAY_S=3", NULL};
    assert_true(rt_stack_start_ingress(&stack, delay));
    held h = {0};
    pthread_t t;
    pthread_create(&t, NULL, hold, &h);
    bool ok;
    RT_POLL(ok, rt_mock_total(&stack) >= 1, 5000); /* the call is upstream: the client waits */
    assert_true(ok);
    int64_t sig_at = rt_now_ms();
    rt_proc_signal(&stack.ingress, SIGTERM);
    pthread_join(t, NULL);
    /* the held request is answered at once with the async object */
    assert_int_equal(h.status, 200);
    assert_string_equal(h.object, "chat.completion.async");
    assert_true(strcmp(h.state, "processing") == 0 || strcmp(h.state, "queued") == 0);
    assert_true(h.answered_at - sig_at < rt_ms(1000));
    /* readyz fails while the listener still serves */
    assert_int_equal(get_status("/readyz"), 503);
    assert_int_equal(get_status("/healthz"), 200);
    assert_int_equal(rt_proc_stop(&stack.ingress, 0, 15000), 0);
    assert_true(rt_now_ms() - sig_at >= 2900);
    assert_true(rt_stack_start_ingress(&stack, NULL));
}

static void submit_async(const char *extra, char id[64])
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"d\"}]%s}", extra);
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r, body, NULL));
    assert_int_equal(r.status, 200);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, 64));
    rt_resp_free(&r);
}

static bool all_terminal(char ids[][64], int n, const char *want)
{
    for (int i = 0; i < n; i++) {
        char st[32];
        if (strcmp(rt_request_status(&stack, ids[i], st, sizeof st), want) != 0)
            return false;
    }
    return true;
}

static void test_executor_finishes_in_flight_work(void **state)
{
    (void)state;
    /* one executor only, so in-flight work is its own */
    rt_proc_stop(&stack.executor[1], SIGTERM, 30000);
    enum { N = 5 };
    char ids[N][64];
    for (int i = 0; i < N; i++)
        submit_async(",\"mock\":{\"latency_ms\":1500}", ids[i]);
    bool ok;
    RT_POLL(ok, rt_mock_total(&stack) >= 5, 5000);
    int64_t sig_at = rt_now_ms();
    rt_proc_signal(&stack.executor[0], SIGTERM);
    /* fetching stopped: a request sent now stays queued */
    char later[64];
    submit_async("", later);
    assert_int_equal(rt_proc_stop(&stack.executor[0], 0, 20000), 0);
    assert_true(rt_now_ms() - sig_at < rt_ms(5000));
    assert_true(all_terminal(ids, N, "completed"));
    char st[32];
    assert_string_equal(rt_request_status(&stack, later, st, sizeof st), "queued");
    for (int i = 0; i < N; i++)
        assert_int_equal(rt_mock_calls(&stack, ids[i]), 1);
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
    RT_POLL(ok, all_terminal(&later, 1, "completed"), 10000);
    assert_true(ok);
}

static void test_executor_hands_back_after_drain_timeout(void **state)
{
    (void)state;
    rt_proc_stop(&stack.executor[0], SIGTERM, 30000);
    char *short_drain[] = {"REQRUN_DRAIN_TIMEOUT_S=1", NULL};
    assert_true(rt_stack_start_executor(&stack, 0, short_drain));
    enum { N = 3 };
    char ids[N][64];
    for (int i = 0; i < N; i++)
        submit_async(",\"mock\":{\"latency_ms\":6000}", ids[i]);
    bool ok;
    RT_POLL(ok, rt_mock_total(&stack) >= 3 + 6, 5000); /* earlier tests made 6 calls */
    int64_t sig_at = rt_now_ms();
    assert_int_equal(rt_proc_stop(&stack.executor[0], SIGTERM, 20000), 0);
    assert_true(rt_now_ms() - sig_at < rt_ms(4000)); /* 1 s drain + hand back */
    for (int i = 0; i < N; i++) {
        char st[32];
        assert_string_equal(rt_request_status(&stack, ids[i], st, sizeof st), "retrying");
    }
    /* another executor takes them over at once */
    assert_true(rt_stack_start_executor(&stack, 1, NULL));
    for (int i = 0; i < N; i++) {
        json_t *rec = rt_wait_terminal(&stack, ids[i], 20000);
        assert_string_equal(rt_json_str(rec, "status"), "completed");
        json_t *first = json_array_get(json_object_get(rec, "attempt_log"), 0);
        assert_string_equal(rt_json_str(first, "outcome"), "interrupted");
        assert_string_equal(rt_json_str(first, "error_code"), "executor_draining");
        assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 2);
        json_decref(rec);
    }
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingress_sigterm),
        cmocka_unit_test(test_executor_finishes_in_flight_work),
        cmocka_unit_test(test_executor_hands_back_after_drain_timeout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
