/* NATS for ReqRun: connection and reconnects, publishing, KV reads and writes, core
 * subscriptions. With bus_provision.c and bus_consumer.c, the only code that sees nats.c. */
#include "bus_internal.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#define CONNECT_RETRY_MS 30000

const char *const rr_bus_bucket_names[2] = {RR_BUCKET_RECORDS, RR_BUCKET_NONCES};

struct rr_bus_sub {
    rr_bus *bus;
    natsSubscription *sub;
    rr_bus_msg_fn fn;
    void *ctx;
};

/* ---- errors ---- */

rr_status rr_bus_status_of(natsStatus s)
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

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    rr_bus *bus = closure;
    pthread_mutex_lock(&bus->closed_mu);
    bus->closed = true;
    pthread_cond_broadcast(&bus->closed_cv);
    pthread_mutex_unlock(&bus->closed_mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    (void)nc;
    (void)sub;
    rr_bus *bus = closure;
    if (err == NATS_NOT_PERMITTED)
        atomic_store(&bus->denied, true);
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

bool rr_bus_stop_signal_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* REQRUN_NATS_URL lists the servers comma-separated; natsOptions_SetURL takes one. */
#define MAX_SERVERS 32

static natsStatus set_servers(natsOptions *o, const char *urls)
{
    char *copy = strdup(urls);
    if (copy == NULL)
        return NATS_NO_MEMORY;
    const char *servers[MAX_SERVERS];
    int n = 0;
    char *save = NULL;
    for (char *u = strtok_r(copy, ", \t", &save); u != NULL && n < MAX_SERVERS;
         u = strtok_r(NULL, ", \t", &save))
        servers[n++] = u;
    natsStatus s = n > 0 ? natsOptions_SetServers(o, servers, n) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

static natsStatus build_options(natsOptions **out, const rr_config *cfg, const char *name,
                                rr_bus *bus)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, cfg->nats_url);
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
        s = natsOptions_SetClosedCB(o, on_closed, bus);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, bus);
    /* nats.c names every reply inbox it creates (JetStream API, PubAcks, KV reads) with
     * this prefix; the continuous pull's inbox follows it too (bus_consumer.c). */
    if (s == NATS_OK)
        s = natsOptions_SetCustomInboxPrefix(o, cfg->nats_inbox_prefix);
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

/* Closes the connection and waits for the closed callback (the last one nats.c makes
 * with bus as its closure), so bus can be freed. */
static void close_connection(rr_bus *bus)
{
    if (bus->nc == NULL)
        return;
    natsConnection_Close(bus->nc);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&bus->closed_mu);
    while (!bus->closed) {
        if (pthread_cond_timedwait(&bus->closed_cv, &bus->closed_mu, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&bus->closed_mu);
    natsConnection_Destroy(bus->nc);
    bus->nc = NULL;
}

static void bus_free(rr_bus *bus)
{
    pthread_cond_destroy(&bus->closed_cv);
    pthread_mutex_destroy(&bus->closed_mu);
    free(bus);
}

rr_status rr_bus_connect(rr_bus **out, const rr_config *cfg, const char *client_name)
{
    *out = NULL;
    rr_bus *bus = calloc(1, sizeof *bus);
    if (bus == NULL)
        return RR_NOMEM;
    pthread_mutex_init(&bus->closed_mu, NULL);
    pthread_cond_init(&bus->closed_cv, NULL);
    snprintf(bus->inbox_prefix, sizeof bus->inbox_prefix, "%s", cfg->nats_inbox_prefix);
    /* No spinning on nats.c's locks: on a couple of cores a spinning thread only steals
     * time from the one holding the lock. */
    nats_Open(0);
    natsOptions *opts = NULL;
    natsStatus s = build_options(&opts, cfg, client_name, bus);
    if (s != NATS_OK) {
        rr_error("nats options: %s", nats_GetLastError(NULL));
        bus_free(bus);
        return RR_CONFIG;
    }
    int64_t give_up = rr_mono_ms() + CONNECT_RETRY_MS;
    for (;;) {
        s = natsConnection_Connect(&bus->nc, opts);
        /* a server that is not up yet is worth waiting for; a refused identity is not,
         * nor is a SIGTERM (blocked by the services, so pending here) */
        if (s == NATS_OK || s == NATS_CONNECTION_AUTH_FAILED || s == NATS_SSL_ERROR ||
            s == NATS_NOT_PERMITTED || rr_mono_ms() > give_up || rr_bus_stop_signal_pending())
            break;
        rr_warn("nats connect to %s: %s; retrying", cfg->nats_url, natsStatus_GetText(s));
        nats_Sleep(500);
    }
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        rr_error("nats connect to %s failed: %s (%s)", cfg->nats_url, natsStatus_GetText(s),
                 nats_GetLastError(NULL) != NULL ? nats_GetLastError(NULL) : "");
        bus_free(bus); /* no connection was made: no callback will come */
        return RR_UNAVAILABLE;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.MaxPending = 65536;
    s = natsConnection_JetStream(&bus->js, bus->nc, &jo);
    if (s != NATS_OK) {
        close_connection(bus);
        bus_free(bus);
        return rr_bus_status_of(s);
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
    close_connection(bus);
    bus_free(bus);
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
    rr_status r = rr_bus_status_of(s);
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
    return rr_bus_status_of(s);
}

rr_status rr_bus_publish(rr_bus *bus, const char *subject, const void *data, size_t len)
{
    return rr_bus_status_of(natsConnection_Publish(bus->nc, subject, data, (int)len));
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
        return rr_bus_status_of(s);
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
    snprintf(subject, sizeof subject, "$KV.%s.%s", rr_bus_bucket_names[bucket], key);
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
    rr_status r = rr_bus_status_of(s);
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
        return rr_bus_status_of(s);
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
    return rr_bus_status_of(s);
}

