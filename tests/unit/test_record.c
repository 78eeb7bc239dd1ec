/* Unit tests of record.c: protobuf round trips of Request, Record and Event field by
 * field, refusal of garbage and over-long fields, states and outcomes, and the helpers
 * that edit a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1 "rr_abcdefghijklmnopqrstuvwxyz"

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

static rr_kv_pair *pairs2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    rr_kv_pair *p = calloc(2, sizeof *p);
    assert_non_null(p);
    p[0].key = xstrdup(k1);
    p[0].value = xstrdup(v1);
    p[1].key = xstrdup(k2);
    p[1].value = xstrdup(v2);
    return p;
}

/* Map order is not a protobuf promise: look a key up. */
static const char *pair_get(const rr_kv_pair *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p[i].key, key) == 0)
            return p[i].value;
    }
    return NULL;
}

static void fill_hash(uint8_t h[RR_SHA256_LEN], uint8_t seed)
{
    for (int i = 0; i < RR_SHA256_LEN; i++)
        h[i] = (uint8_t)(seed + i * 13);
}

static void make_request(rr_request *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", ID1);
    snprintf(r->tenant, sizeof r->tenant, "acme");
    fill_hash(r->body_hash, 7);
    static const char body[] = "{\"model\":\"m\",\"messages\":[]}\0tail";
    r->body_len = sizeof body - 1; /* binary-safe: includes the NUL and the tail */
    r->body = malloc(r->body_len);
    assert_non_null(r->body);
    memcpy(r->body, body, r->body_len);
    r->max_attempts = 7;
    r->deadline_ms = 1795500000000LL + 3600000;
    r->created_ms = 1795500000000LL;
    r->metadata = pairs2("user", "u-1", "trace", "t \"quoted\" é");
    r->n_metadata = 2;
    r->webhook_url = xstrdup("https://hooks.example.com/rr?x=1");
    r->has_idempotency_key = true;
}

static void test_request_round_trip(void **state)
{
    (void)state;
    rr_request in, out;
    make_request(&in);
    size_t len = 0;
    uint8_t *buf = rr_request_encode(&in, &len);
    assert_non_null(buf);
    assert_true(len > 0);
    assert_int_equal(rr_request_decode(&out, buf, len), RR_OK);
    free(buf);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.tenant, in.tenant);
    assert_memory_equal(out.body_hash, in.body_hash, RR_SHA256_LEN);
    assert_int_equal(out.body_len, in.body_len);
    assert_memory_equal(out.body, in.body, in.body_len);
    assert_int_equal(out.max_attempts, 7);
    assert_int_equal(out.deadline_ms, in.deadline_ms);
    assert_int_equal(out.created_ms, in.created_ms);
    assert_int_equal(out.n_metadata, 2);
    assert_string_equal(pair_get(out.metadata, out.n_metadata, "user"), "u-1");
    assert_string_equal(pair_get(out.metadata, out.n_metadata, "trace"), "t \"quoted\" é");
    assert_string_equal(out.webhook_url, in.webhook_url);
    assert_true(out.has_idempotency_key);
    rr_request_free(&out);
    rr_request_free(&in);
    /* free zeroes the struct, and is NULL-safe */
    assert_null(in.body);
    rr_request_free(NULL);
}

static void test_request_minimal_round_trip(void **state)
{
    (void)state;
    rr_request in, out;
    memset(&in, 0, sizeof in);
    snprintf(in.id, sizeof in.id, "%s", ID1);
    snprintf(in.tenant, sizeof in.tenant, "default");
    fill_hash(in.body_hash, 1);
    size_t len = 0;
    uint8_t *buf = rr_request_encode(&in, &len);
    assert_non_null(buf);
    assert_int_equal(rr_request_decode(&out, buf, len), RR_OK);
    free(buf);
    assert_string_equal(out.id, ID1);
    assert_string_equal(out.tenant, "default");
    assert_int_equal(out.body_len, 0);
    assert_int_equal(out.n_metadata, 0);
    assert_null(out.metadata);
    assert_null(out.webhook_url);
    assert_false(out.has_idempotency_key);
    rr_request_free(&out);
}

static void make_record(rr_record *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", ID1);
    snprintf(r->tenant, sizeof r->tenant, "acme");
    r->state = RR_STATE_RETRYING;
    fill_hash(r->body_hash, 99);
    r->stream_seq = 1ULL << 40;
    r->attempts = 2;
    r->max_attempts = 5;
    r->created_ms = 1795500000000LL;
    r->updated_ms = 1795500001234LL;
    r->deadline_ms = 1795503600000LL;
    r->next_attempt_ms = 1795500002000LL;
    rr_attempt a1 = {.number = 1, .started_ms = 10, .finished_ms = 20, .upstream_status = 503,
                     .error_code = "upstream_http_503", .outcome = RR_OUTCOME_RETRYABLE,
                     .executor = "host-a-1"};
    rr_attempt a2 = {.number = 2, .started_ms = 30, .finished_ms = 0, .upstream_status = 0,
                     .error_code = "upstream_timeout", .outcome = RR_OUTCOME_AMBIGUOUS,
                     .executor = "host-b-2"};
    assert_int_equal(rr_record_add_attempt(r, &a1), RR_OK);
    assert_int_equal(rr_record_add_attempt(r, &a2), RR_OK);
    assert_int_equal(rr_record_set_error(r, "upstream_timeout", "no answer in 300 s", 0, true),
                     RR_OK);
    static const char result[] = "{\"id\":\"chatcmpl-1\",\"choices\":[]}";
    assert_int_equal(rr_record_set_result(r, result, sizeof result - 1, 200), RR_OK);
    r->owner_delivery = 17;
    snprintf(r->owner_instance, sizeof r->owner_instance, "host-b-2");
    r->cancel_requested = true;
    r->metadata = pairs2("k1", "v1", "k2", "");
    r->n_metadata = 2;
    r->webhook_url = xstrdup("https://hooks.example.com/x");
    rr_webhook_delivery d1 = {.number = 1, .at_ms = 111, .http_status = 500,
                              .error_code = "webhook_http_500", .delivered = false};
    rr_webhook_delivery d2 = {.number = 2, .at_ms = 222, .http_status = 204, .error_code = "",
                              .delivered = true};
    assert_int_equal(rr_record_add_webhook_delivery(r, &d1), RR_OK);
    assert_int_equal(rr_record_add_webhook_delivery(r, &d2), RR_OK);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    rr_record in, out;
    make_record(&in);
    size_t len = 0;
    uint8_t *buf = rr_record_encode(&in, &len);
    assert_non_null(buf);
    assert_int_equal(rr_record_decode(&out, buf, len), RR_OK);
    free(buf);

    assert_string_equal(out.id, ID1);
    assert_string_equal(out.tenant, "acme");
    assert_int_equal(out.state, RR_STATE_RETRYING);
    assert_memory_equal(out.body_hash, in.body_hash, RR_SHA256_LEN);
    assert_true(out.stream_seq == 1ULL << 40);
    assert_int_equal(out.attempts, 2);
    assert_int_equal(out.max_attempts, 5);
    assert_int_equal(out.created_ms, in.created_ms);
    assert_int_equal(out.updated_ms, in.updated_ms);
    assert_int_equal(out.deadline_ms, in.deadline_ms);
    assert_int_equal(out.next_attempt_ms, in.next_attempt_ms);

    assert_int_equal(out.n_attempt_log, 2);
    for (size_t i = 0; i < 2; i++) {
        const rr_attempt *a = &in.attempt_log[i], *b = &out.attempt_log[i];
        assert_int_equal(b->number, a->number);
        assert_int_equal(b->started_ms, a->started_ms);
        assert_int_equal(b->finished_ms, a->finished_ms);
        assert_int_equal(b->upstream_status, a->upstream_status);
        assert_string_equal(b->error_code, a->error_code);
        assert_int_equal(b->outcome, a->outcome);
        assert_string_equal(b->executor, a->executor);
    }
    assert_int_equal(rr_record_last_attempt(&out)->number, 2);

    assert_string_equal(out.last_error.code, "upstream_timeout");
    assert_string_equal(out.last_error.message, "no answer in 300 s");
    assert_int_equal(out.last_error.upstream_status, 0);
    assert_true(out.last_error.retryable);

    assert_int_equal(out.result_len, in.result_len);
    assert_memory_equal(out.result, in.result, in.result_len);
    assert_int_equal(out.result_status, 200);
    assert_int_equal(out.owner_delivery, 17);
    assert_string_equal(out.owner_instance, "host-b-2");
    assert_true(out.cancel_requested);

    assert_int_equal(out.n_metadata, 2);
    assert_string_equal(pair_get(out.metadata, out.n_metadata, "k1"), "v1");
    assert_string_equal(pair_get(out.metadata, out.n_metadata, "k2"), "");
    assert_string_equal(out.webhook_url, "https://hooks.example.com/x");

    assert_int_equal(out.n_webhook_log, 2);
    for (size_t i = 0; i < 2; i++) {
        const rr_webhook_delivery *a = &in.webhook_log[i], *b = &out.webhook_log[i];
        assert_int_equal(b->number, a->number);
        assert_int_equal(b->at_ms, a->at_ms);
        assert_int_equal(b->http_status, a->http_status);
        assert_string_equal(b->error_code, a->error_code);
        assert_int_equal(b->delivered, a->delivered);
    }
    rr_record_free(&out);
    rr_record_free(&in);
    rr_record_free(NULL);
}

static void test_record_every_state_round_trips(void **state)
{
    (void)state;
    for (int s = RR_STATE_UNSPECIFIED; s <= RR_STATE_EXPIRED; s++) {
        rr_record in, out;
        memset(&in, 0, sizeof in);
        snprintf(in.id, sizeof in.id, "%s", ID1);
        snprintf(in.tenant, sizeof in.tenant, "t");
        in.state = (rr_state)s;
        size_t len = 0;
        uint8_t *buf = rr_record_encode(&in, &len);
        assert_non_null(buf);
        assert_int_equal(rr_record_decode(&out, buf, len), RR_OK);
        free(buf);
        assert_int_equal(out.state, s);
        /* no error, no result, no log: all empty after decoding */
        assert_string_equal(out.last_error.code, "");
        assert_null(out.last_error.message);
        assert_null(out.result);
        assert_int_equal(out.result_len, 0);
        assert_null(out.attempt_log);
        assert_null(out.webhook_url);
        rr_record_free(&out);
    }
}

static void test_event_round_trip(void **state)
{
    (void)state;
    rr_record r;
    make_record(&r);
    r.state = RR_STATE_FAILED;
    rr_event e, out;
    rr_event_from_record(&e, &r, 42, 1795500009999LL);
    assert_string_equal(e.id, ID1);
    assert_string_equal(e.tenant, "acme");
    assert_int_equal(e.state, RR_STATE_FAILED);
    assert_int_equal(e.attempt, 2);
    assert_string_equal(e.error_code, "upstream_timeout");
    assert_int_equal(e.revision, 42);
    assert_int_equal(e.created_ms, r.created_ms);
    assert_int_equal(e.updated_ms, r.updated_ms);
    assert_int_equal(e.at_ms, 1795500009999LL);
    assert_string_equal(e.webhook_url, "https://hooks.example.com/x");
    assert_int_equal(e.result_status, 200);
    rr_record_free(&r);

    size_t len = 0;
    uint8_t *buf = rr_event_encode(&e, &len);
    assert_non_null(buf);
    assert_int_equal(rr_event_decode(&out, buf, len), RR_OK);
    free(buf);
    assert_string_equal(out.id, e.id);
    assert_string_equal(out.tenant, e.tenant);
    assert_int_equal(out.state, e.state);
    assert_int_equal(out.attempt, e.attempt);
    assert_string_equal(out.error_code, e.error_code);
    assert_int_equal(out.revision, e.revision);
    assert_int_equal(out.created_ms, e.created_ms);
    assert_int_equal(out.updated_ms, e.updated_ms);
    assert_int_equal(out.at_ms, e.at_ms);
    assert_string_equal(out.webhook_url, e.webhook_url);
    assert_int_equal(out.result_status, e.result_status);
}

static void test_decode_garbage(void **state)
{
    (void)state;
    static const uint8_t junk1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const char junk2[] = "this is not a protobuf message";
    static const uint8_t truncated[] = {0x0a, 0x20, 'r', 'r', '_'}; /* id claims 32 bytes */
    rr_request rq;
    rr_record rc;
    rr_event ev;
    assert_int_equal(rr_request_decode(&rq, junk1, sizeof junk1), RR_INVALID);
    assert_int_equal(rr_record_decode(&rc, junk1, sizeof junk1), RR_INVALID);
    assert_int_equal(rr_event_decode(&ev, junk1, sizeof junk1), RR_INVALID);
    assert_int_equal(rr_request_decode(&rq, junk2, sizeof junk2 - 1), RR_INVALID);
    assert_int_equal(rr_record_decode(&rc, junk2, sizeof junk2 - 1), RR_INVALID);
    assert_int_equal(rr_event_decode(&ev, junk2, sizeof junk2 - 1), RR_INVALID);
    assert_int_equal(rr_request_decode(&rq, truncated, sizeof truncated), RR_INVALID);
    assert_int_equal(rr_record_decode(&rc, truncated, sizeof truncated), RR_INVALID);
    assert_int_equal(rr_event_decode(&ev, truncated, sizeof truncated), RR_INVALID);
    /* An empty message parses as protobuf but lacks the 32-byte body hash. */
    assert_int_equal(rr_request_decode(&rq, "", 0), RR_INVALID);
    assert_int_equal(rr_record_decode(&rc, "", 0), RR_INVALID);
    /* Failed decodes leave nothing to free. */
    assert_null(rq.body);
    assert_null(rc.attempt_log);

    /* Every prefix of a valid record either decodes or is refused, never crashes; the
     * full message decodes. */
    rr_record in;
    make_record(&in);
    size_t len = 0;
    uint8_t *buf = rr_record_encode(&in, &len);
    assert_non_null(buf);
    rr_record_free(&in);
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        rr_status s = rr_record_decode(&rc, buf, n);
        assert_true(s == RR_OK || s == RR_INVALID);
        refused += s == RR_INVALID;
        rr_record_free(&rc);
    }
    assert_true(refused > 0);
    assert_int_equal(rr_record_decode(&rc, buf, len), RR_OK);
    rr_record_free(&rc);
    free(buf);
}

/* Hand-encodes a protobuf message with string field 1 (id) and 2 (tenant), and bytes
 * field 3 or 4 (body hash) of 32 bytes, to feed the decoders values the structs cannot
 * hold. */
static size_t encode_ids(uint8_t *out, const char *id, const char *tenant, int hash_field)
{
    size_t n = 0, l;
    out[n++] = 0x0a;
    l = strlen(id);
    assert_true(l < 128);
    out[n++] = (uint8_t)l;
    memcpy(out + n, id, l);
    n += l;
    out[n++] = 0x12;
    l = strlen(tenant);
    assert_true(l < 128);
    out[n++] = (uint8_t)l;
    memcpy(out + n, tenant, l);
    n += l;
    if (hash_field > 0) {
        out[n++] = (uint8_t)(hash_field << 3 | 2);
        out[n++] = RR_SHA256_LEN;
        memset(out + n, 0xab, RR_SHA256_LEN);
        n += RR_SHA256_LEN;
    }
    return n;
}

static void test_decode_refuses_long_fields(void **state)
{
    (void)state;
    uint8_t buf[512];
    char long_id[RR_ID_BUF + 1], long_tenant[RR_TENANT_BUF + 1];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0'; /* RR_ID_BUF chars: one too many */
    memset(long_tenant, 't', sizeof long_tenant - 1);
    long_tenant[sizeof long_tenant - 1] = '\0'; /* 65 chars */
    rr_request rq;
    rr_record rc;
    rr_event ev;

    /* Sanity: the hand encoding decodes with a valid id and tenant. */
    size_t n = encode_ids(buf, ID1, "acme", 3);
    assert_int_equal(rr_request_decode(&rq, buf, n), RR_OK);
    assert_string_equal(rq.id, ID1);
    assert_string_equal(rq.tenant, "acme");
    rr_request_free(&rq);
    n = encode_ids(buf, ID1, "acme", 4);
    assert_int_equal(rr_record_decode(&rc, buf, n), RR_OK);
    assert_string_equal(rc.tenant, "acme");
    rr_record_free(&rc);
    n = encode_ids(buf, ID1, "acme", 0);
    assert_int_equal(rr_event_decode(&ev, buf, n), RR_OK);

    n = encode_ids(buf, long_id, "acme", 3);
    assert_int_equal(rr_request_decode(&rq, buf, n), RR_INVALID);
    n = encode_ids(buf, ID1, long_tenant, 3);
    assert_int_equal(rr_request_decode(&rq, buf, n), RR_INVALID);
    n = encode_ids(buf, long_id, "acme", 4);
    assert_int_equal(rr_record_decode(&rc, buf, n), RR_INVALID);
    n = encode_ids(buf, ID1, long_tenant, 4);
    assert_int_equal(rr_record_decode(&rc, buf, n), RR_INVALID);
    n = encode_ids(buf, long_id, "acme", 0);
    assert_int_equal(rr_event_decode(&ev, buf, n), RR_INVALID);
    n = encode_ids(buf, ID1, long_tenant, 0);
    assert_int_equal(rr_event_decode(&ev, buf, n), RR_INVALID);

    /* A status outside the enum is refused. */
    n = encode_ids(buf, ID1, "acme", 4);
    buf[n++] = 0x18; /* field 3 (status), varint */
    buf[n++] = 0x09;
    assert_int_equal(rr_record_decode(&rc, buf, n), RR_INVALID);
    /* A body hash that is not 32 bytes is refused. */
    n = encode_ids(buf, ID1, "acme", 0);
    buf[n++] = 0x1a;
    buf[n++] = 3;
    buf[n++] = 1;
    buf[n++] = 2;
    buf[n++] = 3;
    assert_int_equal(rr_request_decode(&rq, buf, n), RR_INVALID);
}

static void test_states_and_outcomes(void **state)
{
    (void)state;
    static const struct {
        rr_state s;
        const char *name;
        bool terminal;
    } st[] = {
        {RR_STATE_QUEUED, "queued", false},       {RR_STATE_PROCESSING, "processing", false},
        {RR_STATE_RETRYING, "retrying", false},   {RR_STATE_COMPLETED, "completed", true},
        {RR_STATE_FAILED, "failed", true},        {RR_STATE_CANCELLED, "cancelled", true},
        {RR_STATE_EXPIRED, "expired", true},      {RR_STATE_UNSPECIFIED, "unspecified", false},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        assert_string_equal(rr_state_str(st[i].s), st[i].name);
        assert_int_equal(rr_state_terminal(st[i].s), st[i].terminal);
    }
    assert_string_equal(rr_state_str((rr_state)99), "unspecified");
    assert_false(rr_state_terminal((rr_state)99));

    static const struct {
        rr_outcome o;
        const char *name;
    } oc[] = {
        {RR_OUTCOME_UNSPECIFIED, "unspecified"}, {RR_OUTCOME_IN_PROGRESS, "in_progress"},
        {RR_OUTCOME_SUCCESS, "success"},         {RR_OUTCOME_RETRYABLE, "retryable"},
        {RR_OUTCOME_NEVER_SENT, "never_sent"},   {RR_OUTCOME_AMBIGUOUS, "ambiguous"},
        {RR_OUTCOME_FINAL, "final"},             {RR_OUTCOME_INTERRUPTED, "interrupted"},
        {RR_OUTCOME_CANCELLED, "cancelled"},     {RR_OUTCOME_EXPIRED, "expired"},
    };
    for (size_t i = 0; i < sizeof oc / sizeof oc[0]; i++)
        assert_string_equal(rr_outcome_str(oc[i].o), oc[i].name);
    assert_string_equal(rr_outcome_str((rr_outcome)99), "unspecified");
}

static void test_webhook_log_keeps_last_20(void **state)
{
    (void)state;
    rr_record r;
    memset(&r, 0, sizeof r);
    for (uint32_t i = 1; i <= 25; i++) {
        rr_webhook_delivery d = {.number = i, .at_ms = 1000 + i, .http_status = 500 + i % 3,
                                 .delivered = i == 25};
        snprintf(d.error_code, sizeof d.error_code, "e%u", i);
        assert_int_equal(rr_record_add_webhook_delivery(&r, &d), RR_OK);
        assert_int_equal(r.n_webhook_log, i < 20 ? i : 20);
    }
    for (uint32_t i = 0; i < 20; i++) {
        const rr_webhook_delivery *d = &r.webhook_log[i];
        uint32_t want = 6 + i;
        assert_int_equal(d->number, want);
        assert_int_equal(d->at_ms, 1000 + want);
        char code[8];
        snprintf(code, sizeof code, "e%u", want);
        assert_string_equal(d->error_code, code);
        assert_int_equal(d->delivered, want == 25);
    }
    /* And it survives the codec. */
    snprintf(r.id, sizeof r.id, "%s", ID1);
    snprintf(r.tenant, sizeof r.tenant, "t");
    size_t len = 0;
    uint8_t *buf = rr_record_encode(&r, &len);
    assert_non_null(buf);
    rr_record out;
    assert_int_equal(rr_record_decode(&out, buf, len), RR_OK);
    free(buf);
    assert_int_equal(out.n_webhook_log, 20);
    assert_int_equal(out.webhook_log[0].number, 6);
    assert_int_equal(out.webhook_log[19].number, 25);
    rr_record_free(&out);
    rr_record_free(&r);
}

static void test_record_from_request_and_edits(void **state)
{
    (void)state;
    rr_request req;
    make_request(&req);
    rr_record r;
    assert_int_equal(rr_record_from_request(&r, &req, RR_STATE_QUEUED, 99, 1795500005000LL),
                     RR_OK);
    assert_string_equal(r.id, req.id);
    assert_string_equal(r.tenant, req.tenant);
    assert_int_equal(r.state, RR_STATE_QUEUED);
    assert_memory_equal(r.body_hash, req.body_hash, RR_SHA256_LEN);
    assert_int_equal(r.stream_seq, 99);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.max_attempts, req.max_attempts);
    assert_int_equal(r.created_ms, req.created_ms); /* the request's creation time */
    assert_int_equal(r.updated_ms, 1795500005000LL);
    assert_int_equal(r.deadline_ms, req.deadline_ms);
    assert_int_equal(r.n_metadata, 2);
    assert_string_equal(pair_get(r.metadata, r.n_metadata, "user"), "u-1");
    assert_string_equal(r.webhook_url, req.webhook_url);
    /* Deep copies: the request can go away. */
    assert_ptr_not_equal(r.webhook_url, req.webhook_url);
    assert_ptr_not_equal(r.metadata, req.metadata);
    rr_request_free(&req);
    assert_string_equal(r.webhook_url, "https://hooks.example.com/rr?x=1");

    /* No creation time in the request: now. */
    rr_request bare;
    memset(&bare, 0, sizeof bare);
    rr_record r2;
    assert_int_equal(rr_record_from_request(&r2, &bare, RR_STATE_PROCESSING, 1, 777), RR_OK);
    assert_int_equal(r2.created_ms, 777);
    assert_null(r2.webhook_url);
    assert_null(rr_record_last_attempt(&r2));
    rr_record_free(&r2);

    /* set_error replaces, with or without a message; set_result replaces and clears. */
    assert_int_equal(rr_record_set_error(&r, "a", "first", 500, true), RR_OK);
    assert_int_equal(rr_record_set_error(&r, "upstream_http_400", NULL, 400, false), RR_OK);
    assert_string_equal(r.last_error.code, "upstream_http_400");
    assert_null(r.last_error.message);
    assert_int_equal(r.last_error.upstream_status, 400);
    assert_false(r.last_error.retryable);
    assert_int_equal(rr_record_set_result(&r, "abc", 3, 200), RR_OK);
    assert_int_equal(rr_record_set_result(&r, "de", 2, 400), RR_OK);
    assert_int_equal(r.result_len, 2);
    assert_memory_equal(r.result, "de", 2);
    assert_int_equal(r.result_status, 400);
    assert_int_equal(rr_record_set_result(&r, NULL, 0, 0), RR_OK);
    assert_null(r.result);
    assert_int_equal(r.result_len, 0);
    rr_record_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_minimal_round_trip),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_every_state_round_trips),
        cmocka_unit_test(test_event_round_trip),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_refuses_long_fields),
        cmocka_unit_test(test_states_and_outcomes),
        cmocka_unit_test(test_webhook_log_keeps_last_20),
        cmocka_unit_test(test_record_from_request_and_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
