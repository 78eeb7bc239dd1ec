/* Provisioning (REQRUN_PROVISION=1) or verification of the NATS resources of DESIGN §5:
 * streams, consumers, KV buckets, and the server's max payload. */
#include "bus_internal.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX_AGE_S (72 * 3600)
#define EVENTS_DEDUP_S 120
#define WEBHOOKS_ACK_WAIT_S 60
#define WEBHOOKS_MAX_ACK_PENDING 10000
/* A fresh or recovering cluster answers JetStream API calls late until its meta group
 * and streams have leaders: transient errors are retried for this long. */
#define SETUP_RETRY_MS 60000
#define SETUP_RETRY_FIRST_MS 250
#define SETUP_RETRY_MAX_MS 4000

/* ---- provisioning (DESIGN §5) ---- */

typedef struct setup_ctx {
    rr_bus *bus;
    const rr_config *cfg;
    char *err;
    size_t errlen;
} setup_ctx;

static rr_status setup_fail(setup_ctx *c, const char *what, natsStatus s, jsErrCode jerr)
{
    snprintf(c->err, c->errlen, "%s: %s (js error %d): %s", what, natsStatus_GetText(s),
             (int)jerr, nats_GetLastError(NULL) != NULL ? nats_GetLastError(NULL) : "");
    return s == NATS_OK ? RR_CONFIG : rr_bus_status_of(s);
}

static rr_status mismatch(setup_ctx *c, const char *resource, const char *field)
{
    snprintf(c->err, c->errlen,
             "%s differs from the configuration (%s); run reqrun-ingress --provision or set "
             "REQRUN_PROVISION=1",
             resource, field);
    return RR_CONFIG;
}

/* Adds the stream, or updates it when it exists with other settings. */
static rr_status ensure_stream(setup_ctx *c, jsStreamConfig *sc)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, c->bus->js, sc, NULL, &jerr);
    if (s != NATS_OK && jerr == JS_ERR_STREAM_NAME_EXISTS)
        s = js_UpdateStream(&si, c->bus->js, sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return setup_fail(c, sc->Name, s, jerr);
    return RR_OK;
}

/* Limits: 0 and -1 both mean "none" depending on who wrote them. */
static int64_t limit_of(int64_t v)
{
    return v <= 0 ? -1 : v;
}

static rr_status verify_stream(setup_ctx *c, const jsStreamConfig *want)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->bus->js, want->Name, NULL, &jerr);
    if (s != NATS_OK)
        return setup_fail(c, want->Name, s, jerr);
    const jsStreamConfig *got = si->Config;
    rr_status r = RR_OK;
    if (got->Retention != want->Retention)
        r = mismatch(c, want->Name, "retention");
    else if (got->Storage != want->Storage)
        r = mismatch(c, want->Name, "storage");
    else if (got->Replicas != want->Replicas)
        r = mismatch(c, want->Name, "replicas");
    else if (got->MaxAge != want->MaxAge)
        r = mismatch(c, want->Name, "max age");
    else if (got->Duplicates != want->Duplicates)
        r = mismatch(c, want->Name, "duplicate window");
    else if (limit_of(got->MaxMsgsPerSubject) != limit_of(want->MaxMsgsPerSubject))
        r = mismatch(c, want->Name, "max messages per subject");
    else if (limit_of(got->MaxBytes) != limit_of(want->MaxBytes))
        r = mismatch(c, want->Name, "max bytes");
    jsStreamInfo_Destroy(si);
    return r;
}

static rr_status setup_requests_stream(setup_ctx *c)
{
    const rr_config *cfg = c->cfg;
    const char *subjects[] = {RR_SUBJ_REQUESTS ">"};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = RR_STREAM_REQUESTS;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_WorkQueuePolicy;
    sc.Storage = js_FileStorage;
    sc.Replicas = cfg->replicas;
    sc.Duplicates = cfg->dedup_window_s * NS_PER_S;
    sc.MaxAge = (cfg->deadline_s + 3600) * NS_PER_S;
    /* The per-tenant pending cap, enforced atomically by the server: one subject per
     * tenant, new messages refused once it holds REQRUN_TENANT_MAX_PENDING. */
    sc.MaxMsgsPerSubject = cfg->tenant_max_pending;
    sc.Discard = js_DiscardNew;
    sc.DiscardNewPerSubject = true;
    sc.MaxBytes = cfg->stream_max_bytes;
    sc.MaxMsgSize = (int32_t)(cfg->max_body_bytes + RR_PAYLOAD_HEADROOM);
    return cfg->provision ? ensure_stream(c, &sc) : verify_stream(c, &sc);
}

static rr_status setup_events_stream(setup_ctx *c)
{
    /* reqrun.webhooks.> holds the terminal events of requests that have a webhook: the
     * dispatcher's consumer filters on it instead of receiving every event (2.9 allows
     * one filter subject per consumer). */
    const char *subjects[] = {RR_SUBJ_EVENTS ">", RR_SUBJ_WEBHOOKS ">"};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = RR_STREAM_EVENTS;
    sc.Subjects = subjects;
    sc.SubjectsLen = 2;
    sc.Retention = js_LimitsPolicy;
    sc.Storage = js_FileStorage;
    sc.Replicas = c->cfg->replicas;
    sc.MaxAge = (int64_t)EVENTS_MAX_AGE_S * NS_PER_S;
    sc.Duplicates = (int64_t)EVENTS_DEDUP_S * NS_PER_S;
    return c->cfg->provision ? ensure_stream(c, &sc) : verify_stream(c, &sc);
}

static rr_status ensure_consumer(setup_ctx *c, const char *stream, jsConsumerConfig *cc)
{
    jsErrCode jerr = 0;
    if (c->cfg->provision) {
        jsConsumerInfo *ci = NULL;
        /* On 2.9 adding an existing durable with other settings updates it. */
        natsStatus s = js_AddConsumer(&ci, c->bus->js, stream, cc, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (s != NATS_OK)
            return setup_fail(c, cc->Durable, s, jerr);
        return RR_OK;
    }
    jsConsumerInfo *ci = NULL;
    natsStatus s = js_GetConsumerInfo(&ci, c->bus->js, stream, cc->Durable, NULL, &jerr);
    if (s != NATS_OK)
        return setup_fail(c, cc->Durable, s, jerr);
    const jsConsumerConfig *got = ci->Config;
    rr_status r = RR_OK;
    if (got->AckPolicy != cc->AckPolicy)
        r = mismatch(c, cc->Durable, "ack policy");
    else if (got->AckWait != cc->AckWait)
        r = mismatch(c, cc->Durable, "ack wait");
    else if (got->MaxDeliver != cc->MaxDeliver)
        r = mismatch(c, cc->Durable, "max deliver");
    else if (got->MaxAckPending != cc->MaxAckPending)
        r = mismatch(c, cc->Durable, "max ack pending");
    else if (got->BackOffLen != 0)
        r = mismatch(c, cc->Durable, "backoff must be unset");
    else if (cc->FilterSubject != NULL &&
             (got->FilterSubject == NULL || strcmp(got->FilterSubject, cc->FilterSubject) != 0))
        r = mismatch(c, cc->Durable, "filter subject");
    jsConsumerInfo_Destroy(ci);
    return r;
}

static rr_status setup_consumers(setup_ctx *c)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = RR_CONSUMER_EXECUTORS;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = c->cfg->ack_wait_s * NS_PER_S;
    cc.MaxDeliver = rr_config_max_deliver(c->cfg);
    cc.MaxAckPending = c->cfg->max_ack_pending;
    cc.MaxWaiting = 512;
    rr_status r = ensure_consumer(c, RR_STREAM_REQUESTS, &cc);
    if (r != RR_OK)
        return r;

    jsConsumerConfig_Init(&cc);
    cc.Durable = RR_CONSUMER_WEBHOOKS;
    cc.FilterSubject = RR_SUBJ_WEBHOOKS ">";
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = (int64_t)WEBHOOKS_ACK_WAIT_S * NS_PER_S;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = WEBHOOKS_MAX_ACK_PENDING;
    cc.MaxWaiting = 512;
    return ensure_consumer(c, RR_STREAM_EVENTS, &cc);
}

/* KV buckets are streams KV_<bucket>; js_CreateKeyValue creates one and is idempotent
 * for the same settings. Changed settings are applied by updating the stream. */
static rr_status setup_bucket(setup_ctx *c, rr_kv_bucket which, int64_t ttl_s, bool republish)
{
    rr_bus *bus = c->bus;
    const char *name = rr_bus_bucket_names[which];
    char stream[64], src[96], dst[64];
    snprintf(stream, sizeof stream, "KV_%s", name);
    snprintf(src, sizeof src, "$KV.%s.>", name);
    snprintf(dst, sizeof dst, "%s>", RR_SUBJ_RECORDS);
    jsRePublish rp;
    jsRePublish_Init(&rp);
    rp.Source = src;
    rp.Destination = dst;
    natsStatus s;

    if (c->cfg->provision) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = name;
        kc.History = 1;
        kc.TTL = ttl_s * NS_PER_S;
        kc.StorageType = js_FileStorage;
        kc.Replicas = (int)c->cfg->replicas;
        kc.RePublish = republish ? &rp : NULL;
        s = js_CreateKeyValue(&bus->kv[which], bus->js, &kc);
        if (s != NATS_OK) {
            /* Exists with other settings: update the underlying stream. */
            jsStreamInfo *si = NULL;
            jsErrCode jerr = 0;
            s = js_GetStreamInfo(&si, bus->js, stream, NULL, &jerr);
            if (s != NATS_OK)
                return setup_fail(c, stream, s, jerr);
            jsStreamConfig *sc = si->Config;
            sc->MaxAge = kc.TTL;
            sc->Replicas = kc.Replicas;
            jsRePublish *theirs = sc->RePublish;
            sc->RePublish = kc.RePublish;
            jsStreamInfo *updated = NULL;
            s = js_UpdateStream(&updated, bus->js, sc, NULL, &jerr);
            sc->RePublish = theirs; /* ours is on the stack: the info frees its own */
            jsStreamInfo_Destroy(si);
            jsStreamInfo_Destroy(updated);
            if (s != NATS_OK)
                return setup_fail(c, stream, s, jerr);
            s = js_KeyValue(&bus->kv[which], bus->js, name);
        }
    } else {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        s = js_GetStreamInfo(&si, bus->js, stream, NULL, &jerr);
        if (s != NATS_OK)
            return setup_fail(c, stream, s, jerr);
        rr_status r = RR_OK;
        const jsStreamConfig *sc = si->Config;
        if (sc->MaxAge != ttl_s * NS_PER_S)
            r = mismatch(c, stream, "ttl");
        else if (sc->Replicas != c->cfg->replicas)
            r = mismatch(c, stream, "replicas");
        else if (republish && (sc->RePublish == NULL || sc->RePublish->Destination == NULL ||
                               strcmp(sc->RePublish->Destination, dst) != 0))
            r = mismatch(c, stream, "republish");
        jsStreamInfo_Destroy(si);
        if (r != RR_OK)
            return r;
        s = js_KeyValue(&bus->kv[which], bus->js, name);
    }
    if (s != NATS_OK)
        return setup_fail(c, name, s, 0);
    return RR_OK;
}

static rr_status setup_once(setup_ctx *c)
{
    rr_status r;
    if ((r = setup_requests_stream(c)) != RR_OK || (r = setup_events_stream(c)) != RR_OK ||
        (r = setup_consumers(c)) != RR_OK ||
        (r = setup_bucket(c, RR_KV_RECORDS, c->cfg->record_ttl_s, true)) != RR_OK ||
        (r = setup_bucket(c, RR_KV_NONCES, RR_NONCE_TTL_S, false)) != RR_OK)
        return r;
    return RR_OK;
}

rr_status rr_bus_setup(rr_bus *bus, const rr_config *cfg, char *err, size_t errlen)
{
    setup_ctx c = {bus, cfg, err, errlen};
    int64_t max_payload = natsConnection_GetMaxPayload(bus->nc);
    if (max_payload < cfg->max_body_bytes + RR_PAYLOAD_HEADROOM) {
        snprintf(err, errlen,
                 "the NATS server's max_payload (%lld) is below REQRUN_MAX_BODY_BYTES + 64 KiB "
                 "(%lld): raise max_payload (8MB) or lower REQRUN_MAX_BODY_BYTES",
                 (long long)max_payload,
                 (long long)(cfg->max_body_bytes + RR_PAYLOAD_HEADROOM));
        return RR_CONFIG;
    }
    rr_backoff b = rr_backoff_start(SETUP_RETRY_FIRST_MS, SETUP_RETRY_MAX_MS, SETUP_RETRY_MS);
    for (;;) {
        rr_status r = setup_once(&c);
        /* a request the server refused to pass on times out too: not worth retrying */
        if ((r != RR_TIMEOUT && r != RR_UNAVAILABLE) || atomic_load(&bus->denied) ||
            rr_bus_stop_signal_pending())
            return r;
        int64_t wait_ms = b.wait_ms;
        if (!rr_backoff_wait(&b))
            return r;
        rr_warn("NATS resources: %s; retrying after %lld ms", err, (long long)wait_ms);
    }
}

