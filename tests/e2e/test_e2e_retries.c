/* Retries, attempts and deadlines (DESIGN §4) with exact upstream call counts from the
 * mock: Retry-After is honoured, max_attempts caps the calls, final answers are not
 * retried and reach the waiting client byte for byte, deadlines expire requests. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    rt_stack_opts o = {.env = {"REQRUN_RETRY_BASE_MS=100", "REQRUN_RETRY_MAX_MS=400", NULL}};
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

/* Submits with wait and returns the response (caller frees) and the id. */
static void submit(rt_resp *r, const char *fault, const char *extra, char id[64])
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"mock\":{\"fault\":\"%s\"},\"wait\":60%s}",
             fault, fault, extra);
    assert_true(rt_post_chat(&stack, r, body, NULL));
    assert_non_null(rt_resp_header(r, "X-ReqRun-Request-Id", id, 64));
}

static int64_t parse_time_ms(const char *rfc3339)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    const char *rest = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_int_equal(sscanf(rest, ".%3dZ", &ms), 1);
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static json_t *attempt(json_t *rec, size_t i)
{
    return json_array_get(json_object_get(rec, "attempt_log"), i);
}

static void test_429_honours_retry_after(void **state)
{
    (void)state;
    rt_resp r;
    char id[64];
    submit(&r, "429:2", "", id);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "X-ReqRun-Attempts"), "3");
    rt_resp_free(&r);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 3);
    assert_int_equal(json_array_size(json_object_get(rec, "attempt_log")), 3);
    for (size_t i = 0; i < 2; i++) {
        json_t *a = attempt(rec, i), *b = attempt(rec, i + 1);
        assert_string_equal(rt_json_str(a, "outcome"), "retryable");
        assert_int_equal(json_integer_value(json_object_get(a, "upstream_status")), 429);
        int64_t gap = parse_time_ms(rt_json_str(b, "started_at")) -
                      parse_time_ms(rt_json_str(a, "finished_at"));
        /* the mock sends Retry-After: 1 */
        assert_true(gap >= 990);
    }
    assert_string_equal(rt_json_str(attempt(rec, 2), "outcome"), "success");
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 3);
}

static void test_500_stops_at_max_attempts(void **state)
{
    (void)state;
    rt_resp r;
    char id[64];
    submit(&r, "500:10", ",\"reqrun\":{\"max_attempts\":3}", id);
    assert_int_equal(r.status, 502);
    assert_string_equal(header(&r, "x-should-retry"), "false");
    json_t *j = rt_resp_json(&r);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(rt_json_str(err, "code"), "max_attempts_exceeded");
    assert_non_null(strstr(rt_json_str(err, "message"), "500"));
    json_decref(j);
    rt_resp_free(&r);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "max_attempts_exceeded");
    assert_int_equal(json_integer_value(json_object_get(rec, "attempts")), 3);
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 3);
}

static void test_max_attempts_is_capped_by_config(void **state)
{
    (void)state;
    rt_resp r;
    char id[64];
    submit(&r, "503:100", ",\"reqrun\":{\"max_attempts\":50}", id);
    assert_int_equal(r.status, 502);
    rt_resp_free(&r);
    assert_int_equal(rt_mock_calls(&stack, id), 5); /* REQRUN_MAX_ATTEMPTS default */
}

/* The mock's own answer for a fault, fetched directly, for byte comparison. */
static void mock_answer(const char *fault, rt_resp *r)
{
    char url[128], body[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", stack.mock_base);
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"mock\":{\"fault\":\"%s\"}}",
             fault, fault);
    assert_true(rt_http(r, "POST", url, body, NULL, 10000));
}

static void test_400_is_final_and_passed_through(void **state)
{
    (void)state;
    rt_resp r, direct;
    char id[64];
    submit(&r, "400", "", id);
    mock_answer("400", &direct);
    assert_int_equal(r.status, 400);
    assert_string_equal(header(&r, "x-should-retry"), "false");
    assert_int_equal(r.len, direct.len);
    assert_memory_equal(r.body, direct.body, r.len);
    rt_resp_free(&r);
    rt_resp_free(&direct);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "upstream_http_400");
    assert_string_equal(rt_json_str(attempt(rec, 0), "outcome"), "final");
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 1);
}

static void test_insufficient_quota_is_final(void **state)
{
    (void)state;
    rt_resp r, direct;
    char id[64];
    submit(&r, "quota", "", id);
    mock_answer("quota", &direct);
    assert_int_equal(r.status, 429);
    assert_string_equal(header(&r, "x-should-retry"), "false");
    assert_int_equal(r.len, direct.len);
    assert_memory_equal(r.body, direct.body, r.len);
    rt_resp_free(&r);
    rt_resp_free(&direct);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "failed");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "insufficient_quota");
    json_decref(rec);
    assert_int_equal(rt_mock_calls(&stack, id), 1);
}

static void test_deadline_expires_a_failing_request(void **state)
{
    (void)state;
    rt_resp r;
    char id[64];
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"deadline\"}],"
             "\"mock\":{\"fault\":\"500:100\",\"latency_ms\":700},\"reqrun\":{\"timeout_s\":2,"
             "\"max_attempts\":10},\"wait\":30}");
    assert_true(rt_post_chat(&stack, &r, body, NULL));
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, 64));
    assert_int_equal(r.status, 504);
    assert_string_equal(header(&r, "x-should-retry"), "false");
    rt_resp_free(&r);
    json_t *rec = rt_wait_terminal(&stack, id, 10000);
    assert_string_equal(rt_json_str(rec, "status"), "expired");
    assert_string_equal(rt_json_str(rec, "last_error_code"), "deadline_exceeded");
    int64_t created = parse_time_ms(rt_json_str(rec, "created_at"));
    size_t n = json_array_size(json_object_get(rec, "attempt_log"));
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) /* no attempt started after the deadline */
        assert_true(parse_time_ms(rt_json_str(attempt(rec, i), "started_at")) < created + 2000);
    assert_int_equal(rt_mock_calls(&stack, id), (long)n);
    long calls = (long)n;
    json_decref(rec);
    /* and none later */
    rt_sleep_ms(1000);
    assert_int_equal(rt_mock_calls(&stack, id), calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_429_honours_retry_after),
        cmocka_unit_test(test_500_stops_at_max_attempts),
        cmocka_unit_test(test_max_attempts_is_capped_by_config),
        cmocka_unit_test(test_400_is_final_and_passed_through),
        cmocka_unit_test(test_insufficient_quota_is_final),
        cmocka_unit_test(test_deadline_expires_a_failing_request),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
