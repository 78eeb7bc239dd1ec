/* Fuzz target of record.c's codec: every input goes to the Request, Record and Event
 * decoders; whatever one accepts must survive encode, decode unchanged and encode to the
 * same bytes again. Everything is freed, so LeakSanitizer checks the error paths. */
#include "fuzz_target.h"

#include "reqrun/record.h"

#include <string.h>

#define TEST_NOW_MS 1700000000000

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* Pairs in the same order: maps travel as repeated entries, in order. */
static bool same_pairs(const rr_kv_pair *a, size_t na, const rr_kv_pair *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return false;
    }
    return true;
}

static void check_request_equal(const rr_request *a, const rr_request *b)
{
    FUZZ_CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->tenant, b->tenant) == 0);
    FUZZ_CHECK(memcmp(a->body_hash, b->body_hash, RR_SHA256_LEN) == 0);
    FUZZ_CHECK(same_bytes(a->body, a->body_len, b->body, b->body_len));
    FUZZ_CHECK(a->max_attempts == b->max_attempts && a->deadline_ms == b->deadline_ms &&
               a->created_ms == b->created_ms);
    FUZZ_CHECK(same_pairs(a->metadata, a->n_metadata, b->metadata, b->n_metadata));
    FUZZ_CHECK(same_str(a->webhook_url, b->webhook_url));
    FUZZ_CHECK(a->has_idempotency_key == b->has_idempotency_key);
}

static void check_record_equal(const rr_record *a, const rr_record *b)
{
    FUZZ_CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->tenant, b->tenant) == 0);
    FUZZ_CHECK(a->state == b->state);
    FUZZ_CHECK(memcmp(a->body_hash, b->body_hash, RR_SHA256_LEN) == 0);
    FUZZ_CHECK(a->stream_seq == b->stream_seq && a->attempts == b->attempts &&
               a->max_attempts == b->max_attempts);
    FUZZ_CHECK(a->created_ms == b->created_ms && a->updated_ms == b->updated_ms &&
               a->deadline_ms == b->deadline_ms && a->next_attempt_ms == b->next_attempt_ms);
    FUZZ_CHECK(a->n_attempt_log == b->n_attempt_log);
    for (size_t i = 0; i < a->n_attempt_log; i++) {
        const rr_attempt *x = &a->attempt_log[i], *y = &b->attempt_log[i];
        FUZZ_CHECK(x->number == y->number && x->started_ms == y->started_ms &&
                   x->finished_ms == y->finished_ms && x->upstream_status == y->upstream_status &&
                   x->outcome == y->outcome);
        FUZZ_CHECK(strcmp(x->error_code, y->error_code) == 0 &&
                   strcmp(x->executor, y->executor) == 0);
    }
    /* The encoder writes last_error only when it has a code ("" means no error). */
    FUZZ_CHECK(strcmp(a->last_error.code, b->last_error.code) == 0);
    if (a->last_error.code[0] != '\0') {
        FUZZ_CHECK(same_str(a->last_error.message, b->last_error.message));
        FUZZ_CHECK(a->last_error.upstream_status == b->last_error.upstream_status &&
                   a->last_error.retryable == b->last_error.retryable);
    }
    FUZZ_CHECK(same_bytes(a->result, a->result_len, b->result, b->result_len));
    FUZZ_CHECK(a->result_status == b->result_status && a->owner_delivery == b->owner_delivery);
    FUZZ_CHECK(strcmp(a->owner_instance, b->owner_instance) == 0);
    FUZZ_CHECK(a->cancel_requested == b->cancel_requested);
    FUZZ_CHECK(same_pairs(a->metadata, a->n_metadata, b->metadata, b->n_metadata));
    FUZZ_CHECK(same_str(a->webhook_url, b->webhook_url));
    FUZZ_CHECK(a->n_webhook_log == b->n_webhook_log);
    for (size_t i = 0; i < a->n_webhook_log; i++) {
        const rr_webhook_delivery *x = &a->webhook_log[i], *y = &b->webhook_log[i];
        FUZZ_CHECK(x->number == y->number && x->at_ms == y->at_ms &&
                   x->http_status == y->http_status && x->delivered == y->delivered);
        FUZZ_CHECK(strcmp(x->error_code, y->error_code) == 0);
    }
}

static void check_event_equal(const rr_event *a, const rr_event *b)
{
    FUZZ_CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->tenant, b->tenant) == 0);
    FUZZ_CHECK(a->state == b->state && a->attempt == b->attempt);
    FUZZ_CHECK(strcmp(a->error_code, b->error_code) == 0);
    FUZZ_CHECK(a->revision == b->revision && a->created_ms == b->created_ms &&
               a->updated_ms == b->updated_ms && a->at_ms == b->at_ms);
    FUZZ_CHECK(strcmp(a->webhook_url, b->webhook_url) == 0);
    FUZZ_CHECK(a->result_status == b->result_status);
}

/* Decoded once, the value is stable: encode, decode gives it back, and encoding that
 * gives the same bytes. */
static void check_request(const uint8_t *data, size_t size)
{
    rr_request a, b;
    if (rr_request_decode(&a, data, size) != RR_OK) {
        FUZZ_CHECK(a.body == NULL && a.metadata == NULL && a.webhook_url == NULL);
        return;
    }
    size_t len1 = 0, len2 = 0;
    uint8_t *wire1 = rr_request_encode(&a, &len1);
    FUZZ_CHECK(wire1 != NULL);
    FUZZ_CHECK(rr_request_decode(&b, wire1, len1) == RR_OK);
    check_request_equal(&a, &b);
    uint8_t *wire2 = rr_request_encode(&b, &len2);
    FUZZ_CHECK(wire2 != NULL && same_bytes(wire1, len1, wire2, len2));

    /* The record the executor builds from it carries the request's fields over. */
    rr_record rec;
    FUZZ_CHECK(rr_record_from_request(&rec, &a, RR_STATE_QUEUED, 1, TEST_NOW_MS) == RR_OK);
    FUZZ_CHECK(strcmp(rec.id, a.id) == 0 && strcmp(rec.tenant, a.tenant) == 0);
    FUZZ_CHECK(same_pairs(rec.metadata, rec.n_metadata, a.metadata, a.n_metadata));
    FUZZ_CHECK(same_str(rec.webhook_url, a.webhook_url));
    rr_record_free(&rec);

    free(wire1);
    free(wire2);
    rr_request_free(&a);
    rr_request_free(&b);
}

static void check_record(const uint8_t *data, size_t size)
{
    rr_record a, b;
    if (rr_record_decode(&a, data, size) != RR_OK) {
        FUZZ_CHECK(a.attempt_log == NULL && a.last_error.message == NULL && a.result == NULL &&
                   a.metadata == NULL && a.webhook_url == NULL && a.webhook_log == NULL);
        return;
    }
    FUZZ_CHECK((unsigned)a.state <= RR_STATE_EXPIRED);
    for (size_t i = 0; i < a.n_attempt_log; i++)
        FUZZ_CHECK((unsigned)a.attempt_log[i].outcome <= RR_OUTCOME_EXPIRED);
    size_t len1 = 0, len2 = 0;
    uint8_t *wire1 = rr_record_encode(&a, &len1);
    FUZZ_CHECK(wire1 != NULL);
    FUZZ_CHECK(rr_record_decode(&b, wire1, len1) == RR_OK);
    check_record_equal(&a, &b);
    uint8_t *wire2 = rr_record_encode(&b, &len2);
    FUZZ_CHECK(wire2 != NULL && same_bytes(wire1, len1, wire2, len2));

    /* The event of the record survives its own codec. */
    rr_event e, e2;
    rr_event_from_record(&e, &a, 7, TEST_NOW_MS);
    /* Any URL a request may carry reaches the event whole: webhooks go to its copy. */
    if (a.webhook_url == NULL || strlen(a.webhook_url) <= RR_WEBHOOK_URL_MAX)
        FUZZ_CHECK(strcmp(e.webhook_url, a.webhook_url != NULL ? a.webhook_url : "") == 0);
    size_t elen = 0;
    uint8_t *ewire = rr_event_encode(&e, &elen);
    FUZZ_CHECK(ewire != NULL);
    FUZZ_CHECK(rr_event_decode(&e2, ewire, elen) == RR_OK);
    check_event_equal(&e, &e2);
    free(ewire);

    free(wire1);
    free(wire2);
    rr_record_free(&a);
    rr_record_free(&b);
}

static void check_event(const uint8_t *data, size_t size)
{
    rr_event a, b;
    if (rr_event_decode(&a, data, size) != RR_OK)
        return;
    FUZZ_CHECK((unsigned)a.state <= RR_STATE_EXPIRED);
    size_t len1 = 0, len2 = 0;
    uint8_t *wire1 = rr_event_encode(&a, &len1);
    FUZZ_CHECK(wire1 != NULL);
    FUZZ_CHECK(rr_event_decode(&b, wire1, len1) == RR_OK);
    check_event_equal(&a, &b);
    uint8_t *wire2 = rr_event_encode(&b, &len2);
    FUZZ_CHECK(wire2 != NULL && same_bytes(wire1, len1, wire2, len2));
    free(wire1);
    free(wire2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_request(data, size);
    check_record(data, size);
    check_event(data, size);
    return 0;
}
