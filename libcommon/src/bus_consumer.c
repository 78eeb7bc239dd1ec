/* JetStream pull consumers: fetch-style (nats.c's pull subscription) and continuous
 * (one pull request outstanding, deliveries handed over as they arrive); deliveries
 * settled once by messages to their reply subject. */
#include "bus_internal.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        return rr_bus_status_of(s);
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
        return s == NATS_TIMEOUT || s == NATS_NOT_FOUND ? RR_TIMEOUT : rr_bus_status_of(s);
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
    /* natsInbox_Create ignores the connection's custom prefix: keep its unique part
     * ("_INBOX.<nuid>") under REQRUN_NATS_INBOX_PREFIX. */
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        const char *unique = strchr((const char *)inbox, '.');
        snprintf(c->inbox, sizeof c->inbox, "%s.%s", bus->inbox_prefix,
                 unique != NULL ? unique + 1 : (const char *)inbox);
        natsInbox_Destroy(inbox);
        s = natsConnection_Subscribe(&c->sub, bus->nc, c->inbox, on_pulled, c);
    }
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s != NATS_OK) {
        natsSubscription_Destroy(c->sub);
        free(c);
        return rr_bus_status_of(s);
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
        return rr_bus_status_of(s);
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
    return rr_bus_status_of(natsConnection_PublishString(d->bus->nc, natsMsg_GetReply(d->msg), "+WPI"));
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
    return rr_bus_status_of(s);
}
