/* Idempotency (DESIGN §3): keys from header or body, replay, join, 422 on a reused key,
 * 50 concurrent submissions of one key, and the guarantee across a nats-server restart
 * (the KV record is the guard, not the stream's message-id window). */
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
    rt_stack_opts o = {.env = {NULL}};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

static const char *header(const rt_resp *r, const char *name)
{
    static char buf[256];
    return rt_resp_header(r, name, buf, sizeof buf) != NULL ? buf : "";
}

static const char *error_code(const rt_resp *r)
{
    static char buf[64];
    json_t *j = rt_resp_json(r);
    snprintf(buf, sizeof buf, "%s", rt_json_str(json_object_get(j, "error"), "code"));
    json_decref(j);
    return buf;
}

static void test_header_and_body_key_must_agree(void **state)
{
    (void)state;
    const char *h[] = {"Idempotency-Key: from-header", NULL};
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                             "\"idempotency_key\":\"from-body\"}",
                             h));
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "idempotency_key_mismatch");
    assert_string_equal(header(&r, "x-should-retry"), "false");
    rt_resp_free(&r);
    /* both given and equal: fine */
    const char *same[] = {"Idempotency-Key: same-both", NULL};
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                             "\"idempotency_key\":\"same-both\"}",
                             same));
    assert_int_equal(r.status, 200);
    rt_resp_free(&r);
}

static void test_same_key_other_body_is_422(void **state)
{
    (void)state;
    const char *h[] = {"Idempotency-Key: reuse-422", NULL};
    rt_resp a, b;
    assert_true(rt_post_chat(&stack, &a,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"first\"}],\"wait\":true}",
                             h));
    assert_int_equal(a.status, 200);
    assert_true(rt_post_chat(&stack, &b,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"second\"}],\"wait\":true}",
                             h));
    assert_int_equal(b.status, 422);
    assert_string_equal(error_code(&b), "idempotency_key_reused");
    assert_string_equal(header(&b, "x-should-retry"), "false");
    /* the 422 names the id the key belongs to */
    assert_string_equal(header(&b, "X-ReqRun-Request-Id"), header(&a, "X-ReqRun-Request-Id"));
    /* 1 and 1.0 are different bodies */
    const char *h2[] = {"Idempotency-Key: reuse-422-number", NULL};
    rt_resp c, d;
    assert_true(rt_post_chat(&stack, &c,
                             "{\"model\":\"m\",\"temperature\":1,\"messages\":[{\"role\":\"user\"}]}",
                             h2));
    assert_int_equal(c.status, 200);
    assert_true(rt_post_chat(&stack, &d,
                             "{\"model\":\"m\",\"temperature\":1.0,\"messages\":[{\"role\":"
                             "\"user\"}]}",
                             h2));
    assert_int_equal(d.status, 422);
    rt_resp_free(&a);
    rt_resp_free(&b);
    rt_resp_free(&c);
    rt_resp_free(&d);
}

static void test_in_flight_duplicates_join(void **state)
{
    (void)state;
    const char *h[] = {"Idempotency-Key: join-in-flight", NULL};
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}],"
                       "\"mock\":{\"latency_ms\":1500}}";
    rt_resp a, b, c;
    assert_true(rt_post_chat(&stack, &a, body, h));
    assert_int_equal(a.status, 200);
    json_t *ja = rt_resp_json(&a);
    assert_string_equal(rt_json_str(ja, "object"), "chat.completion.async");
    /* in flight, wait:false: the async object of the same id, not a replay */
    assert_true(rt_post_chat(&stack, &b, body, h));
    assert_int_equal(b.status, 200);
    json_t *jb = rt_resp_json(&b);
    assert_string_equal(rt_json_str(jb, "object"), "chat.completion.async");
    assert_string_equal(rt_json_str(jb, "id"), rt_json_str(ja, "id"));
    assert_string_equal(header(&b, "Idempotent-Replayed"), "");
    /* in flight, wait:true: joins and gets the completion */
    const char *body_wait = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}],"
                            "\"mock\":{\"latency_ms\":1500},\"wait\":true}";
    assert_true(rt_post_chat(&stack, &c, body_wait, h));
    assert_int_equal(c.status, 200);
    json_t *jc = rt_resp_json(&c);
    assert_string_equal(rt_json_str(jc, "object"), "chat.completion");
    assert_string_equal(header(&c, "Idempotent-Replayed"), "true");
    assert_int_equal(rt_mock_calls(&stack, rt_json_str(ja, "id")), 1);
    json_decref(ja);
    json_decref(jb);
    json_decref(jc);
    rt_resp_free(&a);
    rt_resp_free(&b);
    rt_resp_free(&c);
}

#define CONCURRENT 50

typedef struct racer {
    pthread_barrier_t *barrier;
    const char *url;
    long status;
    char id[64];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    const char *h[] = {"Idempotency-Key: fifty-at-once", NULL};
    pthread_barrier_wait(r->barrier);
    rt_resp resp;
    rt_http(&resp, "POST", r->url,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"race\"}],"
            "\"mock\":{\"latency_ms\":300},\"wait\":true}",
            h, 60000);
    r->status = resp.status;
    rt_resp_header(&resp, "X-ReqRun-Request-Id", r->id, sizeof r->id);
    rt_resp_free(&resp);
    return NULL;
}

static void test_fifty_concurrent_submissions_one_call(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, CONCURRENT);
    char url[128];
    snprintf(url, sizeof url, "%s/v1/chat/completions", stack.base);
    racer r[CONCURRENT];
    pthread_t t[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        r[i] = (racer){.barrier = &barrier, .url = url};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < CONCURRENT; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < CONCURRENT; i++) {
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r[i].id, r[0].id);
    }
    assert_int_equal(rt_mock_calls(&stack, r[0].id), 1);
}

static void test_guarantee_survives_nats_restart(void **state)
{
    (void)state;
    enum { N = 5 };
    char bodies[N][160], keys[N][64], first[N][1024];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "Idempotency-Key: restart-%d", i);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"r%d\"}],"
                 "\"wait\":true}",
                 i);
        const char *h[] = {keys[i], NULL};
        rt_resp r;
        assert_true(rt_post_chat(&stack, &r, bodies[i], h));
        assert_int_equal(r.status, 200);
        snprintf(first[i], sizeof first[i], "%s", r.body);
        rt_resp_free(&r);
    }
    long calls_before = rt_mock_total(&stack);

    rt_nats_stop(&stack.nats, SIGTERM);
    assert_true(rt_nats_restart(&stack.nats));
    char ready[128];
    snprintf(ready, sizeof ready, "%s/readyz", stack.base);
    assert_true(rt_wait_http_ok(ready, 30000));

    for (int i = 0; i < N; i++) {
        const char *h[] = {keys[i], NULL};
        rt_resp r;
        assert_true(rt_post_chat(&stack, &r, bodies[i], h));
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Idempotent-Replayed"), "true");
        assert_string_equal(r.body, first[i]);
        rt_resp_free(&r);
    }
    assert_int_equal(rt_mock_total(&stack), calls_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_body_key_must_agree),
        cmocka_unit_test(test_same_key_other_body_is_422),
        cmocka_unit_test(test_in_flight_duplicates_join),
        cmocka_unit_test(test_fifty_concurrent_submissions_one_call),
        cmocka_unit_test(test_guarantee_survives_nats_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
