/* Redelivery (DESIGN §4): a delivery that finds the record processing takes it over and
 * records the old attempt "interrupted"; a stalled executor's late write loses its
 * compare-and-set; the last allowed delivery fails the request with
 * max_deliveries_exceeded and removes the message (Term). */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    /* AckWait 3 s: redeliveries within the test's patience; MaxDeliver = 2*2+5 = 9 */
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=3", "REQRUN_MAX_ATTEMPTS=2", NULL},
                       .executors = 2,
                       .no_wrap = true};
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
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"r\"}]%s}", extra);
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r, body, NULL));
    assert_int_equal(r.status, 200);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, 64));
    rt_resp_free(&r);
}

static bool status_is(const char *id, const char *want)
{
    char st[32];
    return strcmp(rt_request_status(&stack, id, st, sizeof st), want) == 0;
}

static json_t *attempt(json_t *rec, size_t i)
{
    return json_array_get(json_object_get(rec, "attempt_log"), i);
}

/* The executor that owns the current attempt of id, from the record (-1: none). */
static int executor_calling(const char *id)
{
    json_t *rec = rt_get_request(&stack, id, "include=attempts");
    json_t *log = json_object_get(rec, "attempt_log");
    const char *exec = rt_json_str(json_array_get(log, json_array_size(log) - 1), "executor");
    int which = -1;
    for (int i = 0; i < stack.n_executors; i++) {
        char want[48];
        snprintf(want, sizeof want, "test-executor-%d-", i);
        if (strncmp(exec, want, strlen(want)) == 0)
            which = i;
    }
    json_decref(rec);
    return which;
}

static void test_kill_mid_call_records_interrupted_attempt(void **state)
{
    (void)state;
    char id[64];
    submit_async(",\"mock\":{\"latency_ms\":2000}", id);
    bool ok;
    RT_POLL(ok, status_is(id, "processing") && rt_mock_calls(&stack, id) == 1, 5000);
    assert_true(ok);
    int victim = executor_calling(id);
    assert_true(victim >= 0);
    rt_proc_stop(&stack.executor[victim], SIGKILL, 5000);

    json_t *rec = rt_wait_terminal(&stack, id, 20000);
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 2);
    assert_string_equal(rt_json_str(attempt(rec, 0), "outcome"), "interrupted");
    assert_string_equal(rt_json_str(attempt(rec, 0), "error_code"), "executor_interrupted");
    assert_string_equal(rt_json_str(attempt(rec, 1), "outcome"), "success");
    json_decref(rec);
    /* the crash mid-call is the one case of duplicate upstream work */
    assert_int_equal(rt_mock_calls(&stack, id), 2);
    assert_true(rt_stack_start_executor(&stack, victim, NULL));
}

static void test_stalled_executor_loses_its_write(void **state)
{
    (void)state;
    char id[64];
    submit_async(",\"mock\":{\"latency_ms\":1500}", id);
    bool ok;
    RT_POLL(ok, status_is(id, "processing") && rt_mock_calls(&stack, id) == 1, 5000);
    assert_true(ok);
    int stalled = executor_calling(id);
    assert_true(stalled >= 0);
    rt_proc_signal(&stack.executor[stalled], SIGSTOP);
    /* past AckWait the other executor takes over and finishes */
    json_t *rec = rt_wait_terminal(&stack, id, 20000);
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 2);
    assert_string_equal(rt_json_str(attempt(rec, 0), "outcome"), "interrupted");
    char *result = json_dumps(json_object_get(rec, "result"), JSON_COMPACT);
    json_decref(rec);
    rt_proc_signal(&stack.executor[stalled], SIGCONT);
    /* the stalled executor wakes with its own answer: its write must be rejected */
    rt_sleep_ms(rt_ms(1500));
    rec = rt_get_request(&stack, id, "include=attempts");
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 2);
    char *after = json_dumps(json_object_get(rec, "result"), JSON_COMPACT);
    assert_string_equal(after, result);
    free(after);
    free(result);
    json_decref(rec);
    assert_true(rt_proc_alive(&stack.executor[stalled]));
}

/* Fetches the request's message from consumer "executors" and NAKs it, times times. */
static void nak_deliveries(int times)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "REQRUN_REQUESTS";
    so.Consumer = "executors";
    assert_int_equal(js_PullSubscribe(&sub, js, NULL, "executors", NULL, &so, NULL), NATS_OK);
    for (int i = 1; i <= times; i++) {
        natsMsgList list = {0};
        assert_int_equal(natsSubscription_Fetch(&list, sub, 1, rt_ms(5000), NULL), NATS_OK);
        jsMsgMetaData *meta = NULL;
        assert_int_equal(natsMsg_GetMetaData(&meta, list.Msgs[0]), NATS_OK);
        assert_int_equal(meta->NumDelivered, (uint64_t)i);
        jsMsgMetaData_Destroy(meta);
        assert_int_equal(natsMsg_Nak(list.Msgs[0], NULL), NATS_OK);
        natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static uint64_t stream_messages(void)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, "REQRUN_REQUESTS", NULL, NULL), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

static void test_last_delivery_fails_and_removes_the_message(void **state)
{
    (void)state;
    for (int i = 0; i < stack.n_executors; i++)
        rt_proc_stop(&stack.executor[i], SIGTERM, 30000);
    char id[64];
    submit_async("", id);
    nak_deliveries(8); /* MaxDeliver 9: the executor gets the last one */
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
    json_t *rec = rt_wait_terminal(&stack, id, 15000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "max_deliveries_exceeded");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 0);
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 0);
    bool gone;
    RT_POLL(gone, stream_messages() == 0, 5000);
    assert_true(gone);
    assert_true(rt_stack_start_executor(&stack, 1, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_mid_call_records_interrupted_attempt),
        cmocka_unit_test(test_stalled_executor_loses_its_write),
        cmocka_unit_test(test_last_delivery_fails_and_removes_the_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
