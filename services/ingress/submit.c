/* The submit path of the ingress. Hot path for wait:true without a key: parse, publish,
 * wait for the republished terminal record; the executor creates the record. */
#include "submit.h"

#include "waiters.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"
#include "reqrun/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_CREATE_TRIES 3

static void unavailable(rr_reply *out, bool has_key, const char *why)
{
    rr_reply_error(out, RR_E_UNAVAILABLE,
                   "the request could not be stored (%s); retry with the same idempotency key",
                   why);
    out->retry_after_s = 1;
    /* Without a key a retry could run the request twice if the publish landed after all. */
    out->should_retry = has_key ? 1 : 0;
}

static void key_reused(rr_reply *out, const char *id)
{
    rr_reply_error(out, RR_E_IDEMPOTENCY_KEY_REUSED,
                   "this idempotency key was already used with a different request body "
                   "(request %s)",
                   id);
    snprintf(out->request_id, sizeof out->request_id, "%s", id);
}

void rr_submit_wait_existing(rr_ingress *ing, const char *tenant, const char *id,
                             int64_t wait_ms, rr_record *rec, uint64_t *rev)
{
    if (rr_state_terminal(rec->state) || wait_ms <= 0 || atomic_load(&ing->shutting_down))
        return;
    rr_waiter *w = rr_waiters_register(ing->waiters, tenant, id);
    if (w == NULL)
        return;
    /* Re-read after registering: a record that turned terminal in between is seen. */
    rr_record fresh;
    uint64_t fresh_rev = 0;
    if (rr_store_get(ing->bus, tenant, id, &fresh, &fresh_rev) == RR_OK) {
        rr_record_free(rec);
        *rec = fresh;
        *rev = fresh_rev;
    }
    if (!rr_state_terminal(rec->state) &&
        rr_waiter_wait(ing->waiters, w, wait_ms, &fresh, &fresh_rev) == RR_OK) {
        rr_record_free(rec);
        *rec = fresh;
        *rev = fresh_rev;
    }
    rr_waiters_unregister(ing->waiters, w);
}

/* A record already exists under this id: replay, join or refuse. */
static void answer_existing(rr_ingress *ing, const rr_chatreq *cr, int64_t wait_ms,
                            rr_record *rec, uint64_t rev, rr_reply *out)
{
    if (memcmp(rec->body_hash, cr->body_hash, RR_SHA256_LEN) != 0) {
        key_reused(out, rec->id);
        return;
    }
    rr_submit_wait_existing(ing, rec->tenant, rec->id, wait_ms, rec, &rev);
    rr_reply_from_record(out, rec);
    out->replayed = rr_state_terminal(rec->state);
    rr_counter_add(ing->m.submits, out->replayed ? "replayed" : "joined", NULL, 1);
}

/* Makes sure the record exists before anything but a completion is answered. *rec is
 * the record now stored (ours or the one that was faster). RR_OK even when the KV write
 * kept failing: the message is durable and the executor creates missing records. */
static rr_status ensure_record(rr_ingress *ing, const rr_request *req, uint64_t seq,
                               rr_record *rec, uint64_t *rev)
{
    rr_status s = rr_record_from_request(rec, req, RR_STATE_QUEUED, seq, rr_now_ms());
    if (s != RR_OK)
        return s;
    for (int i = 0; i < RECORD_CREATE_TRIES; i++) {
        s = rr_store_put(ing->bus, rec, 0, rev, NULL);
        if (s == RR_OK)
            return RR_OK;
        if (s == RR_EXISTS) {
            rr_record found;
            if (rr_store_get(ing->bus, req->tenant, req->id, &found, rev) == RR_OK) {
                rr_record_free(rec);
                *rec = found;
                return RR_OK;
            }
        }
    }
    rr_log(RR_LOG_WARN, RR_LOG_CTX(.request_id = req->id, .tenant = req->tenant),
           "record not created after publish (%s); the executor will create it",
           rr_status_str(s));
    return RR_OK;
}

static void answer_after_publish(rr_ingress *ing, const rr_chatreq *cr, const rr_request *req,
                                 uint64_t seq, bool duplicate, bool waited, rr_reply *out)
{
    rr_record rec;
    uint64_t rev = 0;
    if (ensure_record(ing, req, seq, &rec, &rev) != RR_OK) {
        rr_reply_async(out, req->id, RR_STATE_QUEUED, req->created_ms);
        return;
    }
    if (memcmp(rec.body_hash, cr->body_hash, RR_SHA256_LEN) != 0) {
        key_reused(out, req->id);
    } else if (duplicate || (waited && rr_state_terminal(rec.state))) {
        /* another submission of this key was first, or ours finished just as the wait
         * ran out: answer with the current outcome */
        rr_reply_from_record(out, &rec);
        out->replayed = duplicate && rr_state_terminal(rec.state);
    } else {
        /* our own submission: wait:false (or a wait that ran out) gets the async object.
         * It shows the request as accepted; when the executor was already done, that is
         * "processing" (GET has the outcome). */
        rr_state shown = rr_state_terminal(rec.state) ? RR_STATE_PROCESSING : rec.state;
        rr_reply_async(out, rec.id, shown, rec.created_ms);
    }
    rr_record_free(&rec);
}

static bool resolve_key(const rr_chatreq *cr, const char *header_key, const char **key,
                        rr_reply *out)
{
    *key = cr->idempotency_key;
    if (header_key == NULL)
        return true;
    if (!rr_idem_key_valid(header_key, strlen(header_key))) {
        rr_reply_error(out, RR_E_INVALID_IDEMPOTENCY_KEY,
                       "Idempotency-Key must be 1 to 255 printable ASCII characters");
        return false;
    }
    if (*key != NULL && strcmp(*key, header_key) != 0) {
        rr_reply_error(out, RR_E_IDEMPOTENCY_KEY_MISMATCH,
                       "the Idempotency-Key header and the idempotency_key field differ");
        return false;
    }
    *key = header_key;
    return true;
}

static void publish_failed(rr_reply *out, rr_status s, bool has_key)
{
    switch (s) {
    case RR_LIMIT:
        rr_reply_error(out, RR_E_TOO_MANY_PENDING_REQUESTS,
                       "this tenant has too many requests not yet finished; retry later");
        out->retry_after_s = 1;
        out->should_retry = 1; /* nothing was stored */
        break;
    case RR_FULL:
        unavailable(out, true, "the request store is full");
        out->retry_after_s = 5;
        out->should_retry = 1; /* refused before storing */
        break;
    case RR_TOO_LARGE:
        rr_reply_error(out, RR_E_BODY_TOO_LARGE, "the request is larger than NATS accepts");
        break;
    default:
        unavailable(out, has_key, rr_status_str(s));
        break;
    }
}

void rr_submit(rr_ingress *ing, const rr_submit_input *in, rr_reply *out)
{
    rr_chatreq cr;
    rr_api_error err;
    rr_status s = rr_chatreq_parse(&cr, in->body, in->len, &ing->limits, &err);
    if (s != RR_OK) {
        if (s == RR_INVALID)
            rr_reply_api_error(out, &err);
        else
            rr_reply_error(out, RR_E_INTERNAL, "out of memory");
        rr_counter_add(ing->m.submits, "rejected", NULL, 1);
        return;
    }
    const char *key = NULL;
    if (!resolve_key(&cr, in->header_key, &key, out)) {
        rr_chatreq_free(&cr);
        rr_counter_add(ing->m.submits, "rejected", NULL, 1);
        return;
    }
    const rr_webhook_tenant *hooks = rr_webhook_secrets_find(ing->webhook_secrets, in->tenant);
    if (cr.webhook_url == NULL && hooks != NULL && hooks->default_url[0] != '\0') {
        /* the tenant's default webhook, fixed on the request when it is accepted */
        cr.webhook_url = strdup(hooks->default_url);
    } else if (cr.webhook_url != NULL) {
        char why[128];
        rr_api_error e;
        if (!rr_webhook_url_acceptable(&ing->webhook_policy, cr.webhook_url, why, sizeof why))
            rr_api_error_set(&e, RR_E_INVALID_WEBHOOK_URL, "reqrun.webhook_url", "%s", why);
        else if (hooks == NULL)
            rr_api_error_set(&e, RR_E_WEBHOOK_SECRET_NOT_CONFIGURED, "reqrun.webhook_url",
                             "no webhook secret is configured for this tenant");
        else
            e.code = RR_E__COUNT;
        if (e.code != RR_E__COUNT) {
            rr_reply_api_error(out, &e);
            rr_chatreq_free(&cr);
            rr_counter_add(ing->m.submits, "rejected", NULL, 1);
            return;
        }
    }
    char id[RR_ID_BUF];
    if (key != NULL)
        rr_id_derive(id, in->tenant, key, strlen(key));
    else if (rr_id_random(id) != RR_OK) {
        rr_reply_error(out, RR_E_INTERNAL, "no random id available");
        rr_chatreq_free(&cr);
        return;
    }
    snprintf(out->request_id, sizeof out->request_id, "%s", id);
    int64_t wait_ms = atomic_load(&ing->shutting_down) ? 0 : cr.wait_ms;

    /* 1. With a key, the stored record is the idempotency guard. */
    if (key != NULL) {
        rr_record rec;
        uint64_t rev = 0;
        s = rr_store_get(ing->bus, in->tenant, id, &rec, &rev);
        if (s == RR_OK) {
            answer_existing(ing, &cr, wait_ms, &rec, rev, out);
            rr_record_free(&rec);
            rr_chatreq_free(&cr);
            return;
        }
        if (s != RR_NOT_FOUND) {
            unavailable(out, true, rr_status_str(s));
            rr_chatreq_free(&cr);
            return;
        }
    }

    /* 2. Publish: the stream message is what makes the request accepted. */
    rr_request req;
    size_t enc_len = 0;
    uint8_t *enc = NULL;
    if (rr_chatreq_to_request(&cr, &req, id, in->tenant, key != NULL, rr_now_ms()) == RR_OK) {
        req.record_by_ingress = wait_ms == 0;
        enc = rr_request_encode(&req, &enc_len);
    }
    if (enc == NULL) {
        rr_reply_error(out, RR_E_INTERNAL, "out of memory");
        rr_request_free(&req);
        rr_chatreq_free(&cr);
        return;
    }
    char msg_id[128];
    char hash_hex[RR_SHA256_HEX_BUF];
    rr_hex(cr.body_hash, 8, hash_hex);
    snprintf(msg_id, sizeof msg_id, "%s.%s", id, hash_hex);

    rr_waiter *w = wait_ms > 0 ? rr_waiters_register(ing->waiters, in->tenant, id) : NULL;
    rr_pub_ack ack = {0};
    s = rr_bus_publish_request(ing->bus, in->tenant, msg_id, enc, enc_len,
                               ing->cfg->publish_timeout_ms, &ack);
    free(enc);
    if (s != RR_OK) {
        rr_waiters_unregister(ing->waiters, w);
        publish_failed(out, s, key != NULL);
        rr_log(RR_LOG_WARN, RR_LOG_CTX(.request_id = id, .tenant = in->tenant),
               "publish failed: %s", rr_status_str(s));
        rr_request_free(&req);
        rr_chatreq_free(&cr);
        return;
    }
    rr_counter_add(ing->m.submits, ack.duplicate ? "duplicate" : "accepted", NULL, 1);

    /* 3./4. Wait for the outcome, or make sure the record exists and answer at once. */
    bool answered = false;
    if (w != NULL) {
        rr_record rec;
        uint64_t rev = 0;
        s = RR_TIMEOUT;
        /* A duplicate publish means another submission of this key was first: its
         * record may already be terminal, so look before waiting. */
        if (ack.duplicate && rr_store_get(ing->bus, in->tenant, id, &rec, &rev) == RR_OK) {
            if (rr_state_terminal(rec.state))
                s = RR_OK;
            else
                rr_record_free(&rec);
        }
        if (s != RR_OK)
            s = rr_waiter_wait(ing->waiters, w, wait_ms, &rec, &rev);
        rr_waiters_unregister(ing->waiters, w);
        if (s == RR_OK) {
            if (memcmp(rec.body_hash, cr.body_hash, RR_SHA256_LEN) != 0) {
                key_reused(out, id);
            } else {
                rr_reply_from_record(out, &rec);
                out->replayed = ack.duplicate;
            }
            rr_record_free(&rec);
            answered = true;
            rr_counter_add(ing->m.wait_outcomes, "completed", NULL, 1);
        } else {
            rr_counter_add(ing->m.wait_outcomes, "async", NULL, 1);
        }
    }
    if (!answered)
        answer_after_publish(ing, &cr, &req, ack.seq, ack.duplicate, w != NULL, out);
    rr_request_free(&req);
    rr_chatreq_free(&cr);
}
