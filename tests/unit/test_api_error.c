/* Unit tests of api_error.c: the code table (status, type, code string), the OpenAI-style
 * error body and the reverse lookup (DESIGN §3, §6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/api_error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The statuses and codes DESIGN §3 and §6 name, checked one by one. */
static void test_design_codes(void **state)
{
    (void)state;
    static const struct {
        rr_api_code code;
        int status;
        const char *str;
    } v[] = {
        {RR_E_INVALID_JSON, 400, "invalid_json"},
        {RR_E_MISSING_REQUIRED_FIELD, 400, "missing_required_field"},
        {RR_E_STREAM_NOT_SUPPORTED, 400, "stream_not_supported"},
        {RR_E_WEBHOOK_SECRET_NOT_CONFIGURED, 400, "webhook_secret_not_configured"},
        {RR_E_MISSING_API_KEY, 401, "missing_api_key"},
        {RR_E_INVALID_API_KEY, 401, "invalid_api_key"},
        {RR_E_SIGNATURE_REQUIRED, 401, "signature_required"},
        {RR_E_INVALID_SIGNATURE, 401, "invalid_signature"},
        {RR_E_STALE_TIMESTAMP, 401, "stale_timestamp"},
        {RR_E_NONCE_REUSED, 401, "nonce_reused"},
        {RR_E_REQUEST_NOT_FOUND, 404, "request_not_found"},
        {RR_E_REQUEST_CANCELLED, 409, "request_cancelled"},
        {RR_E_BODY_TOO_LARGE, 413, "body_too_large"},
        {RR_E_IDEMPOTENCY_KEY_REUSED, 422, "idempotency_key_reused"},
        {RR_E_TOO_MANY_PENDING_REQUESTS, 429, "too_many_pending_requests"},
        {RR_E_MAX_ATTEMPTS_EXCEEDED, 502, "max_attempts_exceeded"},
        {RR_E_MAX_DELIVERIES_EXCEEDED, 502, "max_deliveries_exceeded"},
        {RR_E_UNAVAILABLE, 503, "unavailable"},
        {RR_E_DEADLINE_EXCEEDED, 504, "deadline_exceeded"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(rr_api_error_status(v[i].code), v[i].status);
        assert_string_equal(rr_api_error_code_str(v[i].code), v[i].str);
    }
    assert_string_equal(rr_api_error_type(RR_E_INVALID_API_KEY), "authentication_error");
    assert_string_equal(rr_api_error_type(RR_E_INVALID_JSON), "invalid_request_error");
    assert_string_equal(rr_api_error_type(RR_E_UNAVAILABLE), "server_error");
}

/* Every code has a status, a type and a unique snake_case code string. */
static void test_every_code_mapped(void **state)
{
    (void)state;
    for (int i = 0; i < RR_E__COUNT; i++) {
        rr_api_code c = (rr_api_code)i;
        int st = rr_api_error_status(c);
        if (st < 400 || st > 599)
            fail_msg("code %d has status %d", i, st);
        const char *type = rr_api_error_type(c);
        const char *str = rr_api_error_code_str(c);
        if (type == NULL || str == NULL)
            fail_msg("code %d has no type or code string", i);
        assert_true(strcmp(type, "invalid_request_error") == 0 ||
                    strcmp(type, "authentication_error") == 0 ||
                    strcmp(type, "permission_error") == 0 ||
                    strcmp(type, "rate_limit_error") == 0 || strcmp(type, "server_error") == 0);
        /* 4xx are the client's problem, 5xx the server's. */
        if (st >= 500)
            assert_string_equal(type, "server_error");
        else
            assert_string_not_equal(type, "server_error");
        if (st == 401)
            assert_string_equal(type, "authentication_error");
        if (st == 403)
            assert_string_equal(type, "permission_error");
        assert_true(strlen(str) > 0);
        for (const char *p = str; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(str, rr_api_error_code_str((rr_api_code)j));
    }
}

static void test_from_str_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < RR_E__COUNT; i++)
        assert_int_equal(rr_api_error_from_str(rr_api_error_code_str((rr_api_code)i)), i);
    assert_int_equal(rr_api_error_from_str("no_such_code"), -1);
    assert_int_equal(rr_api_error_from_str(""), -1);
    assert_int_equal(rr_api_error_from_str("INVALID_JSON"), -1);
    assert_int_equal(rr_api_error_from_str("invalid_json "), -1);
}

/* Parses body and checks it is exactly {"error":{message,type,code[,param]}}. */
static void check_error_body(const char *body, size_t len, rr_api_code code,
                             const char *message, const char *param)
{
    assert_int_equal(strlen(body), len);
    json_error_t jerr;
    json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, body);
    assert_true(json_is_object(root));
    assert_int_equal(json_object_size(root), 1);
    json_t *err = json_object_get(root, "error");
    assert_true(json_is_object(err));
    assert_int_equal(json_object_size(err), param != NULL ? 4 : 3);
    assert_true(json_is_string(json_object_get(err, "message")));
    assert_true(json_is_string(json_object_get(err, "type")));
    assert_true(json_is_string(json_object_get(err, "code")));
    if (message != NULL)
        assert_string_equal(json_string_value(json_object_get(err, "message")), message);
    assert_string_equal(json_string_value(json_object_get(err, "type")),
                        rr_api_error_type(code));
    assert_string_equal(json_string_value(json_object_get(err, "code")),
                        rr_api_error_code_str(code));
    if (param != NULL)
        assert_string_equal(json_string_value(json_object_get(err, "param")), param);
    else
        assert_null(json_object_get(err, "param"));
    json_decref(root);
}

static void test_error_json(void **state)
{
    (void)state;
    rr_api_error e;
    memset(&e, 0xa5, sizeof e);
    rr_api_error_set(&e, RR_E_REQUEST_NOT_FOUND, NULL, "no request %s", "rr_x");
    assert_int_equal(e.code, RR_E_REQUEST_NOT_FOUND);
    assert_string_equal(e.param, "");
    assert_string_equal(e.message, "no request rr_x");
    size_t len = 0;
    char *body = rr_api_error_json(&e, &len);
    assert_non_null(body);
    check_error_body(body, len, RR_E_REQUEST_NOT_FOUND, "no request rr_x", NULL);
    free(body);

    rr_api_error_set(&e, RR_E_INVALID_FIELD, "reqrun.max_attempts", "must be %d or more", 1);
    body = rr_api_error_json(&e, &len);
    assert_non_null(body);
    check_error_body(body, len, RR_E_INVALID_FIELD, "must be 1 or more", "reqrun.max_attempts");
    free(body);

    /* Quotes, backslashes and control characters are escaped, not injected. */
    rr_api_error_set(&e, RR_E_INVALID_JSON, NULL, "bad \"x\\y\"\n\t}{");
    body = rr_api_error_json(&e, &len);
    assert_non_null(body);
    check_error_body(body, len, RR_E_INVALID_JSON, "bad \"x\\y\"\n\t}{", NULL);
    free(body);

    /* Every code yields a valid body. */
    for (int i = 0; i < RR_E__COUNT; i++) {
        rr_api_error_set(&e, (rr_api_code)i, NULL, "m%d", i);
        body = rr_api_error_json(&e, &len);
        assert_non_null(body);
        char msg[16];
        snprintf(msg, sizeof msg, "m%d", i);
        check_error_body(body, len, (rr_api_code)i, msg, NULL);
        free(body);
    }
}

static void test_error_json_invalid_utf8(void **state)
{
    (void)state;
    rr_api_error e;
    /* A client's bytes quoted in a message: invalid UTF-8 must not break the body. */
    rr_api_error_set(&e, RR_E_INVALID_FIELD, "model", "unknown model \xff\xfe\xc3");
    size_t len = 0;
    char *body = rr_api_error_json(&e, &len);
    assert_non_null(body);
    check_error_body(body, len, RR_E_INVALID_FIELD, NULL, "model");
    free(body);

    /* A long message truncated by the fixed buffer in the middle of a UTF-8 sequence. */
    char big[600];
    size_t n = 0;
    while (n + 2 < sizeof big - 1) {
        big[n++] = '\xc3';
        big[n++] = '\xa9'; /* é */
    }
    big[n] = '\0';
    rr_api_error_set(&e, RR_E_INVALID_JSON, NULL, "x%s", big);
    body = rr_api_error_json(&e, &len);
    assert_non_null(body);
    check_error_body(body, len, RR_E_INVALID_JSON, NULL, NULL);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_codes),
        cmocka_unit_test(test_every_code_mapped),
        cmocka_unit_test(test_from_str_round_trip),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_error_json_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
