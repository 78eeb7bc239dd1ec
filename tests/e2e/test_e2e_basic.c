/* End to end, the durable request path: wait:true, wait:false + GET, idempotency keys,
 * error answers, and a first retry. The whole stack runs on free ports. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_MAX_BODY_BYTES=65536", NULL}};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rt_stack_stop(&stack) ? 0 : -1;
}

/* Asserts an OpenAI-style error body with this code. */
static void assert_error_body(const rt_resp *r, const char *code)
{
    json_t *j = rt_resp_json(r);
    if (j == NULL)
        fprintf(stderr, "not JSON (status %ld): %.*s\n", r->status, (int)r->len, r->body);
    assert_non_null(j);
    json_t *err = json_object_get(j, "error");
    assert_true(json_is_object(err));
    assert_true(json_is_string(json_object_get(err, "message")));
    assert_true(json_is_string(json_object_get(err, "type")));
    assert_string_equal(rt_json_str(err, "code"), code);
    json_decref(j);
}

static void test_wait_true_returns_completion(void **state)
{
    (void)state;
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                             "\"content\":\"hello wait\"}],\"wait\":true}",
                             NULL));
    assert_int_equal(r.status, 200);
    char id[64], attempts[16];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    assert_int_equal(strlen(id), 29);
    assert_memory_equal(id, "rr_", 3);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Attempts", attempts, sizeof attempts));
    assert_string_equal(attempts, "1");
    json_t *j = rt_resp_json(&r);
    assert_string_equal(rt_json_str(j, "object"), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(rt_json_str(msg, "content"), "mock reply to: hello wait");
    json_decref(j);
    assert_int_equal(rt_mock_calls(&stack, id), 1);
    rt_resp_free(&r);
}

static void test_wait_false_then_get(void **state)
{
    (void)state;
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"async\"}]}",
                             NULL));
    assert_int_equal(r.status, 200);
    json_t *j = rt_resp_json(&r);
    /* exactly {"id","object","status","created"} */
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(rt_json_str(j, "object"), "chat.completion.async");
    const char *st = rt_json_str(j, "status");
    assert_true(strcmp(st, "queued") == 0 || strcmp(st, "processing") == 0);
    assert_true(json_is_integer(json_object_get(j, "created")));
    char id[64], loc[128], hid[64];
    snprintf(id, sizeof id, "%s", rt_json_str(j, "id"));
    assert_non_null(rt_resp_header(&r, "Location", loc, sizeof loc));
    char want[128];
    snprintf(want, sizeof want, "/v1/requests/%s", id);
    assert_string_equal(loc, want);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", hid, sizeof hid));
    assert_string_equal(hid, id);
    json_decref(j);
    rt_resp_free(&r);

    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_non_null(rec);
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 1);
    json_t *result = json_object_get(rec, "result");
    assert_string_equal(rt_json_str(result, "object"), "chat.completion");
    json_decref(rec);

    /* the default view has exactly the fields of DESIGN §3 */
    rec = rt_get_request(&stack, id, NULL);
    const char *fields[] = {"id", "status", "attempts", "created_at", "updated_at",
                            "last_error_code", "result"};
    assert_int_equal(json_object_size(rec), 7);
    for (size_t i = 0; i < 7; i++)
        assert_non_null(json_object_get(rec, fields[i]));
    assert_true(json_is_null(json_object_get(rec, "last_error_code")));
    json_decref(rec);
}

static void test_idempotency_key_header_and_body(void **state)
{
    (void)state;
    const char *hdrs[] = {"Idempotency-Key: e2e-basic-key-1", NULL};
    rt_resp a, b;
    assert_true(rt_post_chat(&stack, &a,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"once\"}],\"wait\":true}",
                             hdrs));
    assert_int_equal(a.status, 200);
    /* same key as a body field, keys in another order: the same request */
    assert_true(rt_post_chat(&stack, &b,
                             "{\"messages\":[{\"content\":\"once\",\"role\":\"user\"}],"
                             "\"idempotency_key\":\"e2e-basic-key-1\",\"model\":\"m\","
                             "\"wait\":true}",
                             NULL));
    assert_int_equal(b.status, 200);
    char ida[64], idb[64], replayed[16];
    assert_non_null(rt_resp_header(&a, "X-ReqRun-Request-Id", ida, sizeof ida));
    assert_non_null(rt_resp_header(&b, "X-ReqRun-Request-Id", idb, sizeof idb));
    assert_string_equal(ida, idb);
    assert_null(rt_resp_header(&a, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_non_null(rt_resp_header(&b, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_string_equal(replayed, "true");
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.body, b.body, a.len);
    assert_int_equal(rt_mock_calls(&stack, ida), 1);
    rt_resp_free(&a);
    rt_resp_free(&b);
}

static void test_errors(void **state)
{
    (void)state;
    rt_resp r;
    char url[160];
    snprintf(url, sizeof url, "%s/v1/requests/rr_aaaaaaaaaaaaaaaaaaaaaaaaaa", stack.base);
    assert_true(rt_http(&r, "GET", url, NULL, NULL, 10000));
    assert_int_equal(r.status, 404);
    assert_error_body(&r, "request_not_found");
    rt_resp_free(&r);

    assert_true(rt_post_chat(&stack, &r, "{\"model\":\"m\",\"messages\":[", NULL));
    assert_int_equal(r.status, 400);
    assert_error_body(&r, "invalid_json");
    rt_resp_free(&r);

    assert_true(rt_post_chat(&stack, &r, "{\"messages\":[{\"role\":\"user\"}]}", NULL));
    assert_int_equal(r.status, 400);
    assert_error_body(&r, "missing_required_field");
    rt_resp_free(&r);

    assert_true(rt_post_chat(&stack, &r, "{\"model\":\"m\",\"messages\":[]}", NULL));
    assert_int_equal(r.status, 400);
    assert_error_body(&r, "invalid_field");
    rt_resp_free(&r);

    char long_key[300] = "Idempotency-Key: ";
    memset(long_key + strlen(long_key), 'k', 256); /* 256 characters: one too many */
    const char *bad_key[] = {long_key, NULL};
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", bad_key));
    assert_int_equal(r.status, 400);
    assert_error_body(&r, "invalid_idempotency_key");
    rt_resp_free(&r);

    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],"
                             "\"idempotency_key\":\"a\\u0001b\"}",
                             NULL));
    assert_int_equal(r.status, 400);
    assert_error_body(&r, "invalid_idempotency_key");
    rt_resp_free(&r);

    /* 70,000 bytes against REQRUN_MAX_BODY_BYTES=65536 */
    size_t n = 70000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"", 50);
    big[n - 4] = '"';
    big[n - 3] = '}';
    big[n - 2] = ']';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_true(rt_post_chat(&stack, &r, big, NULL));
    assert_int_equal(r.status, 413);
    assert_error_body(&r, "body_too_large");
    rt_resp_free(&r);
    free(big);
}

static void test_retryable_fault_completes_with_two_attempts(void **state)
{
    (void)state;
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"retry me\"}],\"mock\":{\"fault\":\"429:1\"},\"wait\":30}",
                             NULL));
    assert_int_equal(r.status, 200);
    char id[64], attempts[16];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Attempts", attempts, sizeof attempts));
    assert_string_equal(attempts, "2");
    rt_resp_free(&r);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 2);
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_true_returns_completion),
        cmocka_unit_test(test_wait_false_then_get),
        cmocka_unit_test(test_idempotency_key_header_and_body),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_retryable_fault_completes_with_two_attempts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
