/* Webhook delivery threads of reqrun-executor. */
#include "webhooks.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"
#include "reqrun/record.h"
#include "reqrun/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISPATCHERS 4
#define FETCH_BATCH 8
#define MAX_DELIVERIES 30       /* about two hours of retries */
#define MAX_BACKOFF_MS 300000
#define LOG_CAS_TRIES 5

typedef struct rr_webhooks rr_webhooks;

typedef struct dispatcher_arg {
    rr_webhooks *w;
    int index;
} dispatcher_arg;

struct rr_webhooks {
    const rr_config *cfg;
    rr_bus *bus;
    const rr_webhook_secrets *secrets;
    rr_webhook_policy policy;
    rr_counter *deliveries; /* result */
    atomic_bool stop;
    pthread_t threads[DISPATCHERS];
    rr_bus_consumer *consumers[DISPATCHERS];
    dispatcher_arg args[DISPATCHERS];
    int n;
};

/* Appends the attempt to the record's delivery log (a quiet write: not a transition). */
static void log_delivery(rr_webhooks *w, const rr_event *ev, const rr_webhook_result *res)
{
    for (int i = 0; i < LOG_CAS_TRIES; i++) {
        rr_record rec;
        uint64_t rev = 0;
        if (rr_store_get(w->bus, ev->tenant, ev->id, &rec, &rev) != RR_OK)
            return;
        rr_webhook_delivery d = {
            .number = (uint32_t)rec.n_webhook_log + 1,
            .at_ms = rr_now_ms(),
            .http_status = (uint32_t)res->http_status,
            .delivered = res->delivered,
        };
        snprintf(d.error_code, sizeof d.error_code, "%s", res->error_code);
        rr_status s = rr_record_add_webhook_delivery(&rec, &d);
        if (s == RR_OK)
            s = rr_store_put_quiet(w->bus, &rec, rev, NULL);
        rr_record_free(&rec);
        if (s != RR_CONFLICT)
            return;
    }
}

static bool already_delivered(const rr_record *rec)
{
    for (size_t i = 0; i < rec->n_webhook_log; i++) {
        if (rec->webhook_log[i].delivered)
            return true;
    }
    return false;
}

static int64_t backoff_ms(uint64_t num_delivered)
{
    int64_t d = 1000;
    for (uint64_t i = 1; i < num_delivered && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

static void handle(rr_webhooks *w, rr_delivery *d)
{
    size_t len = 0;
    const void *data = rr_delivery_data(d, &len);
    rr_event ev;
    if (rr_event_decode(&ev, data, len) != RR_OK) {
        rr_delivery_settle(d, RR_SETTLE_TERM, 0);
        return;
    }
    const rr_webhook_tenant *t = rr_webhook_secrets_find(w->secrets, ev.tenant);
    const char *url = ev.webhook_url; /* the request's, or its tenant's default at submit */
    if (!rr_state_terminal(ev.state) || url[0] == '\0') {
        rr_delivery_settle(d, RR_SETTLE_ACK, 0); /* nothing to deliver */
        return;
    }
    rr_record rec;
    uint64_t rev = 0;
    rr_status s = rr_store_get(w->bus, ev.tenant, ev.id, &rec, &rev);
    if (s == RR_NOT_FOUND) {
        rr_delivery_settle(d, RR_SETTLE_ACK, 0); /* the record expired */
        return;
    }
    if (s != RR_OK) {
        rr_delivery_settle(d, RR_SETTLE_NAK, 1000);
        return;
    }
    if (already_delivered(&rec)) {
        rr_record_free(&rec);
        rr_delivery_settle(d, RR_SETTLE_ACK, 0);
        return;
    }
    rr_webhook_result res;
    if (t == NULL) {
        memset(&res, 0, sizeof res);
        snprintf(res.error_code, sizeof res.error_code, "webhook_secret_not_configured");
    } else {
        size_t body_len = 0;
        char *body = rr_webhook_payload(&rec, &body_len);
        char msg_id[64];
        snprintf(msg_id, sizeof msg_id, "%s.%llu", ev.id, (unsigned long long)ev.revision);
        rr_webhook_deliver(&w->policy, url, msg_id, rr_now_ms() / 1000, body != NULL ? body : "",
                           body_len, t->secret, t->secret_len, &res);
        free(body);
    }
    rr_record_free(&rec);
    log_delivery(w, &ev, &res);
    uint64_t n = rr_delivery_meta_of(d).num_delivered;
    const char *result = res.delivered ? "delivered" : res.retryable ? "retried" : "refused";
    if (!res.delivered && res.retryable && n >= MAX_DELIVERIES)
        result = "given_up";
    rr_counter_add(w->deliveries, result, NULL, 1);
    rr_log(res.delivered ? RR_LOG_INFO : RR_LOG_WARN,
           RR_LOG_CTX(.request_id = ev.id, .tenant = ev.tenant, .attempt = (int)n,
                      .http_status = res.http_status,
                      .code = res.error_code[0] ? res.error_code : NULL),
           "webhook %s", result);
    if (res.delivered)
        rr_delivery_settle(d, RR_SETTLE_ACK, 0);
    else if (res.retryable && n < MAX_DELIVERIES)
        rr_delivery_settle(d, RR_SETTLE_NAK, backoff_ms(n));
    else
        rr_delivery_settle(d, RR_SETTLE_TERM, 0);
}

static void *dispatcher_main(void *arg)
{
    dispatcher_arg *a = arg;
    rr_webhooks *w = a->w;
    rr_bus_consumer *c = w->consumers[a->index];
    while (!atomic_load(&w->stop)) {
        rr_delivery *batch[FETCH_BATCH];
        int n = 0;
        rr_status s = rr_bus_fetch(c, FETCH_BATCH, 250, batch, &n);
        if (s == RR_TIMEOUT)
            continue;
        if (s != RR_OK) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (atomic_load(&w->stop))
                rr_delivery_settle(batch[i], RR_SETTLE_NAK, 0); /* for the next dispatcher */
            else
                handle(w, batch[i]);
        }
    }
    return NULL;
}

rr_status rr_webhooks_start(rr_webhooks **out, const rr_config *cfg, rr_bus *bus,
                            const rr_webhook_secrets *secrets, rr_metrics *metrics)
{
    rr_webhooks *w = calloc(1, sizeof *w);
    if (w == NULL)
        return RR_NOMEM;
    w->cfg = cfg;
    w->bus = bus;
    w->secrets = secrets;
    rr_webhook_policy_init(&w->policy, cfg->webhook_allow);
    w->deliveries = rr_metrics_counter(metrics, "reqrun_webhook_deliveries_total",
                                       "Webhook delivery attempts by result", "result");
    for (int i = 0; i < DISPATCHERS; i++) {
        rr_status s = rr_bus_consumer_open(bus, RR_STREAM_EVENTS, RR_CONSUMER_WEBHOOKS,
                                           &w->consumers[i]);
        if (s != RR_OK) {
            rr_webhooks_stop(w);
            return s;
        }
    }
    for (int i = 0; i < DISPATCHERS; i++) {
        w->args[i] = (dispatcher_arg){w, i};
        pthread_create(&w->threads[i], NULL, dispatcher_main, &w->args[i]);
        w->n++;
    }
    *out = w;
    return RR_OK;
}

void rr_webhooks_stop(rr_webhooks *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    for (int i = 0; i < DISPATCHERS; i++)
        rr_bus_consumer_close(w->consumers[i]);
    free(w);
}
