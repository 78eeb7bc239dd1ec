/* Codec between ReqRun's plain C records and their protobuf encoding (protobuf-c). */
#include "reqrun/record.h"

#include "reqrun/v1/reqrun.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    [RR_STATE_UNSPECIFIED] = "unspecified", [RR_STATE_QUEUED] = "queued",
    [RR_STATE_PROCESSING] = "processing",   [RR_STATE_RETRYING] = "retrying",
    [RR_STATE_COMPLETED] = "completed",     [RR_STATE_FAILED] = "failed",
    [RR_STATE_CANCELLED] = "cancelled",     [RR_STATE_EXPIRED] = "expired",
};

static const char *const outcome_names[] = {
    [RR_OUTCOME_UNSPECIFIED] = "unspecified", [RR_OUTCOME_IN_PROGRESS] = "in_progress",
    [RR_OUTCOME_SUCCESS] = "success",         [RR_OUTCOME_RETRYABLE] = "retryable",
    [RR_OUTCOME_NEVER_SENT] = "never_sent",   [RR_OUTCOME_AMBIGUOUS] = "ambiguous",
    [RR_OUTCOME_FINAL] = "final",             [RR_OUTCOME_INTERRUPTED] = "interrupted",
    [RR_OUTCOME_CANCELLED] = "cancelled",     [RR_OUTCOME_EXPIRED] = "expired",
};

const char *rr_state_str(rr_state s)
{
    return (unsigned)s <= RR_STATE_EXPIRED ? state_names[s] : "unspecified";
}

bool rr_state_terminal(rr_state s)
{
    return s == RR_STATE_COMPLETED || s == RR_STATE_FAILED || s == RR_STATE_CANCELLED ||
           s == RR_STATE_EXPIRED;
}

const char *rr_outcome_str(rr_outcome o)
{
    return (unsigned)o <= RR_OUTCOME_EXPIRED ? outcome_names[o] : "unspecified";
}

/* ---- helpers ---- */

static char *str_or_empty(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

static bool copy_bounded(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
    return true;
}

static char *dup_or_null(const char *s)
{
    return (s != NULL && s[0] != '\0') ? strdup(s) : NULL;
}

static void free_pairs(rr_kv_pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

/* Map entries of Request and Record have the same layout but different types: both
 * are generated as {base, key, value}. */
typedef struct map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} map_entry;

static rr_status copy_pairs_in(rr_kv_pair **out, size_t *n_out, map_entry **in, size_t n)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return RR_OK;
    rr_kv_pair *p = calloc(n, sizeof *p);
    if (p == NULL)
        return RR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        p[i].key = strdup(str_or_empty(in[i]->key));
        p[i].value = strdup(str_or_empty(in[i]->value));
        if (p[i].key == NULL || p[i].value == NULL) {
            free_pairs(p, n);
            return RR_NOMEM;
        }
    }
    *out = p;
    *n_out = n;
    return RR_OK;
}

static rr_status copy_pairs(rr_kv_pair **out, size_t *n_out, const rr_kv_pair *in, size_t n)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return RR_OK;
    rr_kv_pair *p = calloc(n, sizeof *p);
    if (p == NULL)
        return RR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        p[i].key = strdup(in[i].key);
        p[i].value = strdup(in[i].value);
        if (p[i].key == NULL || p[i].value == NULL) {
            free_pairs(p, n);
            return RR_NOMEM;
        }
    }
    *out = p;
    *n_out = n;
    return RR_OK;
}

/* Builds the protobuf map entries of pairs (pointing into pairs, not copying). */
static rr_status pairs_to_entries(void ***out_ptrs, map_entry **out_entries,
                                  const rr_kv_pair *pairs, size_t n,
                                  const ProtobufCMessageDescriptor *desc)
{
    *out_ptrs = NULL;
    *out_entries = NULL;
    if (n == 0)
        return RR_OK;
    map_entry *entries = calloc(n, sizeof *entries);
    void **ptrs = calloc(n, sizeof *ptrs);
    if (entries == NULL || ptrs == NULL) {
        free(entries);
        free(ptrs);
        return RR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        protobuf_c_message_init(desc, &entries[i]);
        entries[i].key = pairs[i].key;
        entries[i].value = pairs[i].value;
        ptrs[i] = &entries[i];
    }
    *out_ptrs = ptrs;
    *out_entries = entries;
    return RR_OK;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return NULL;
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

/* ---- Request ---- */

uint8_t *rr_request_encode(const rr_request *r, size_t *len)
{
    Reqrun__V1__Request m = REQRUN__V1__REQUEST__INIT;
    m.id = (char *)r->id;
    m.tenant = (char *)r->tenant;
    m.body_hash.data = (uint8_t *)r->body_hash;
    m.body_hash.len = RR_SHA256_LEN;
    m.body.data = r->body;
    m.body.len = r->body_len;
    m.max_attempts = r->max_attempts;
    m.deadline_ms = r->deadline_ms;
    m.created_ms = r->created_ms;
    m.webhook_url = str_or_empty(r->webhook_url);
    m.has_idempotency_key = r->has_idempotency_key;
    m.record_by_ingress = r->record_by_ingress;
    map_entry *entries = NULL;
    if (pairs_to_entries((void ***)&m.metadata, &entries, r->metadata, r->n_metadata,
                         &reqrun__v1__request__metadata_entry__descriptor) != RR_OK)
        return NULL;
    m.n_metadata = r->n_metadata;
    uint8_t *out = pack(&m.base, len);
    free(m.metadata);
    free(entries);
    return out;
}

rr_status rr_request_decode(rr_request *out, const void *data, size_t len)
{
    memset(out, 0, sizeof *out);
    Reqrun__V1__Request *m = reqrun__v1__request__unpack(NULL, len, data);
    if (m == NULL)
        return RR_INVALID;
    rr_status s = RR_OK;
    if (!copy_bounded(out->id, sizeof out->id, m->id) ||
        !copy_bounded(out->tenant, sizeof out->tenant, m->tenant) ||
        m->body_hash.len != RR_SHA256_LEN) {
        s = RR_INVALID;
        goto out;
    }
    memcpy(out->body_hash, m->body_hash.data, RR_SHA256_LEN);
    out->body = malloc(m->body.len > 0 ? m->body.len : 1);
    if (out->body == NULL) {
        s = RR_NOMEM;
        goto out;
    }
    if (m->body.len > 0)
        memcpy(out->body, m->body.data, m->body.len);
    out->body_len = m->body.len;
    out->max_attempts = m->max_attempts;
    out->deadline_ms = m->deadline_ms;
    out->created_ms = m->created_ms;
    out->has_idempotency_key = m->has_idempotency_key;
    out->record_by_ingress = m->record_by_ingress;
    out->webhook_url = dup_or_null(m->webhook_url);
    s = copy_pairs_in(&out->metadata, &out->n_metadata, (map_entry **)m->metadata,
                      m->n_metadata);
out:
    reqrun__v1__request__free_unpacked(m, NULL);
    if (s != RR_OK)
        rr_request_free(out);
    return s;
}

void rr_request_free(rr_request *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free_pairs(r->metadata, r->n_metadata);
    free(r->webhook_url);
    memset(r, 0, sizeof *r);
}

/* ---- Record ---- */

uint8_t *rr_record_encode(const rr_record *r, size_t *len)
{
    uint8_t *out = NULL;
    Reqrun__V1__Record m = REQRUN__V1__RECORD__INIT;
    Reqrun__V1__Error err = REQRUN__V1__ERROR__INIT;
    Reqrun__V1__Attempt *attempts = NULL, **attempt_ptrs = NULL;
    Reqrun__V1__WebhookDelivery *hooks = NULL, **hook_ptrs = NULL;
    map_entry *entries = NULL;

    m.id = (char *)r->id;
    m.tenant = (char *)r->tenant;
    m.status = (Reqrun__V1__Status)r->state;
    m.body_hash.data = (uint8_t *)r->body_hash;
    m.body_hash.len = RR_SHA256_LEN;
    m.stream_seq = r->stream_seq;
    m.attempts = r->attempts;
    m.max_attempts = r->max_attempts;
    m.created_ms = r->created_ms;
    m.updated_ms = r->updated_ms;
    m.deadline_ms = r->deadline_ms;
    m.next_attempt_ms = r->next_attempt_ms;
    if (r->n_attempt_log > 0) {
        attempts = calloc(r->n_attempt_log, sizeof *attempts);
        attempt_ptrs = calloc(r->n_attempt_log, sizeof *attempt_ptrs);
        if (attempts == NULL || attempt_ptrs == NULL)
            goto out;
        for (size_t i = 0; i < r->n_attempt_log; i++) {
            const rr_attempt *a = &r->attempt_log[i];
            reqrun__v1__attempt__init(&attempts[i]);
            attempts[i].number = a->number;
            attempts[i].started_ms = a->started_ms;
            attempts[i].finished_ms = a->finished_ms;
            attempts[i].upstream_status = a->upstream_status;
            attempts[i].error_code = (char *)a->error_code;
            attempts[i].outcome = (Reqrun__V1__Outcome)a->outcome;
            attempts[i].executor = (char *)a->executor;
            attempt_ptrs[i] = &attempts[i];
        }
        m.n_attempt_log = r->n_attempt_log;
        m.attempt_log = attempt_ptrs;
    }
    if (r->last_error.code[0] != '\0') {
        err.code = (char *)r->last_error.code;
        err.message = str_or_empty(r->last_error.message);
        err.upstream_status = r->last_error.upstream_status;
        err.retryable = r->last_error.retryable;
        m.last_error = &err;
    }
    m.result.data = r->result;
    m.result.len = r->result_len;
    m.result_status = r->result_status;
    m.owner_delivery = r->owner_delivery;
    m.owner_instance = (char *)r->owner_instance;
    m.cancel_requested = r->cancel_requested;
    if (pairs_to_entries((void ***)&m.metadata, &entries, r->metadata, r->n_metadata,
                         &reqrun__v1__record__metadata_entry__descriptor) != RR_OK)
        goto out;
    m.n_metadata = r->n_metadata;
    m.webhook_url = str_or_empty(r->webhook_url);
    if (r->n_webhook_log > 0) {
        hooks = calloc(r->n_webhook_log, sizeof *hooks);
        hook_ptrs = calloc(r->n_webhook_log, sizeof *hook_ptrs);
        if (hooks == NULL || hook_ptrs == NULL)
            goto out;
        for (size_t i = 0; i < r->n_webhook_log; i++) {
            const rr_webhook_delivery *d = &r->webhook_log[i];
            reqrun__v1__webhook_delivery__init(&hooks[i]);
            hooks[i].number = d->number;
            hooks[i].at_ms = d->at_ms;
            hooks[i].http_status = d->http_status;
            hooks[i].error_code = (char *)d->error_code;
            hooks[i].delivered = d->delivered;
            hook_ptrs[i] = &hooks[i];
        }
        m.n_webhook_log = r->n_webhook_log;
        m.webhook_log = hook_ptrs;
    }
    out = pack(&m.base, len);
out:
    free(attempts);
    free(attempt_ptrs);
    free(hooks);
    free(hook_ptrs);
    free(m.metadata);
    free(entries);
    return out;
}

rr_status rr_record_decode(rr_record *out, const void *data, size_t len)
{
    memset(out, 0, sizeof *out);
    Reqrun__V1__Record *m = reqrun__v1__record__unpack(NULL, len, data);
    if (m == NULL)
        return RR_INVALID;
    rr_status s = RR_INVALID;
    if (!copy_bounded(out->id, sizeof out->id, m->id) ||
        !copy_bounded(out->tenant, sizeof out->tenant, m->tenant) ||
        !copy_bounded(out->owner_instance, sizeof out->owner_instance, m->owner_instance) ||
        m->body_hash.len != RR_SHA256_LEN || (unsigned)m->status > RR_STATE_EXPIRED)
        goto out;
    out->state = (rr_state)m->status;
    memcpy(out->body_hash, m->body_hash.data, RR_SHA256_LEN);
    out->stream_seq = m->stream_seq;
    out->attempts = m->attempts;
    out->max_attempts = m->max_attempts;
    out->created_ms = m->created_ms;
    out->updated_ms = m->updated_ms;
    out->deadline_ms = m->deadline_ms;
    out->next_attempt_ms = m->next_attempt_ms;
    out->result_status = m->result_status;
    out->owner_delivery = m->owner_delivery;
    out->cancel_requested = m->cancel_requested;
    s = RR_NOMEM;
    if (m->n_attempt_log > 0) {
        out->attempt_log = calloc(m->n_attempt_log, sizeof *out->attempt_log);
        if (out->attempt_log == NULL)
            goto out;
        out->n_attempt_log = m->n_attempt_log;
        for (size_t i = 0; i < m->n_attempt_log; i++) {
            const Reqrun__V1__Attempt *a = m->attempt_log[i];
            rr_attempt *d = &out->attempt_log[i];
            d->number = a->number;
            d->started_ms = a->started_ms;
            d->finished_ms = a->finished_ms;
            d->upstream_status = a->upstream_status;
            d->outcome = (unsigned)a->outcome <= RR_OUTCOME_EXPIRED ? (rr_outcome)a->outcome
                                                                    : RR_OUTCOME_UNSPECIFIED;
            if (!copy_bounded(d->error_code, sizeof d->error_code, a->error_code) ||
                !copy_bounded(d->executor, sizeof d->executor, a->executor)) {
                s = RR_INVALID;
                goto out;
            }
        }
    }
    if (m->last_error != NULL) {
        if (!copy_bounded(out->last_error.code, sizeof out->last_error.code,
                          m->last_error->code)) {
            s = RR_INVALID;
            goto out;
        }
        out->last_error.message = dup_or_null(m->last_error->message);
        out->last_error.upstream_status = m->last_error->upstream_status;
        out->last_error.retryable = m->last_error->retryable;
    }
    if (m->result.len > 0) {
        out->result = malloc(m->result.len);
        if (out->result == NULL)
            goto out;
        memcpy(out->result, m->result.data, m->result.len);
        out->result_len = m->result.len;
    }
    if (copy_pairs_in(&out->metadata, &out->n_metadata, (map_entry **)m->metadata,
                      m->n_metadata) != RR_OK)
        goto out;
    out->webhook_url = dup_or_null(m->webhook_url);
    if (m->n_webhook_log > 0) {
        out->webhook_log = calloc(m->n_webhook_log, sizeof *out->webhook_log);
        if (out->webhook_log == NULL)
            goto out;
        out->n_webhook_log = m->n_webhook_log;
        for (size_t i = 0; i < m->n_webhook_log; i++) {
            const Reqrun__V1__WebhookDelivery *h = m->webhook_log[i];
            rr_webhook_delivery *d = &out->webhook_log[i];
            d->number = h->number;
            d->at_ms = h->at_ms;
            d->http_status = h->http_status;
            d->delivered = h->delivered;
            if (!copy_bounded(d->error_code, sizeof d->error_code, h->error_code)) {
                s = RR_INVALID;
                goto out;
            }
        }
    }
    s = RR_OK;
out:
    reqrun__v1__record__free_unpacked(m, NULL);
    if (s != RR_OK)
        rr_record_free(out);
    return s;
}

void rr_record_free(rr_record *r)
{
    if (r == NULL)
        return;
    free(r->attempt_log);
    free(r->last_error.message);
    free(r->result);
    free_pairs(r->metadata, r->n_metadata);
    free(r->webhook_url);
    free(r->webhook_log);
    memset(r, 0, sizeof *r);
}

rr_status rr_record_from_request(rr_record *out, const rr_request *req, rr_state state,
                                 uint64_t stream_seq, int64_t now_ms)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, req->id, sizeof out->id);
    memcpy(out->tenant, req->tenant, sizeof out->tenant);
    out->state = state;
    memcpy(out->body_hash, req->body_hash, RR_SHA256_LEN);
    out->stream_seq = stream_seq;
    out->max_attempts = req->max_attempts;
    out->created_ms = req->created_ms != 0 ? req->created_ms : now_ms;
    out->updated_ms = now_ms;
    out->deadline_ms = req->deadline_ms;
    if (copy_pairs(&out->metadata, &out->n_metadata, req->metadata, req->n_metadata) != RR_OK)
        return RR_NOMEM;
    if (req->webhook_url != NULL && (out->webhook_url = strdup(req->webhook_url)) == NULL) {
        rr_record_free(out);
        return RR_NOMEM;
    }
    return RR_OK;
}

rr_status rr_record_add_attempt(rr_record *r, const rr_attempt *a)
{
    rr_attempt *grown = realloc(r->attempt_log, (r->n_attempt_log + 1) * sizeof *grown);
    if (grown == NULL)
        return RR_NOMEM;
    grown[r->n_attempt_log++] = *a;
    r->attempt_log = grown;
    return RR_OK;
}

rr_attempt *rr_record_last_attempt(rr_record *r)
{
    return r->n_attempt_log > 0 ? &r->attempt_log[r->n_attempt_log - 1] : NULL;
}

rr_status rr_record_set_error(rr_record *r, const char *code, const char *message,
                              uint32_t upstream_status, bool retryable)
{
    char *copy = NULL;
    if (message != NULL && (copy = strdup(message)) == NULL)
        return RR_NOMEM;
    free(r->last_error.message);
    snprintf(r->last_error.code, sizeof r->last_error.code, "%s", code);
    r->last_error.message = copy;
    r->last_error.upstream_status = upstream_status;
    r->last_error.retryable = retryable;
    return RR_OK;
}

rr_status rr_record_set_result(rr_record *r, const void *body, size_t len, uint32_t status)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return RR_NOMEM;
        memcpy(copy, body, len);
    }
    free(r->result);
    r->result = copy;
    r->result_len = len;
    r->result_status = status;
    return RR_OK;
}

#define RR_WEBHOOK_LOG_KEEP 20

rr_status rr_record_add_webhook_delivery(rr_record *r, const rr_webhook_delivery *d)
{
    if (r->n_webhook_log >= RR_WEBHOOK_LOG_KEEP) {
        memmove(r->webhook_log, r->webhook_log + 1,
                (r->n_webhook_log - 1) * sizeof *r->webhook_log);
        r->webhook_log[r->n_webhook_log - 1] = *d;
        return RR_OK;
    }
    rr_webhook_delivery *grown =
        realloc(r->webhook_log, (r->n_webhook_log + 1) * sizeof *grown);
    if (grown == NULL)
        return RR_NOMEM;
    grown[r->n_webhook_log++] = *d;
    r->webhook_log = grown;
    return RR_OK;
}

void rr_event_from_record(rr_event *out, const rr_record *r, uint64_t revision, int64_t now_ms)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, r->id, sizeof out->id);
    memcpy(out->tenant, r->tenant, sizeof out->tenant);
    out->state = r->state;
    out->attempt = r->attempts;
    snprintf(out->error_code, sizeof out->error_code, "%s", r->last_error.code);
    out->revision = revision;
    out->created_ms = r->created_ms;
    out->updated_ms = r->updated_ms;
    out->at_ms = now_ms;
    snprintf(out->webhook_url, sizeof out->webhook_url, "%s",
             r->webhook_url != NULL ? r->webhook_url : "");
    out->result_status = r->result_status;
}

/* ---- Event ---- */

uint8_t *rr_event_encode(const rr_event *e, size_t *len)
{
    Reqrun__V1__Event m = REQRUN__V1__EVENT__INIT;
    m.id = (char *)e->id;
    m.tenant = (char *)e->tenant;
    m.status = (Reqrun__V1__Status)e->state;
    m.attempt = e->attempt;
    m.error_code = (char *)e->error_code;
    m.revision = e->revision;
    m.created_ms = e->created_ms;
    m.updated_ms = e->updated_ms;
    m.at_ms = e->at_ms;
    m.webhook_url = (char *)e->webhook_url;
    m.result_status = e->result_status;
    return pack(&m.base, len);
}

rr_status rr_event_decode(rr_event *out, const void *data, size_t len)
{
    memset(out, 0, sizeof *out);
    Reqrun__V1__Event *m = reqrun__v1__event__unpack(NULL, len, data);
    if (m == NULL)
        return RR_INVALID;
    rr_status s = RR_OK;
    if (!copy_bounded(out->id, sizeof out->id, m->id) ||
        !copy_bounded(out->tenant, sizeof out->tenant, m->tenant) ||
        !copy_bounded(out->error_code, sizeof out->error_code, m->error_code) ||
        !copy_bounded(out->webhook_url, sizeof out->webhook_url, m->webhook_url) ||
        (unsigned)m->status > RR_STATE_EXPIRED)
        s = RR_INVALID;
    out->state = (rr_state)m->status;
    out->attempt = m->attempt;
    out->revision = m->revision;
    out->created_ms = m->created_ms;
    out->updated_ms = m->updated_ms;
    out->at_ms = m->at_ms;
    out->result_status = m->result_status;
    reqrun__v1__event__free_unpacked(m, NULL);
    return s;
}
