/* Fuzz target of chatreq.c: rr_json_depth_ok against the nesting jansson builds, and
 * rr_chatreq_parse under three limit sets with DESIGN §3's promises checked on every
 * body it accepts (canonical form, hash, upstream body, move into a stream Request, and
 * on into a record and its events). */
#include "fuzz_target.h"

#include "reqrun/chatreq.h"
#include "reqrun/record.h"

#include <jansson.h>
#include <limits.h>
#include <string.h>

/* The configuration defaults, then the smallest and the largest values config.c
 * accepts (wait_timeout_s <= wait_max_s, as config.c requires). */
static const rr_chatreq_limits limit_sets[] = {
    {.max_messages = 2048, .max_attempts = 5, .deadline_s = 3600, .wait_default_s = 20,
     .wait_max_s = 120},
    {.max_messages = 1, .max_attempts = 1, .deadline_s = 1, .wait_default_s = 0,
     .wait_max_s = 0},
    {.max_messages = 1000000, .max_attempts = 100, .deadline_s = 604800,
     .wait_default_s = 3600, .wait_max_s = 3600},
};

/* chatreq.c's dump flags: the canonical form must be a fixed point of them. */
#define DUMP_FLAGS (JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17))

#define TEST_ID "rr_abcdefghijklmnopqrstuvwxyz"
#define TEST_NOW_MS 1700000000000

/* 0 for a scalar, 1 for an array or object of scalars, ... */
static int tree_depth(json_t *v)
{
    int inner = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            int d = tree_depth(e);
            inner = d > inner ? d : inner;
        }
        return inner + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            int d = tree_depth(e);
            inner = d > inner ? d : inner;
        }
        return inner + 1;
    }
    return 0;
}

static void check_depth_guard(const char *buf, size_t size)
{
    FUZZ_CHECK(rr_json_depth_ok(buf, size, INT_MAX));
    if (!rr_json_depth_ok(buf, size, RR_JSON_MAX_DEPTH)) {
        FUZZ_CHECK(!rr_json_depth_ok(buf, size, RR_JSON_MAX_DEPTH - 1));
        FUZZ_CHECK(!rr_json_depth_ok(buf, size, 0));
        return;
    }
    /* Guarded, so jansson recurses at most RR_JSON_MAX_DEPTH deep. On JSON it accepts,
     * the guard must measure exactly the nesting jansson builds (duplicates refused: a
     * replaced member would hide its nesting). */
    json_t *root = json_loadb(buf, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return;
    int d = tree_depth(root);
    json_decref(root);
    FUZZ_CHECK(rr_json_depth_ok(buf, size, d));
    FUZZ_CHECK(d == 0 || !rr_json_depth_ok(buf, size, d - 1));
}

static json_t *load_object(const char *s, size_t len)
{
    json_t *v = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(v));
    return v;
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Same pairs, in any order (keys are unique: duplicates are refused). */
static bool same_pairs(const rr_kv_pair *a, size_t na, const rr_kv_pair *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i].key, b[j].key) != 0)
            j++;
        if (j == nb || strcmp(a[i].value, b[j].value) != 0)
            return false;
    }
    return true;
}

static void check_resolved(const rr_chatreq *r, const rr_chatreq_limits *lim)
{
    FUZZ_CHECK(r->max_attempts >= 1 && r->max_attempts <= lim->max_attempts);
    FUZZ_CHECK(r->timeout_s >= 1 && r->timeout_s <= lim->deadline_s);
    int64_t wait_cap = lim->wait_default_s > lim->wait_max_s ? lim->wait_default_s
                                                             : lim->wait_max_s;
    FUZZ_CHECK(r->wait_ms >= 0 && r->wait_ms <= wait_cap * 1000);
    FUZZ_CHECK(r->idempotency_key == NULL ||
               rr_idem_key_valid(r->idempotency_key, strlen(r->idempotency_key)));
    FUZZ_CHECK(r->n_metadata <= RR_METADATA_MAX_PAIRS);
    FUZZ_CHECK((r->n_metadata == 0) == (r->metadata == NULL));
    for (size_t i = 0; i < r->n_metadata; i++) {
        FUZZ_CHECK(strlen(r->metadata[i].key) <= RR_METADATA_KEY_MAX);
        FUZZ_CHECK(strlen(r->metadata[i].value) <= RR_METADATA_VALUE_MAX);
    }
    FUZZ_CHECK(r->webhook_url == NULL || strncmp(r->webhook_url, "http", 4) == 0);
}

/* The canonical body: NUL-terminated JSON object without wait and idempotency_key,
 * hashed by body_hash, a fixed point of jansson's dump; the upstream body is it minus
 * reqrun, the same buffer when there is no reqrun. */
static void check_bodies(const rr_chatreq *r)
{
    FUZZ_CHECK(r->canonical != NULL && strlen(r->canonical) == r->canonical_len);
    FUZZ_CHECK(r->upstream_body != NULL && strlen(r->upstream_body) == r->upstream_len);
    uint8_t hash[RR_SHA256_LEN];
    rr_sha256(r->canonical, r->canonical_len, hash);
    FUZZ_CHECK(memcmp(hash, r->body_hash, RR_SHA256_LEN) == 0);

    json_t *canon = load_object(r->canonical, r->canonical_len);
    FUZZ_CHECK(json_object_get(canon, "wait") == NULL);
    FUZZ_CHECK(json_object_get(canon, "idempotency_key") == NULL);
    char *again = json_dumps(canon, DUMP_FLAGS);
    FUZZ_CHECK(again != NULL && strcmp(again, r->canonical) == 0);
    free(again);

    bool had_reqrun = json_object_del(canon, "reqrun") == 0;
    FUZZ_CHECK(had_reqrun == (r->upstream_body != r->canonical));
    char *stripped = json_dumps(canon, DUMP_FLAGS);
    FUZZ_CHECK(stripped != NULL && strcmp(stripped, r->upstream_body) == 0);
    free(stripped);
    json_decref(canon);

    json_t *up = load_object(r->upstream_body, r->upstream_len);
    FUZZ_CHECK(json_object_get(up, "wait") == NULL);
    FUZZ_CHECK(json_object_get(up, "idempotency_key") == NULL);
    FUZZ_CHECK(json_object_get(up, "reqrun") == NULL);
    json_decref(up);
}

/* Canonicalisation is idempotent: the canonical body is accepted and canonicalises to
 * itself, with the same ReqRun fields (wait and the key are gone by then). */
static void check_reparse(const rr_chatreq *r, const rr_chatreq_limits *lim)
{
    rr_chatreq again;
    rr_api_error err;
    memset(&err, 0, sizeof err);
    rr_status s = rr_chatreq_parse(&again, r->canonical, r->canonical_len, lim, &err);
    if (s != RR_OK)
        fprintf(stderr, "canonical body refused: %s\n", err.message);
    FUZZ_CHECK(s == RR_OK);
    FUZZ_CHECK(again.canonical_len == r->canonical_len &&
               memcmp(again.canonical, r->canonical, r->canonical_len) == 0);
    FUZZ_CHECK(memcmp(again.body_hash, r->body_hash, RR_SHA256_LEN) == 0);
    FUZZ_CHECK(again.upstream_len == r->upstream_len &&
               memcmp(again.upstream_body, r->upstream_body, r->upstream_len) == 0);
    FUZZ_CHECK(again.wait_ms == 0 && again.idempotency_key == NULL);
    FUZZ_CHECK(again.max_attempts == r->max_attempts && again.timeout_s == r->timeout_s);
    FUZZ_CHECK(same_pairs(again.metadata, again.n_metadata, r->metadata, r->n_metadata));
    FUZZ_CHECK(same_str(again.webhook_url, r->webhook_url));
    rr_chatreq_free(&again);
}

/* Moves r into a stream Request and through the codec; r is freed. */
static void check_request(rr_chatreq *r)
{
    char *upstream = malloc(r->upstream_len);
    FUZZ_CHECK(upstream != NULL);
    memcpy(upstream, r->upstream_body, r->upstream_len);
    size_t upstream_len = r->upstream_len;
    uint32_t max_attempts = r->max_attempts;
    int64_t timeout_s = r->timeout_s;
    size_t n_metadata = r->n_metadata;
    bool has_key = r->idempotency_key != NULL;

    rr_request req;
    FUZZ_CHECK(rr_chatreq_to_request(r, &req, TEST_ID, "fuzz", has_key, TEST_NOW_MS) == RR_OK);
    FUZZ_CHECK(req.body_len == upstream_len && memcmp(req.body, upstream, upstream_len) == 0);
    FUZZ_CHECK(memcmp(req.body_hash, r->body_hash, RR_SHA256_LEN) == 0);
    FUZZ_CHECK(req.max_attempts == max_attempts && req.n_metadata == n_metadata);
    FUZZ_CHECK(req.deadline_ms == TEST_NOW_MS + timeout_s * 1000);
    /* The chatreq keeps only what it still owns. */
    FUZZ_CHECK(r->metadata == NULL && r->webhook_url == NULL && r->canonical != NULL);
    rr_chatreq_free(r);

    /* The record and its lifecycle events carry the webhook URL the request was accepted
     * with: the executor delivers to the event's copy. */
    rr_record rec;
    FUZZ_CHECK(rr_record_from_request(&rec, &req, RR_STATE_QUEUED, 1, TEST_NOW_MS) == RR_OK);
    FUZZ_CHECK(same_str(rec.webhook_url, req.webhook_url));
    rr_event ev;
    rr_event_from_record(&ev, &rec, 1, TEST_NOW_MS);
    FUZZ_CHECK(strcmp(ev.webhook_url, req.webhook_url != NULL ? req.webhook_url : "") == 0);
    rr_record_free(&rec);

    size_t len = 0;
    uint8_t *wire = rr_request_encode(&req, &len);
    FUZZ_CHECK(wire != NULL);
    rr_request back;
    FUZZ_CHECK(rr_request_decode(&back, wire, len) == RR_OK);
    FUZZ_CHECK(back.body_len == upstream_len && memcmp(back.body, upstream, upstream_len) == 0);
    FUZZ_CHECK(memcmp(back.body_hash, req.body_hash, RR_SHA256_LEN) == 0);
    FUZZ_CHECK(back.has_idempotency_key == has_key && back.deadline_ms == req.deadline_ms);
    FUZZ_CHECK(same_pairs(back.metadata, back.n_metadata, req.metadata, req.n_metadata));
    FUZZ_CHECK(same_str(back.webhook_url, req.webhook_url));
    rr_request_free(&back);
    free(wire);
    rr_request_free(&req);
    free(upstream);
}

static void check_parse(const char *body, size_t size, const rr_chatreq_limits *lim)
{
    rr_chatreq r;
    rr_api_error err;
    memset(&err, 0, sizeof err);
    rr_status s = rr_chatreq_parse(&r, body, size, lim, &err);
    if (s != RR_OK) {
        /* Every refusal is a 400 that says why, and leaves nothing behind. */
        FUZZ_CHECK(s == RR_INVALID);
        FUZZ_CHECK(rr_api_error_status(err.code) == 400 && err.message[0] != '\0');
        FUZZ_CHECK(r.canonical == NULL && r.upstream_body == NULL && r.metadata == NULL &&
                   r.webhook_url == NULL && r.idempotency_key == NULL);
        return;
    }
    check_resolved(&r, lim);
    check_bodies(&r);
    check_reparse(&r, lim);
    check_request(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    check_depth_guard(body, size);
    for (size_t i = 0; i < sizeof limit_sets / sizeof limit_sets[0]; i++)
        check_parse(body, size, &limit_sets[i]);
    return 0;
}
