/* Cancel (DESIGN §3) and ambiguous attempts (DESIGN §4): queued and retrying requests
 * are cancelled at once, a processing one has its transfer aborted (the mock sees the
 * connection close), terminal states are never overwritten, sent-but-unanswered
 * attempts are retried as "ambiguous" unless REQRUN_RETRY_AMBIGUOUS=false. */
#include "harness.h"

#include "reqrun/ids.h"

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
    rt_stack_opts o = {.env = {"REQRUN_UPSTREAM_TIMEOUT_S=1", "REQRUN_RETRY_BASE_MS=100",
                               "REQRUN_RETRY_MAX_MS=300", NULL}};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void submit_async(const char *extra, char id[64])
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]%s}", extra);
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r, body, NULL));
    assert_int_equal(r.status, 200);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, 64));
    rt_resp_free(&r);
}

/* POST /v1/requests/<id>/cancel; returns the status shown in the answer. */
static void cancel(const char *id, long *status, char st[32])
{
    char url[160];
    snprintf(url, sizeof url, "%s/v1/requests/%s/cancel", stack.base, id);
    rt_resp r;
    assert_true(rt_http(&r, "POST", url, NULL, NULL, 10000));
    *status = r.status;
    json_t *j = rt_resp_json(&r);
    snprintf(st, 32, "%s", rt_json_str(j, "status"));
    json_decref(j);
    rt_resp_free(&r);
}

static bool status_is(const char *id, const char *want)
{
    char st[32];
    return strcmp(rt_request_status(&stack, id, st, sizeof st), want) == 0;
}

typedef struct waiter_arg {
    const char *id_key;
    long status;
    char code[64];
} waiter_arg;

static void *wait_for_hang(void *arg)
{
    waiter_arg *w = arg;
    char url[128], key[80];
    snprintf(url, sizeof url, "%s/v1/chat/completions", stack.base);
    snprintf(key, sizeof key, "Idempotency-Key: %s", w->id_key);
    const char *h[] = {key, NULL};
    rt_resp r;
    rt_http(&r, "POST", url,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hang\"}],"
            "\"mock\":{\"fault\":\"hang\"},\"reqrun\":{\"max_attempts\":1},\"wait\":30}",
            h, 60000);
    w->status = r.status;
    json_t *j = rt_resp_json(&r);
    snprintf(w->code, sizeof w->code, "%s", rt_json_str(json_object_get(j, "error"), "code"));
    json_decref(j);
    rt_resp_free(&r);
    return NULL;
}

static void restart_executor(char *const extra[])
{
    rt_proc_stop(&stack.executor[0], SIGTERM, 30000);
    assert_true(rt_stack_start_executor(&stack, 0, extra));
}

static void test_cancel_processing_aborts_the_call(void **state)
{
    (void)state;
    /* a long upstream timeout for this one: only the cancel may end the hang */
    char *long_timeout[] = {"REQRUN_UPSTREAM_TIMEOUT_S=60", NULL};
    restart_executor(long_timeout);
    char id[RR_ID_BUF];
    rr_id_derive(id, "default", "cancel-hang", strlen("cancel-hang"));

    waiter_arg w = {.id_key = "cancel-hang"};
    pthread_t t;
    pthread_create(&t, NULL, wait_for_hang, &w);
    bool ok;
    RT_POLL(ok, rt_mock_calls(&stack, id) == 1 && status_is(id, "processing"), 10000);
    assert_true(ok);

    int64_t t0 = rt_now_ms();
    long status;
    char st[32];
    cancel(id, &status, st);
    assert_int_equal(status, 200);
    assert_true(strcmp(st, "processing") == 0 || strcmp(st, "cancelled") == 0);
    RT_POLL(ok, status_is(id, "cancelled"), 2000);
    assert_true(ok);
    assert_true(rt_now_ms() - t0 <= rt_ms(2000));
    /* the transfer was aborted: the mock saw its client go away */
    RT_POLL(ok, rt_mock_disconnects(&stack, id) >= 1, 2000);
    assert_true(ok);
    pthread_join(t, NULL);
    assert_int_equal(w.status, 409);
    assert_string_equal(w.code, "request_cancelled");
    assert_int_equal(rt_mock_calls(&stack, id), 1);
    json_t *rec = rt_get_request(&stack, id, "include=attempts");
    json_t *a = json_array_get(json_object_get(rec, "attempt_log"), 0);
    assert_string_equal(rt_json_str(a, "outcome"), "cancelled");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "request_cancelled");
    json_decref(rec);
    restart_executor(NULL);
}

static void test_cancel_queued_at_once(void **state)
{
    (void)state;
    rt_proc_stop(&stack.executor[0], SIGTERM, 30000); /* nothing takes the request */
    char id[64];
    submit_async("", id);
    assert_true(status_is(id, "queued"));
    long status;
    char st[32];
    cancel(id, &status, st);
    assert_int_equal(status, 200);
    assert_string_equal(st, "cancelled");
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
    /* the executor takes the message, sees the terminal record, never calls */
    rt_sleep_ms(rt_ms(1000));
    assert_int_equal(rt_mock_calls(&stack, id), 0);
    assert_true(status_is(id, "cancelled"));
}

static void test_cancel_retrying_at_once(void **state)
{
    (void)state;
    char id[64];
    submit_async(",\"mock\":{\"fault\":\"429:5\"}", id); /* Retry-After: 1 */
    bool ok;
    RT_POLL(ok, status_is(id, "retrying"), 5000);
    assert_true(ok);
    long status;
    char st[32];
    cancel(id, &status, st);
    assert_int_equal(status, 200);
    assert_string_equal(st, "cancelled");
    rt_sleep_ms(rt_ms(1500)); /* past the retry's time */
    assert_int_equal(rt_mock_calls(&stack, id), 1);
    assert_true(status_is(id, "cancelled"));
}

static void test_ambiguous_attempts_are_retried(void **state)
{
    (void)state;
    char id[64];
    submit_async(",\"mock\":{\"fault\":\"hang\"},\"reqrun\":{\"max_attempts\":2}", id);
    json_t *rec = rt_wait_terminal(&stack, id, 15000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "max_attempts_exceeded");
    json_t *log = json_object_get(rec, "attempt_log");
    assert_int_equal(json_array_size(log), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(rt_json_str(json_array_get(log, i), "outcome"), "ambiguous");
        assert_string_equal(rt_json_str(json_array_get(log, i), "error_code"), "upstream_timeout");
    }
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 2);
}

static void test_ambiguous_not_retried_when_disabled(void **state)
{
    (void)state;
    char *no_ambiguous[] = {"REQRUN_RETRY_AMBIGUOUS=false", NULL};
    restart_executor(no_ambiguous);
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"h\"}],\"mock\":{\"fault\":\"hang\"},\"wait\":30}",
                             NULL));
    char id[64];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    assert_int_equal(r.status, 502);
    json_t *j = rt_resp_json(&r);
    assert_string_equal(rt_json_str(json_object_get(j, "error"), "code"), "upstream_timeout");
    json_decref(j);
    rt_resp_free(&r);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "upstream_timeout");
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 1);
    restart_executor(NULL);
}

#define RACERS 20

static void test_cancel_racing_completion_never_overwrites(void **state)
{
    (void)state;
    char ids[RACERS][64];
    char final_seen[RACERS][32];
    for (int i = 0; i < RACERS; i++)
        submit_async(",\"mock\":{\"latency_ms\":300}", ids[i]);
    /* cancel each around the moment its answer arrives */
    rt_sleep_ms(250);
    for (int i = 0; i < RACERS; i++) {
        long status;
        cancel(ids[i], &status, final_seen[i]);
        assert_int_equal(status, 200);
        rt_sleep_ms(5);
    }
    for (int i = 0; i < RACERS; i++) {
        json_t *rec = rt_wait_terminal(&stack, ids[i], 10000);
        const char *st = rt_json_str(rec, "status");
        assert_true(strcmp(st, "completed") == 0 || strcmp(st, "cancelled") == 0);
        /* a terminal state the cancel answer showed is the final one */
        if (strcmp(final_seen[i], "completed") == 0 || strcmp(final_seen[i], "cancelled") == 0)
            assert_string_equal(st, final_seen[i]);
        if (strcmp(st, "completed") == 0)
            assert_false(json_is_null(json_object_get(rec, "result")));
        snprintf(final_seen[i], sizeof final_seen[i], "%s", st);
        json_decref(rec);
        assert_true(rt_mock_calls(&stack, ids[i]) <= 1);
    }
    rt_sleep_ms(500);
    for (int i = 0; i < RACERS; i++)
        assert_true(status_is(ids[i], final_seen[i])); /* never overwritten */
}

static void test_cancel_terminal_is_unchanged(void **state)
{
    (void)state;
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"done\"}],\"wait\":true}",
                             NULL));
    assert_int_equal(r.status, 200);
    char id[64];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    rt_resp_free(&r);
    long status;
    char st[32];
    cancel(id, &status, st);
    assert_int_equal(status, 200);
    assert_string_equal(st, "completed");
    assert_true(status_is(id, "completed"));
    /* unknown ids: 404 */
    cancel("rr_aaaaaaaaaaaaaaaaaaaaaaaaaa", &status, st);
    assert_int_equal(status, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_processing_aborts_the_call),
        cmocka_unit_test(test_cancel_queued_at_once),
        cmocka_unit_test(test_cancel_retrying_at_once),
        cmocka_unit_test(test_ambiguous_attempts_are_retried),
        cmocka_unit_test(test_ambiguous_not_retried_when_disabled),
        cmocka_unit_test(test_cancel_racing_completion_never_overwrites),
        cmocka_unit_test(test_cancel_terminal_is_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
