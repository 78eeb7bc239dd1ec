/* NATS and JetStream for ReqRun: the only file that includes nats.h. */
#include "reqrun/bus.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define CONNECT_RETRY_MS 30000
#define JS_API_WAIT_MS 5000
#define EVENTS_MAX_AGE_S (72 * 3600)
#define EVENTS_DEDUP_S 120
#define WEBHOOKS_ACK_WAIT_S 60
#define WEBHOOKS_MAX_ACK_PENDING 10000
/* JetStream error codes (nats-server errors.json). */
#define JS_ERR_STREAM_NAME_EXISTS 10058
#define JS_ERR_WRONG_LAST_SEQUENCE 10071
#define JS_ERR_STORE_FAILED 10077

struct rr_bus {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv[2]; /* indexed by rr_kv_bucket */
    atomic_uint_fast64_t reconnects;
    atomic_bool connected;
    atomic_bool closing;
    atomic_int_fast64_t ready_checked_ms;
    atomic_bool ready_cached;
};

struct rr_bus_sub {
    rr_bus *bus;
    natsSubscription *sub;
    rr_bus_msg_fn fn;
    void *ctx;
};

struct rr_bus_consumer {
    rr_bus *bus;
    natsSubscription *sub;
    /* continuous mode only */
    rr_delivery_fn fn;
    void *ctx;
    char inbox[96];
    char next_subject[192];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int max_held;
    int held;
    int outstanding;          /* messages the current request may still bring */
    int64_t expires_at_ms;    /* monotonic */
    bool stopping;
    bool watchdog_exit;
    pthread_t watchdog;
    bool continuous;
};

static void wait_pull_over(rr_bus_consumer *c);

struct rr_delivery {
    rr_bus *bus;
    natsMsg *msg;
    rr_delivery_meta meta;
};

static const char *const bucket_names[2] = {RR_BUCKET_RECORDS, RR_BUCKET_NONCES};

/* ---- errors ---- */

static rr_status from_nats(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return RR_OK;
    case NATS_NOT_FOUND:
        return RR_NOT_FOUND;
    case NATS_TIMEOUT:
        return RR_TIMEOUT;
    case NATS_NO_MEMORY:
        return RR_NOMEM;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_NO_SERVER:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_DRAINING:
        return RR_UNAVAILABLE;
    case NATS_MAX_PAYLOAD:
        return RR_TOO_LARGE;
    default:
        return RR_ERR;
    }
}

/* ---- connection ---- */

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    rr_bus *bus = closure;
    atomic_store(&bus->connected, false);
    atomic_store(&bus->ready_cached, false);
    if (!atomic_load(&bus->closing))
        rr_warn("nats disconnected");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    rr_bus *bus = closure;
    atomic_fetch_add(&bus->reconnects, 1);
    atomic_store(&bus->connected, true);
    rr_info("nats reconnected");
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    rr_error("nats async error: %s", natsStatus_GetText(err));
}

/* Acks of asynchronous JetStream publishes (events): log failures, free the message. */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pa;
    (void)closure;
    if (pae != NULL)
        rr_warn("async publish to %s failed: %s", natsMsg_GetSubject(msg),
                pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
    natsMsg_Destroy(msg);
}

static bool stop_signal_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static natsStatus build_options(natsOptions **out, const rr_config *cfg, const char *name,
                                rr_bus *bus)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, cfg->nats_url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, 100, 1000);
    /* Fail rather than buffer while reconnecting, and fail requests (PubAck waits, KV
     * reads) the moment the connection drops: callers answer 503 or retry. */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 0);
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(o, true);
    /* Notice a silent partition within seconds, not the 4 minutes of the defaults. */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 3);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    /* Write each protocol message in the caller's thread: latency over batching. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, bus);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, bus);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, bus);
    if (s == NATS_OK && cfg->nats_creds != NULL)
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->nats_creds, NULL);
    if (s == NATS_OK && cfg->nats_user != NULL)
        s = natsOptions_SetUserInfo(o, cfg->nats_user, cfg->nats_password);
    if (s == NATS_OK && cfg->nats_tls_ca != NULL) {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(o, cfg->nats_tls_ca);
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

rr_status rr_bus_connect(rr_bus **out, const rr_config *cfg, const char *client_name)
{
    *out = NULL;
    rr_bus *bus = calloc(1, sizeof *bus);
    if (bus == NULL)
        return RR_NOMEM;
    /* No spinning on nats.c's locks: on a couple of cores a spinning thread only steals
     * time from the one holding the lock. */
    nats_Open(0);
    natsOptions *opts = NULL;
    natsStatus s = build_options(&opts, cfg, client_name, bus);
    if (s != NATS_OK) {
        rr_error("nats options: %s", nats_GetLastError(NULL));
        free(bus);
        return RR_CONFIG;
    }
    int64_t give_up = rr_mono_ms() + CONNECT_RETRY_MS;
    for (;;) {
        s = natsConnection_Connect(&bus->nc, opts);
        /* a server that is not up yet is worth waiting for; a refused identity is not,
         * nor is a SIGTERM (blocked by the services, so pending here) */
        if (s == NATS_OK || s == NATS_CONNECTION_AUTH_FAILED || s == NATS_SSL_ERROR ||
            s == NATS_NOT_PERMITTED || rr_mono_ms() > give_up || stop_signal_pending())
            break;
        rr_warn("nats connect to %s: %s; retrying", cfg->nats_url, natsStatus_GetText(s));
        nats_Sleep(500);
    }
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        rr_error("nats connect to %s failed: %s (%s)", cfg->nats_url, natsStatus_GetText(s),
                 nats_GetLastError(NULL) != NULL ? nats_GetLastError(NULL) : "");
        free(bus);
        return RR_UNAVAILABLE;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.MaxPending = 65536;
    s = natsConnection_JetStream(&bus->js, bus->nc, &jo);
    if (s != NATS_OK) {
        natsConnection_Destroy(bus->nc);
        free(bus);
        return from_nats(s);
    }
    atomic_store(&bus->connected, true);
    *out = bus;
    return RR_OK;
}

void rr_bus_drain(rr_bus *bus, int64_t timeout_ms)
{
    if (bus == NULL || bus->nc == NULL || !rr_bus_connected(bus))
        return; /* nothing can be flushed to a server that is not there */
    atomic_store(&bus->closing, true);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    js_PublishAsyncComplete(bus->js, &po);
    natsConnection_DrainTimeout(bus->nc, timeout_ms);
    int64_t until = rr_mono_ms() + timeout_ms;
    while (!natsConnection_IsClosed(bus->nc) && rr_mono_ms() < until)
        nats_Sleep(10);
}

void rr_bus_destroy(rr_bus *bus)
{
    if (bus == NULL)
        return;
    atomic_store(&bus->closing, true);
    for (int i = 0; i < 2; i++)
        kvStore_Destroy(bus->kv[i]);
    jsCtx_Destroy(bus->js);
    if (bus->nc != NULL) {
        natsConnection_Close(bus->nc);
        natsConnection_Destroy(bus->nc);
    }
    free(bus);
}

bool rr_bus_connected(rr_bus *bus)
{
    return atomic_load(&bus->connected) &&
           natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

bool rr_bus_ready(rr_bus *bus)
{
    if (!rr_bus_connected(bus))
        return false;
    int64_t now = rr_mono_ms();
    if (now - atomic_load(&bus->ready_checked_ms) < 1000)
        return atomic_load(&bus->ready_cached);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    natsStatus s = js_GetStreamInfo(&si, bus->js, RR_STREAM_REQUESTS, &jo, &jerr);
    jsStreamInfo_Destroy(si);
    bool ok = s == NATS_OK && bus->kv[RR_KV_RECORDS] != NULL;
    atomic_store(&bus->ready_cached, ok);
    atomic_store(&bus->ready_checked_ms, now);
    return ok;
}

uint64_t rr_bus_reconnects(rr_bus *bus)
{
    return atomic_load(&bus->reconnects);
}

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
    return s == NATS_OK ? RR_CONFIG : from_nats(s);
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
    const char *name = bucket_names[which];
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
            sc->RePublish = kc.RePublish;
            jsStreamInfo *updated = NULL;
            s = js_UpdateStream(&updated, bus->js, sc, NULL, &jerr);
            sc->RePublish = NULL; /* ours, on the stack: not the info's to free */
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
    rr_status r;
    if ((r = setup_requests_stream(&c)) != RR_OK || (r = setup_events_stream(&c)) != RR_OK ||
        (r = setup_consumers(&c)) != RR_OK ||
        (r = setup_bucket(&c, RR_KV_RECORDS, cfg->record_ttl_s, true)) != RR_OK ||
        (r = setup_bucket(&c, RR_KV_NONCES, RR_NONCE_TTL_S, false)) != RR_OK)
        return r;
    return RR_OK;
}

/* ---- publishing ---- */

rr_status rr_bus_publish_request(rr_bus *bus, const char *tenant, const char *msg_id,
                                 const void *data, size_t len, int64_t timeout_ms,
                                 rr_pub_ack *ack)
{
    char subject[128];
    snprintf(subject, sizeof subject, RR_SUBJ_REQUESTS "%s", tenant);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = timeout_ms;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&pa, bus->js, subject, data, (int)len, &po, &jerr);
    if (s == NATS_OK) {
        ack->seq = pa->Sequence;
        ack->duplicate = pa->Duplicate;
        jsPubAck_Destroy(pa);
        return RR_OK;
    }
    jsPubAck_Destroy(pa);
    if (jerr == JS_ERR_STORE_FAILED) {
        const char *text = nats_GetLastError(NULL);
        if (text != NULL && strstr(text, "per subject") != NULL)
            return RR_LIMIT;
        return RR_FULL;
    }
    rr_status r = from_nats(s);
    return r == RR_ERR ? RR_UNAVAILABLE : r;
}

rr_status rr_bus_publish_js(rr_bus *bus, const char *subject, const char *msg_id,
                            const void *data, size_t len, bool sync)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    natsStatus s;
    jsErrCode jerr = 0;
    if (sync) {
        jsPubAck *pa = NULL;
        s = js_Publish(&pa, bus->js, subject, data, (int)len, &po, &jerr);
        jsPubAck_Destroy(pa);
    } else {
        s = js_PublishAsync(bus->js, subject, data, (int)len, &po);
    }
    return from_nats(s);
}

rr_status rr_bus_publish(rr_bus *bus, const char *subject, const void *data, size_t len)
{
    return from_nats(natsConnection_Publish(bus->nc, subject, data, (int)len));
}

/* ---- KV ---- */

rr_status rr_bus_kv_get(rr_bus *bus, rr_kv_bucket bucket, const char *key, uint8_t **data,
                        size_t *len, uint64_t *rev)
{
    *data = NULL;
    *len = 0;
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, bus->kv[bucket], key);
    if (s != NATS_OK)
        return from_nats(s);
    int n = kvEntry_ValueLen(e);
    uint8_t *copy = malloc(n > 0 ? (size_t)n : 1);
    if (copy == NULL) {
        kvEntry_Destroy(e);
        return RR_NOMEM;
    }
    if (n > 0)
        memcpy(copy, kvEntry_Value(e), (size_t)n);
    *data = copy;
    *len = (size_t)n;
    if (rev != NULL)
        *rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    return RR_OK;
}

/* KV writes go straight to the bucket's subject with an expected last-subject sequence:
 * the same request kvStore_Create/Update send, but with the typed JetStream error code
 * (and without kvStore_Create's extra read on conflict: ReqRun never deletes keys). */
static rr_status kv_put(rr_bus *bus, rr_kv_bucket bucket, const char *key, const void *data,
                        size_t len, uint64_t last_rev, bool create, uint64_t *rev)
{
    char subject[192];
    snprintf(subject, sizeof subject, "$KV.%s.%s", bucket_names[bucket], key);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (create)
        po.ExpectNoMessage = true;
    else
        po.ExpectLastSubjectSeq = last_rev;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&pa, bus->js, subject, data, (int)len, &po, &jerr);
    if (s == NATS_OK && rev != NULL)
        *rev = pa->Sequence;
    jsPubAck_Destroy(pa);
    if (s == NATS_OK)
        return RR_OK;
    if (jerr == JS_ERR_WRONG_LAST_SEQUENCE)
        return create ? RR_EXISTS : RR_CONFLICT;
    if (jerr == JS_ERR_STORE_FAILED)
        return RR_FULL;
    rr_status r = from_nats(s);
    return r == RR_ERR ? RR_UNAVAILABLE : r;
}

rr_status rr_bus_kv_create(rr_bus *bus, rr_kv_bucket bucket, const char *key,
                           const void *data, size_t len, uint64_t *rev)
{
    return kv_put(bus, bucket, key, data, len, 0, true, rev);
}

rr_status rr_bus_kv_update(rr_bus *bus, rr_kv_bucket bucket, const char *key,
                           const void *data, size_t len, uint64_t last_rev, uint64_t *rev)
{
    return kv_put(bus, bucket, key, data, len, last_rev, false, rev);
}

/* ---- core subscriptions ---- */

const char *rr_bus_msg_subject(const rr_bus_msg *m)
{
    return natsMsg_GetSubject((natsMsg *)m);
}

const char *rr_bus_msg_reply(const rr_bus_msg *m)
{
    return natsMsg_GetReply((natsMsg *)m);
}

const void *rr_bus_msg_data(const rr_bus_msg *m, size_t *len)
{
    *len = (size_t)natsMsg_GetDataLength((natsMsg *)m);
    return natsMsg_GetData((natsMsg *)m);
}

const char *rr_bus_msg_header(const rr_bus_msg *m, const char *name)
{
    const char *v = NULL;
    if (natsMsgHeader_Get((natsMsg *)m, name, &v) != NATS_OK)
        return NULL;
    return v;
}

uint64_t rr_bus_msg_revision(const rr_bus_msg *m)
{
    const char *v = rr_bus_msg_header(m, "Nats-Sequence");
    return v != NULL ? strtoull(v, NULL, 10) : 0;
}

static void on_sub_msg(natsConnection *nc, natsSubscription *s, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)s;
    rr_bus_sub *sub = closure;
    sub->fn((const rr_bus_msg *)msg, sub->ctx);
    natsMsg_Destroy(msg);
}

rr_status rr_bus_subscribe(rr_bus *bus, const char *subject, const char *queue,
                           rr_bus_msg_fn fn, void *ctx, rr_bus_sub **out)
{
    rr_bus_sub *sub = calloc(1, sizeof *sub);
    if (sub == NULL)
        return RR_NOMEM;
    sub->bus = bus;
    sub->fn = fn;
    sub->ctx = ctx;
    natsStatus s = queue != NULL
                       ? natsConnection_QueueSubscribe(&sub->sub, bus->nc, subject, queue,
                                                       on_sub_msg, sub)
                       : natsConnection_Subscribe(&sub->sub, bus->nc, subject, on_sub_msg, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub->sub, -1, -1);
    if (s != NATS_OK) {
        natsSubscription_Destroy(sub->sub);
        free(sub);
        return from_nats(s);
    }
    *out = sub;
    return RR_OK;
}

void rr_bus_unsubscribe(rr_bus_sub *sub)
{
    if (sub == NULL)
        return;
    /* Drain, then wait: the callback thread must be done with sub before it is freed.
     * Without a connection a drain cannot complete; unsubscribing stops delivery. */
    if (rr_bus_connected(sub->bus) && natsSubscription_Drain(sub->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(sub->sub, 5000);
    else
        natsSubscription_Unsubscribe(sub->sub);
    natsSubscription_Destroy(sub->sub);
    free(sub);
}

rr_status rr_bus_respond(rr_bus *bus, const char *reply, const rr_bus_header *headers,
                         size_t n_headers, const void *data, size_t len)
{
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, reply, NULL, data, (int)len);
    for (size_t i = 0; s == NATS_OK && i < n_headers; i++)
        s = natsMsgHeader_Set(msg, headers[i].name, headers[i].value);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(bus->nc, msg);
    natsMsg_Destroy(msg);
    return from_nats(s);
}

/* ---- pull consumer ---- */

/* JetStream acks are plain messages to the delivery's reply subject; sent directly they
 * work for any subscription (nats.c's natsMsg_Ack needs a JetStream subscription). */
static bool parse_ack_subject(const char *reply, rr_delivery_meta *m)
{
    /* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> (9 tokens),
     * or with domain and account hash first (12 tokens or more). */
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return false;
    const char *tok[16];
    int n = 0;
    tok[n++] = reply;
    for (const char *p = reply; *p && n < 16; p++) {
        if (*p == '.')
            tok[n++] = p + 1;
    }
    int base = n == 9 ? 4 : n >= 12 ? 6 : -1;
    if (base < 0)
        return false;
    m->num_delivered = strtoull(tok[base], NULL, 10);
    m->stream_seq = strtoull(tok[base + 1], NULL, 10);
    m->consumer_seq = strtoull(tok[base + 2], NULL, 10);
    return m->stream_seq > 0;
}

static rr_delivery *delivery_new(rr_bus *bus, natsMsg *msg)
{
    rr_delivery *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->bus = bus;
    d->msg = msg;
    parse_ack_subject(natsMsg_GetReply(msg), &d->meta);
    return d;
}

rr_status rr_bus_consumer_open(rr_bus *bus, const char *stream, const char *durable,
                               rr_bus_consumer **out)
{
    rr_bus_consumer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RR_NOMEM;
    c->bus = bus;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = durable;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&c->sub, bus->js, NULL, durable, NULL, &so, &jerr);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s != NATS_OK) {
        rr_error("pull subscribe %s/%s: %s", stream, durable, nats_GetLastError(NULL));
        natsSubscription_Destroy(c->sub);
        free(c);
        return from_nats(s);
    }
    *out = c;
    return RR_OK;
}

void rr_bus_consumer_close(rr_bus_consumer *c)
{
    if (c == NULL)
        return;
    if (c->continuous) {
        wait_pull_over(c);
        pthread_mutex_lock(&c->mu);
        c->watchdog_exit = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->watchdog, NULL);
    }
    /* Unsubscribe only: the durable consumer is shared and stays. */
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    if (c->continuous) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
    }
    free(c);
}

rr_status rr_bus_fetch(rr_bus_consumer *c, int max, int64_t timeout_ms, rr_delivery **out,
                       int *n)
{
    *n = 0;
    natsMsgList list = {0};
    jsFetchRequest req;
    /* First whatever is pending, up to max, without waiting... */
    jsFetchRequest_Init(&req);
    req.Batch = max;
    req.NoWait = true;
    req.Expires = timeout_ms * NS_PER_MS;
    natsStatus s = natsSubscription_FetchRequest(&list, c->sub, &req);
    if (s != NATS_OK || list.Count == 0) {
        natsMsgList_Destroy(&list);
        /* ...else wait for the first message only: a waiting request for a whole batch
         * would hold the first message until the batch fills or the request expires. */
        jsFetchRequest_Init(&req);
        req.Batch = 1;
        req.Expires = timeout_ms * NS_PER_MS;
        s = natsSubscription_FetchRequest(&list, c->sub, &req);
    }
    if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        return s == NATS_TIMEOUT || s == NATS_NOT_FOUND ? RR_TIMEOUT : from_nats(s);
    }
    for (int i = 0; i < list.Count; i++) {
        rr_delivery *d = delivery_new(c->bus, list.Msgs[i]);
        if (d == NULL)
            continue; /* the message is destroyed below and redelivered after AckWait */
        list.Msgs[i] = NULL;
        out[(*n)++] = d;
    }
    natsMsgList_Destroy(&list);
    return *n > 0 ? RR_OK : RR_TIMEOUT;
}

/* ---- continuous pull ---- */

#define PULL_BATCH 64
#define PULL_EXPIRES_MS 1000 /* also the longest a stopping consumer waits */

/* Issues a pull request when none is outstanding and there is room (c->mu held). */
static void pull_more(rr_bus_consumer *c)
{
    if (c->stopping || c->outstanding > 0 || c->held >= c->max_held)
        return;
    int batch = c->max_held - c->held < PULL_BATCH ? c->max_held - c->held : PULL_BATCH;
    char req[96];
    snprintf(req, sizeof req, "{\"batch\":%d,\"expires\":%lld}", batch,
             (long long)PULL_EXPIRES_MS * NS_PER_MS);
    if (natsConnection_PublishRequestString(c->bus->nc, c->next_subject, c->inbox, req) !=
        NATS_OK)
        return; /* disconnected: the watchdog asks again */
    c->outstanding = batch;
    c->expires_at_ms = rr_mono_ms() + PULL_EXPIRES_MS;
}

static void on_pulled(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    rr_bus_consumer *c = closure;
    const char *status = NULL;
    if (natsMsg_GetDataLength(msg) == 0 &&
        natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status != NULL) {
        /* 408: the request expired; 409: refused (max waiting, consumer deleted...);
         * 404: nothing for a no_wait request; 100: heartbeat. */
        if (strncmp(status, "100", 3) != 0) {
            pthread_mutex_lock(&c->mu);
            c->outstanding = 0;
            pull_more(c);
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
        }
        natsMsg_Destroy(msg);
        return;
    }
    rr_delivery *d = delivery_new(c->bus, msg);
    if (d == NULL) {
        natsMsg_Destroy(msg); /* redelivered after AckWait */
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool stopping = c->stopping;
    if (c->outstanding > 0)
        c->outstanding--;
    if (!stopping)
        c->held++;
    pull_more(c);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (stopping) /* for another executor: after our pull request is over */
        rr_delivery_settle(d, RR_SETTLE_NAK, rr_bus_consumer_quiet_ms(c));
    else
        c->fn(d, c->ctx);
}

static void *watchdog_main(void *arg)
{
    rr_bus_consumer *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->watchdog_exit) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        /* a request whose end we never heard of (lost in a reconnect) is over */
        if (c->outstanding > 0 && rr_mono_ms() > c->expires_at_ms + 1000)
            c->outstanding = 0;
        pull_more(c);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

rr_status rr_bus_consumer_start(rr_bus *bus, const char *stream, const char *durable,
                                int max_held, rr_delivery_fn fn, void *ctx,
                                rr_bus_consumer **out)
{
    rr_bus_consumer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RR_NOMEM;
    c->bus = bus;
    c->continuous = true;
    c->fn = fn;
    c->ctx = ctx;
    c->max_held = max_held > 0 ? max_held : 1;
    snprintf(c->next_subject, sizeof c->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", stream,
             durable);
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(c->inbox, sizeof c->inbox, "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        s = natsConnection_Subscribe(&c->sub, bus->nc, c->inbox, on_pulled, c);
    }
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s != NATS_OK) {
        natsSubscription_Destroy(c->sub);
        free(c);
        return from_nats(s);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&c->mu);
    pull_more(c);
    pthread_mutex_unlock(&c->mu);
    pthread_create(&c->watchdog, NULL, watchdog_main, c);
    *out = c;
    return RR_OK;
}

void rr_bus_consumer_released(rr_bus_consumer *c, int n)
{
    pthread_mutex_lock(&c->mu);
    c->held -= n;
    if (c->held < 0)
        c->held = 0;
    pull_more(c);
    pthread_mutex_unlock(&c->mu);
}

int64_t rr_bus_consumer_quiet_ms(rr_bus_consumer *c)
{
    if (c == NULL || !c->continuous)
        return 0;
    pthread_mutex_lock(&c->mu);
    int64_t left = c->outstanding > 0 ? c->expires_at_ms - rr_mono_ms() + 250 : 0;
    pthread_mutex_unlock(&c->mu);
    return left > 0 ? left : 0;
}

void rr_bus_consumer_stop(rr_bus_consumer *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
}

/* Waits until no pull request is outstanding (its end is heard, or it surely expired):
 * unsubscribing earlier would lose what the server is about to send. */
static void wait_pull_over(rr_bus_consumer *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    int64_t until = rr_mono_ms() + PULL_EXPIRES_MS + 1500;
    while (c->outstanding > 0 && rr_mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
}

rr_status rr_bus_consumer_stats(rr_bus *bus, const char *stream, const char *durable,
                                rr_consumer_stats *out)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    natsStatus s = js_GetConsumerInfo(&ci, bus->js, stream, durable, &jo, &jerr);
    if (s != NATS_OK)
        return from_nats(s);
    out->pending = ci->NumPending;
    out->ack_pending = (uint64_t)ci->NumAckPending;
    out->redelivered = (uint64_t)ci->NumRedelivered;
    jsConsumerInfo_Destroy(ci);
    return RR_OK;
}

const void *rr_delivery_data(const rr_delivery *d, size_t *len)
{
    *len = (size_t)natsMsg_GetDataLength(d->msg);
    return natsMsg_GetData(d->msg);
}

const char *rr_delivery_subject(const rr_delivery *d)
{
    return natsMsg_GetSubject(d->msg);
}

rr_delivery_meta rr_delivery_meta_of(const rr_delivery *d)
{
    return d->meta;
}

rr_status rr_delivery_in_progress(rr_delivery *d)
{
    return from_nats(natsConnection_PublishString(d->bus->nc, natsMsg_GetReply(d->msg), "+WPI"));
}

rr_status rr_delivery_settle(rr_delivery *d, rr_settle how, int64_t nak_delay_ms)
{
    natsStatus s = NATS_OK;
    const char *reply = natsMsg_GetReply(d->msg);
    char body[64];
    switch (how) {
    case RR_SETTLE_ACK: {
        /* AckSync: the server confirms, so the removal is known to have happened */
        natsMsg *confirm = NULL;
        s = natsConnection_RequestString(&confirm, d->bus->nc, reply, "+ACK", JS_API_WAIT_MS);
        natsMsg_Destroy(confirm);
        break;
    }
    case RR_SETTLE_NAK:
        if (nak_delay_ms > 0)
            snprintf(body, sizeof body, "-NAK {\"delay\":%lld}",
                     (long long)(nak_delay_ms * NS_PER_MS));
        else
            snprintf(body, sizeof body, "-NAK");
        s = natsConnection_PublishString(d->bus->nc, reply, body);
        break;
    case RR_SETTLE_TERM:
        s = natsConnection_PublishString(d->bus->nc, reply, "+TERM");
        break;
    case RR_SETTLE_DROP:
        break;
    }
    natsMsg_Destroy(d->msg);
    free(d);
    return from_nats(s);
}
