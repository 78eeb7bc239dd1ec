/* Unit tests of chatreq.c: the canonical body and its hash, the body passed upstream,
 * every validation error (code and param), ReqRun's own fields and the move into a
 * stream Request (DESIGN §3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/chatreq.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rr_chatreq_limits LIM = {
    .max_messages = 4,
    .max_attempts = 5,
    .deadline_s = 3600,
    .wait_default_s = 20,
    .wait_max_s = 120,
};

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]"

static rr_status parse(rr_chatreq *r, const char *body, rr_api_error *err)
{
    memset(err, 0, sizeof *err);
    return rr_chatreq_parse(r, body, strlen(body), &LIM, err);
}

/* Parses body, which must be accepted; the caller frees r. */
static void parse_ok(rr_chatreq *r, const char *body)
{
    rr_api_error err;
    rr_status s = parse(r, body, &err);
    if (s != RR_OK)
        fail_msg("refused (%s, param %s: %s): %s", rr_api_error_code_str(err.code), err.param,
                 err.message, body);
}

/* Parses body, which must be refused with code and param ("" for none). */
static void parse_bad(const char *body, rr_api_code code, const char *param)
{
    rr_chatreq r;
    rr_api_error err;
    rr_status s = parse(&r, body, &err);
    if (s != RR_INVALID)
        fail_msg("accepted (status %d): %s", (int)s, body);
    if (err.code != code || strcmp(err.param, param) != 0)
        fail_msg("got %s/\"%s\", want %s/\"%s\" (%s): %s", rr_api_error_code_str(err.code),
                 err.param, rr_api_error_code_str(code), param, err.message, body);
    assert_true(strlen(err.message) > 0);
    /* A refused parse leaves nothing behind. */
    assert_null(r.canonical);
    assert_null(r.upstream_body);
    assert_null(r.metadata);
    assert_null(r.webhook_url);
    assert_null(r.idempotency_key);
}

static void hash_of(const char *body, uint8_t out[RR_SHA256_LEN])
{
    rr_chatreq r;
    parse_ok(&r, body);
    memcpy(out, r.body_hash, RR_SHA256_LEN);
    rr_chatreq_free(&r);
}

static bool same_hash(const char *a, const char *b)
{
    uint8_t ha[RR_SHA256_LEN], hb[RR_SHA256_LEN];
    hash_of(a, ha);
    hash_of(b, hb);
    return memcmp(ha, hb, RR_SHA256_LEN) == 0;
}

static void test_canonical_key_order(void **state)
{
    (void)state;
    /* top level */
    assert_true(same_hash("{\"model\":\"m\"," MSGS ",\"temperature\":0.5}",
                          "{\"temperature\":0.5," MSGS ",\"model\":\"m\"}"));
    /* nested, inside a message and inside an object value */
    assert_true(same_hash(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\","
        "\"strict\":true}}}",
        "{\"response_format\":{\"json_schema\":{\"strict\":true,\"name\":\"a\"},"
        "\"type\":\"json_schema\"},\"messages\":[{\"content\":\"x\",\"role\":\"user\"}],"
        "\"model\":\"m\"}"));
    /* whitespace does not matter */
    assert_true(same_hash("{\"model\":\"m\"," MSGS "}",
                          "{ \"model\" : \"m\" ,\n \"messages\" : [ { \"role\" : \"user\" , "
                          "\"content\" : \"Hello\" } ] }"));

    /* The canonical text is sorted and compact. */
    rr_chatreq r;
    parse_ok(&r, "{\"z\":1, \"model\":\"m\", " MSGS ", \"a\":{\"y\":2,\"b\":3}}");
    assert_string_equal(r.canonical,
                        "{\"a\":{\"b\":3,\"y\":2},\"messages\":[{\"content\":\"Hello\","
                        "\"role\":\"user\"}],\"model\":\"m\",\"z\":1}");
    assert_int_equal(r.canonical_len, strlen(r.canonical));
    /* body_hash is SHA-256 of exactly the canonical text */
    uint8_t h[RR_SHA256_LEN];
    rr_sha256(r.canonical, r.canonical_len, h);
    assert_memory_equal(h, r.body_hash, RR_SHA256_LEN);
    rr_chatreq_free(&r);
}

static void test_canonical_values_differ(void **state)
{
    (void)state;
    assert_false(same_hash("{\"model\":\"m\"," MSGS "}", "{\"model\":\"n\"," MSGS "}"));
    assert_false(same_hash("{\"model\":\"m\"," MSGS ",\"temperature\":1}",
                           "{\"model\":\"m\"," MSGS ",\"temperature\":1.0}"));
    assert_false(same_hash("{\"model\":\"m\"," MSGS ",\"temperature\":0.5}",
                           "{\"model\":\"m\"," MSGS ",\"temperature\":0.25}"));
    assert_false(same_hash("{\"model\":\"m\"," MSGS "}",
                           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"Hello!\"}]}"));
    /* array order matters */
    assert_false(same_hash(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},{\"role\":\"assistant\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\"},{\"role\":\"user\"}]}"));
    /* an extra field matters */
    assert_false(same_hash("{\"model\":\"m\"," MSGS "}",
                           "{\"model\":\"m\"," MSGS ",\"user\":\"u\"}"));
    /* "1" (string) and 1 (number) differ */
    assert_false(same_hash("{\"model\":\"m\"," MSGS ",\"n\":1}",
                           "{\"model\":\"m\"," MSGS ",\"n\":\"1\"}"));
}

static void test_wait_and_key_excluded_reqrun_included(void **state)
{
    (void)state;
    const char *base = "{\"model\":\"m\"," MSGS "}";
    assert_true(same_hash(base, "{\"model\":\"m\"," MSGS ",\"wait\":true}"));
    assert_true(same_hash(base, "{\"model\":\"m\"," MSGS ",\"wait\":7}"));
    assert_true(same_hash(base, "{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"k1\"}"));
    assert_true(same_hash("{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"k1\",\"wait\":1}",
                          "{\"wait\":false,\"idempotency_key\":\"k2\",\"model\":\"m\"," MSGS
                          "}"));
    assert_false(same_hash(base, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":2}}"));
    assert_false(same_hash("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":2}}",
                           "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":3}}"));
    assert_true(same_hash(
        "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":2,\"timeout_s\":60}}",
        "{\"reqrun\":{\"timeout_s\":60,\"max_attempts\":2},\"model\":\"m\"," MSGS "}"));

    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"wait\":true,\"idempotency_key\":\"abc\"}");
    assert_null(strstr(r.canonical, "wait"));
    assert_null(strstr(r.canonical, "idempotency_key"));
    assert_string_equal(r.idempotency_key, "abc");
    rr_chatreq_free(&r);
}

static void test_upstream_body(void **state)
{
    (void)state;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"gpt-5-nano\"," MSGS ",\"wait\":true,\"idempotency_key\":\"k\","
                 "\"temperature\":0.5,\"max_tokens\":12,\"stream\":false,\"tools\":[],"
                 "\"mock\":{\"fault\":\"500:2\",\"latency_ms\":5},"
                 "\"reqrun\":{\"max_attempts\":3,\"metadata\":{\"a\":\"b\"}}}");
    json_error_t jerr;
    json_t *up = json_loadb(r.upstream_body, r.upstream_len, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(up);
    assert_null(json_object_get(up, "wait"));
    assert_null(json_object_get(up, "idempotency_key"));
    assert_null(json_object_get(up, "reqrun"));
    assert_int_equal(json_object_size(up), 7);
    assert_string_equal(json_string_value(json_object_get(up, "model")), "gpt-5-nano");
    assert_true(json_is_array(json_object_get(up, "messages")));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(up, "messages"), 0),
                                          "content")),
        "Hello");
    assert_true(json_real_value(json_object_get(up, "temperature")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(up, "max_tokens")), 12);
    assert_true(json_is_false(json_object_get(up, "stream")));
    assert_true(json_is_array(json_object_get(up, "tools")));
    json_t *mock = json_object_get(up, "mock");
    assert_string_equal(json_string_value(json_object_get(mock, "fault")), "500:2");
    assert_int_equal(json_integer_value(json_object_get(mock, "latency_ms")), 5);
    json_decref(up);
    /* the canonical body keeps reqrun */
    json_t *canon = json_loadb(r.canonical, r.canonical_len, 0, &jerr);
    assert_non_null(canon);
    assert_non_null(json_object_get(canon, "reqrun"));
    assert_int_equal(json_object_size(canon), 8);
    json_decref(canon);
    rr_chatreq_free(&r);

    /* Without reqrun, the upstream body is the canonical body. */
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"wait\":false}");
    assert_int_equal(r.upstream_len, r.canonical_len);
    assert_memory_equal(r.upstream_body, r.canonical, r.canonical_len);
    rr_chatreq_free(&r);
    rr_chatreq_free(NULL);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    parse_bad("", RR_E_INVALID_JSON, "");
    parse_bad("{", RR_E_INVALID_JSON, "");
    parse_bad("{\"model\":\"m\",\"messages\":[", RR_E_INVALID_JSON, "");
    parse_bad("{\"model\":\"m\"," MSGS "} trailing", RR_E_INVALID_JSON, "");
    parse_bad("{'model':'m'}", RR_E_INVALID_JSON, "");
    /* duplicate keys, at the top and nested */
    parse_bad("{\"model\":\"m\",\"model\":\"n\"," MSGS "}", RR_E_INVALID_JSON, "");
    parse_bad("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"role\":\"system\"}]}",
              RR_E_INVALID_JSON, "");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":true,\"wait\":false}", RR_E_INVALID_JSON, "");
    /* not an object */
    parse_bad("[]", RR_E_INVALID_JSON, "");
    parse_bad("[{\"model\":\"m\"}]", RR_E_INVALID_JSON, "");
    parse_bad("\"model\"", RR_E_INVALID_JSON, "");
    parse_bad("42", RR_E_INVALID_JSON, "");
    parse_bad("null", RR_E_INVALID_JSON, "");
    /* a NUL byte inside the declared length */
    rr_chatreq r;
    rr_api_error err;
    const char nul[] = "{\"model\":\"m\"," MSGS "}\0{}";
    assert_int_equal(rr_chatreq_parse(&r, nul, sizeof nul - 1, &LIM, &err), RR_INVALID);
    assert_int_equal(err.code, RR_E_INVALID_JSON);
    /* the length is honoured: the text after len is not read */
    const char longer[] = "{\"model\":\"m\"," MSGS "}garbage";
    assert_int_equal(rr_chatreq_parse(&r, longer, sizeof longer - 1 - 7, &LIM, &err), RR_OK);
    rr_chatreq_free(&r);
}

static void test_model_and_messages(void **state)
{
    (void)state;
    parse_bad("{" MSGS "}", RR_E_MISSING_REQUIRED_FIELD, "model");
    parse_bad("{\"model\":\"\"," MSGS "}", RR_E_INVALID_FIELD, "model");
    parse_bad("{\"model\":5," MSGS "}", RR_E_INVALID_FIELD, "model");
    parse_bad("{\"model\":null," MSGS "}", RR_E_INVALID_FIELD, "model");
    parse_bad("{\"model\":\"m\"}", RR_E_MISSING_REQUIRED_FIELD, "messages");
    parse_bad("{\"model\":\"m\",\"messages\":[]}", RR_E_INVALID_FIELD, "messages");
    parse_bad("{\"model\":\"m\",\"messages\":{}}", RR_E_INVALID_FIELD, "messages");
    parse_bad("{\"model\":\"m\",\"messages\":\"hi\"}", RR_E_INVALID_FIELD, "messages");
    parse_bad("{\"model\":\"m\",\"messages\":[{\"content\":\"no role\"}]}", RR_E_INVALID_FIELD,
              "messages");
    parse_bad("{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},{\"role\":7}]}",
              RR_E_INVALID_FIELD, "messages");
    parse_bad("{\"model\":\"m\",\"messages\":[\"user: hi\"]}", RR_E_INVALID_FIELD, "messages");
    /* four messages are allowed (the limit), five are too many */
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\",\"messages\":[{\"role\":\"a\"},{\"role\":\"b\"},"
                 "{\"role\":\"c\"},{\"role\":\"d\"}]}");
    rr_chatreq_free(&r);
    parse_bad("{\"model\":\"m\",\"messages\":[{\"role\":\"a\"},{\"role\":\"b\"},{\"role\":\"c\"},"
              "{\"role\":\"d\"},{\"role\":\"e\"}]}",
              RR_E_TOO_MANY_MESSAGES, "messages");
}

static void test_stream(void **state)
{
    (void)state;
    parse_bad("{\"model\":\"m\"," MSGS ",\"stream\":true}", RR_E_STREAM_NOT_SUPPORTED, "stream");
    assert_int_equal(rr_api_error_status(RR_E_STREAM_NOT_SUPPORTED), 400);
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"stream\":false}");
    assert_non_null(strstr(r.upstream_body, "\"stream\":false"));
    rr_chatreq_free(&r);
}

static int64_t wait_of(const char *wait_json)
{
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"wait\":%s}", wait_json);
    rr_chatreq r;
    parse_ok(&r, body);
    int64_t w = r.wait_ms;
    rr_chatreq_free(&r);
    return w;
}

static void test_wait_forms(void **state)
{
    (void)state;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS "}");
    assert_int_equal(r.wait_ms, 0); /* default: answer at once */
    rr_chatreq_free(&r);
    assert_int_equal(wait_of("false"), 0);
    assert_int_equal(wait_of("true"), 20000); /* wait_default_s */
    assert_int_equal(wait_of("0"), 0);
    assert_int_equal(wait_of("5"), 5000);
    assert_int_equal(wait_of("2.5"), 2500);
    assert_int_equal(wait_of("120"), 120000);
    assert_int_equal(wait_of("121"), 120000); /* capped by wait_max_s */
    assert_int_equal(wait_of("1e9"), 120000);
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":-1}", RR_E_INVALID_FIELD, "wait");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":-0.5}", RR_E_INVALID_FIELD, "wait");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":\"5\"}", RR_E_INVALID_FIELD, "wait");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":\"true\"}", RR_E_INVALID_FIELD, "wait");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":[5]}", RR_E_INVALID_FIELD, "wait");
    parse_bad("{\"model\":\"m\"," MSGS ",\"wait\":{}}", RR_E_INVALID_FIELD, "wait");
}

static void test_idempotency_key_field(void **state)
{
    (void)state;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS "}");
    assert_null(r.idempotency_key);
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"order 42\"}");
    assert_string_equal(r.idempotency_key, "order 42");
    rr_chatreq_free(&r);
    parse_bad("{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"\"}", RR_E_INVALID_IDEMPOTENCY_KEY,
              "idempotency_key");
    parse_bad("{\"model\":\"m\"," MSGS ",\"idempotency_key\":42}", RR_E_INVALID_IDEMPOTENCY_KEY,
              "idempotency_key");
    parse_bad("{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"a\\nb\"}",
              RR_E_INVALID_IDEMPOTENCY_KEY, "idempotency_key");
    parse_bad("{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"caf\\u00e9\"}",
              RR_E_INVALID_IDEMPOTENCY_KEY, "idempotency_key");
    char body[600];
    char key[257];
    memset(key, 'k', 256);
    key[256] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"%s\"}", key);
    parse_bad(body, RR_E_INVALID_IDEMPOTENCY_KEY, "idempotency_key");
    key[255] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"idempotency_key\":\"%s\"}", key);
    parse_ok(&r, body);
    assert_int_equal(strlen(r.idempotency_key), 255);
    rr_chatreq_free(&r);
}

static void test_reqrun_max_attempts_and_timeout(void **state)
{
    (void)state;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS "}");
    assert_int_equal(r.max_attempts, 5); /* defaults */
    assert_int_equal(r.timeout_s, 3600);
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{}}");
    assert_int_equal(r.max_attempts, 5);
    assert_int_equal(r.timeout_s, 3600);
    rr_chatreq_free(&r);

    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":2,\"timeout_s\":60}}");
    assert_int_equal(r.max_attempts, 2);
    assert_int_equal(r.timeout_s, 60);
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":1}}");
    assert_int_equal(r.max_attempts, 1);
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS
                 ",\"reqrun\":{\"max_attempts\":1000,\"timeout_s\":99999}}");
    assert_int_equal(r.max_attempts, 5);  /* capped by REQRUN_MAX_ATTEMPTS */
    assert_int_equal(r.timeout_s, 3600); /* capped by REQRUN_DEADLINE_S */
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"timeout_s\":1.5}}");
    assert_int_equal(r.timeout_s, 2); /* a fraction rounds up, never to 0 */
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"timeout_s\":0.001}}");
    assert_int_equal(r.timeout_s, 1);
    rr_chatreq_free(&r);

    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":0}}", RR_E_INVALID_FIELD,
              "reqrun.max_attempts");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":-3}}", RR_E_INVALID_FIELD,
              "reqrun.max_attempts");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":2.5}}", RR_E_INVALID_FIELD,
              "reqrun.max_attempts");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempts\":\"3\"}}",
              RR_E_INVALID_FIELD, "reqrun.max_attempts");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"timeout_s\":0}}", RR_E_INVALID_FIELD,
              "reqrun.timeout_s");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"timeout_s\":-5}}", RR_E_INVALID_FIELD,
              "reqrun.timeout_s");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"timeout_s\":\"60\"}}", RR_E_INVALID_FIELD,
              "reqrun.timeout_s");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":[]}", RR_E_INVALID_FIELD, "reqrun");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":\"x\"}", RR_E_INVALID_FIELD, "reqrun");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"max_attempt\":3}}", RR_E_INVALID_FIELD,
              "reqrun");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"priority\":1}}", RR_E_INVALID_FIELD,
              "reqrun");
}

static void test_reqrun_metadata(void **state)
{
    (void)state;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS
                 ",\"reqrun\":{\"metadata\":{\"user\":\"u-1\",\"team\":\"\"}}}");
    assert_int_equal(r.n_metadata, 2);
    bool user = false, team = false;
    for (size_t i = 0; i < r.n_metadata; i++) {
        if (strcmp(r.metadata[i].key, "user") == 0 && strcmp(r.metadata[i].value, "u-1") == 0)
            user = true;
        if (strcmp(r.metadata[i].key, "team") == 0 && strcmp(r.metadata[i].value, "") == 0)
            team = true;
    }
    assert_true(user && team);
    rr_chatreq_free(&r);
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{}}}");
    assert_int_equal(r.n_metadata, 0);
    rr_chatreq_free(&r);

    /* 16 pairs allowed, 17 refused */
    char body[4096];
    int n = snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{");
    for (int i = 0; i < 16; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(body + n, sizeof body - (size_t)n, "}}}");
    parse_ok(&r, body);
    assert_int_equal(r.n_metadata, 16);
    rr_chatreq_free(&r);
    snprintf(body + n, sizeof body - (size_t)n, ",\"k16\":\"v\"}}}");
    parse_bad(body, RR_E_INVALID_FIELD, "reqrun.metadata");

    /* key of 64 bytes allowed, 65 refused; value of 512 allowed, 513 refused */
    char k[66], v[514];
    memset(k, 'k', 65);
    k[65] = '\0';
    memset(v, 'v', 513);
    v[513] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"%s\":\"x\"}}}",
             k);
    parse_bad(body, RR_E_INVALID_FIELD, "reqrun.metadata");
    k[64] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"%s\":\"x\"}}}",
             k);
    parse_ok(&r, body);
    rr_chatreq_free(&r);
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"k\":\"%s\"}}}",
             v);
    parse_bad(body, RR_E_INVALID_FIELD, "reqrun.metadata");
    v[512] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"k\":\"%s\"}}}",
             v);
    parse_ok(&r, body);
    assert_int_equal(strlen(r.metadata[0].value), 512);
    rr_chatreq_free(&r);

    /* values must be strings; metadata must be an object */
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"n\":1}}}", RR_E_INVALID_FIELD,
              "reqrun.metadata");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"a\":\"b\",\"n\":null}}}",
              RR_E_INVALID_FIELD, "reqrun.metadata");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":{\"o\":{}}}}", RR_E_INVALID_FIELD,
              "reqrun.metadata");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":[\"a\"]}}", RR_E_INVALID_FIELD,
              "reqrun.metadata");
    parse_bad("{\"model\":\"m\"," MSGS ",\"reqrun\":{\"metadata\":\"a=b\"}}", RR_E_INVALID_FIELD,
              "reqrun.metadata");
}

static void test_reqrun_webhook_url(void **state)
{
    (void)state;
    static const char *const good[] = {
        "https://hooks.example.com/rr",
        "http://localhost:9000/hook?x=1",
        "https://10.0.0.1",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"webhook_url\":\"%s\"}}", good[i]);
        rr_chatreq r;
        parse_ok(&r, body);
        assert_string_equal(r.webhook_url, good[i]);
        rr_chatreq_free(&r);
    }
    static const char *const bad[] = {
        "\"ftp://example.com/x\"",   "\"example.com/hook\"",       "\"https://\"",
        "\"https:///path\"",         "\"https://exa mple.com/\"",  "\"https://ex\\u00e9.com/\"",
        "\"https://a.com/\\n\"",     "\"\"",                       "42",
        "null",                      "{\"url\":\"https://a.com\"}", "\"javascript:alert(1)\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"webhook_url\":%s}}",
                 bad[i]);
        parse_bad(body, RR_E_INVALID_WEBHOOK_URL, "reqrun.webhook_url");
    }
    /* 2048 characters allowed, 2049 refused */
    char *body = malloc(4096);
    assert_non_null(body);
    char url[2050];
    memcpy(url, "https://a.com/", 14);
    memset(url + 14, 'p', sizeof url - 14);
    url[2049] = '\0';
    snprintf(body, 4096, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"webhook_url\":\"%s\"}}", url);
    parse_bad(body, RR_E_INVALID_WEBHOOK_URL, "reqrun.webhook_url");
    url[2048] = '\0';
    snprintf(body, 4096, "{\"model\":\"m\"," MSGS ",\"reqrun\":{\"webhook_url\":\"%s\"}}", url);
    rr_chatreq r;
    parse_ok(&r, body);
    assert_int_equal(strlen(r.webhook_url), 2048);
    rr_chatreq_free(&r);
    free(body);
}

/* A body with the messages nested `depth` levels deep in total (the top object is 1). */
static char *nested_body(int depth)
{
    size_t cap = (size_t)depth * 8 + 256;
    char *b = malloc(cap);
    assert_non_null(b);
    int n = snprintf(b, cap, "{\"model\":\"m\"," MSGS ",\"x\":");
    for (int i = 0; i < depth - 1; i++)
        b[n++] = '[';
    for (int i = 0; i < depth - 1; i++)
        b[n++] = ']';
    b[n++] = '}';
    b[n] = '\0';
    return b;
}

static void test_depth(void **state)
{
    (void)state;
    char *ok = nested_body(RR_JSON_MAX_DEPTH);
    rr_chatreq r;
    parse_ok(&r, ok);
    rr_chatreq_free(&r);
    free(ok);
    char *deep = nested_body(RR_JSON_MAX_DEPTH + 1);
    parse_bad(deep, RR_E_INVALID_JSON, "");
    free(deep);
    /* Far deeper than jansson's own limit: refused before parsing, without recursion. */
    char *very = nested_body(100000);
    parse_bad(very, RR_E_INVALID_JSON, "");
    free(very);

    assert_true(rr_json_depth_ok("{}", 2, 1));
    assert_false(rr_json_depth_ok("{[]}", 4, 1));
    assert_true(rr_json_depth_ok("{[]}", 4, 2));
    assert_true(rr_json_depth_ok("[][][][]", 8, 1)); /* siblings do not add up */
    /* brackets inside strings do not count, escaped quotes do not end the string */
    const char *s1 = "{\"a\":\"[[[[{{{{\"}";
    assert_true(rr_json_depth_ok(s1, strlen(s1), 1));
    const char *s2 = "{\"a\":\"\\\"[[[[\"}";
    assert_true(rr_json_depth_ok(s2, strlen(s2), 1));
    const char *s3 = "{\"a\":\"\\\\\",\"b\":[[1]]}"; /* an escaped backslash ends the escape */
    assert_false(rr_json_depth_ok(s3, strlen(s3), 2));
    assert_true(rr_json_depth_ok(s3, strlen(s3), 3));
    /* only len bytes are read */
    assert_true(rr_json_depth_ok("[[[[", 1, 1));
}

static void test_to_request(void **state)
{
    (void)state;
    const char *id = "rr_abcdefghijklmnopqrstuvwxyz";
    const int64_t now = 1795500000000LL;
    rr_chatreq r;
    parse_ok(&r, "{\"model\":\"m\"," MSGS ",\"wait\":true,\"reqrun\":{\"timeout_s\":90,"
                 "\"max_attempts\":3,\"metadata\":{\"a\":\"b\"},\"webhook_url\":"
                 "\"https://h.example.com/x\"}}");
    uint8_t hash[RR_SHA256_LEN];
    memcpy(hash, r.body_hash, sizeof hash);
    char *upstream = strdup(r.upstream_body);
    assert_non_null(upstream);

    rr_request q;
    assert_int_equal(rr_chatreq_to_request(&r, &q, id, "acme", true, now), RR_OK);
    assert_string_equal(q.id, id);
    assert_string_equal(q.tenant, "acme");
    assert_memory_equal(q.body_hash, hash, RR_SHA256_LEN);
    assert_int_equal(q.body_len, strlen(upstream));
    assert_memory_equal(q.body, upstream, q.body_len);
    assert_int_equal(q.max_attempts, 3);
    assert_int_equal(q.created_ms, now);
    assert_int_equal(q.deadline_ms, now + 90 * 1000);
    assert_int_equal(q.n_metadata, 1);
    assert_string_equal(q.metadata[0].key, "a");
    assert_string_equal(q.metadata[0].value, "b");
    assert_string_equal(q.webhook_url, "https://h.example.com/x");
    assert_true(q.has_idempotency_key);
    /* Moved, not copied: the chatreq no longer owns them; it keeps canonical and hash. */
    assert_null(r.metadata);
    assert_int_equal(r.n_metadata, 0);
    assert_null(r.webhook_url);
    assert_non_null(r.canonical);
    assert_memory_equal(r.body_hash, hash, RR_SHA256_LEN);
    rr_chatreq_free(&r);
    rr_request_free(&q);
    free(upstream);

    /* Without reqrun the upstream body aliases the canonical one: the request gets a copy
     * and both can be freed. Default deadline: REQRUN_DEADLINE_S. */
    parse_ok(&r, "{\"model\":\"m\"," MSGS "}");
    assert_int_equal(rr_chatreq_to_request(&r, &q, id, "default", false, now), RR_OK);
    assert_int_equal(q.body_len, r.canonical_len);
    assert_memory_equal(q.body, r.canonical, q.body_len);
    assert_ptr_not_equal(q.body, r.canonical);
    assert_int_equal(q.deadline_ms, now + 3600 * 1000);
    assert_int_equal(q.max_attempts, 5);
    assert_false(q.has_idempotency_key);
    assert_null(q.webhook_url);
    rr_chatreq_free(&r);
    rr_request_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_key_order),
        cmocka_unit_test(test_canonical_values_differ),
        cmocka_unit_test(test_wait_and_key_excluded_reqrun_included),
        cmocka_unit_test(test_upstream_body),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_model_and_messages),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_wait_forms),
        cmocka_unit_test(test_idempotency_key_field),
        cmocka_unit_test(test_reqrun_max_attempts_and_timeout),
        cmocka_unit_test(test_reqrun_metadata),
        cmocka_unit_test(test_reqrun_webhook_url),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_to_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
