/* Waiter map: "<tenant>.<id>" -> waiters, fed by the record subscription. */
#include "waiters.h"

#include "reqrun/clock.h"
#include "reqrun/ids.h"
#include "reqrun/log.h"
#include "reqrun/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_BUCKETS 4096
#define REREAD_MS 5000

struct rr_waiter {
    char key[RR_RECORD_KEY_BUF];
    char tenant[RR_TENANT_BUF];
    char id[RR_ID_BUF];
    pthread_cond_t cond;
    uint8_t *data; /* a terminal record's bytes, once one arrived */
    size_t len;
    uint64_t rev;
    struct rr_waiter *next;
};

struct rr_waiters {
    rr_bus *bus;
    rr_bus_sub *sub;
    pthread_mutex_t mu;
    rr_waiter *buckets[N_BUCKETS];
    int count;
    bool shutdown;
};

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % N_BUCKETS;
}

static void on_record(const rr_bus_msg *m, void *ctx)
{
    rr_waiters *w = ctx;
    const char *subject = rr_bus_msg_subject(m);
    size_t prefix = sizeof RR_SUBJ_RECORDS - 1;
    if (strncmp(subject, RR_SUBJ_RECORDS, prefix) != 0)
        return;
    const char *key = subject + prefix;
    unsigned b = hash_key(key);

    pthread_mutex_lock(&w->mu);
    bool wanted = false;
    for (rr_waiter *x = w->buckets[b]; x != NULL; x = x->next)
        wanted |= strcmp(x->key, key) == 0;
    pthread_mutex_unlock(&w->mu);
    if (!wanted)
        return;

    /* Only terminal records end a wait; decoding happens only when someone waits. */
    size_t len = 0;
    const void *data = rr_bus_msg_data(m, &len);
    rr_record rec;
    if (rr_record_decode(&rec, data, len) != RR_OK)
        return;
    bool terminal = rr_state_terminal(rec.state);
    rr_record_free(&rec);
    if (!terminal)
        return;
    uint64_t rev = rr_bus_msg_revision(m);

    pthread_mutex_lock(&w->mu);
    for (rr_waiter *x = w->buckets[b]; x != NULL; x = x->next) {
        if (strcmp(x->key, key) != 0 || x->data != NULL)
            continue;
        x->data = malloc(len);
        if (x->data != NULL) {
            memcpy(x->data, data, len);
            x->len = len;
            x->rev = rev;
        }
        pthread_cond_signal(&x->cond);
    }
    pthread_mutex_unlock(&w->mu);
}

rr_status rr_waiters_new(rr_waiters **out, rr_bus *bus)
{
    rr_waiters *w = calloc(1, sizeof *w);
    if (w == NULL)
        return RR_NOMEM;
    w->bus = bus;
    pthread_mutex_init(&w->mu, NULL);
    rr_status s = rr_bus_subscribe(bus, RR_SUBJ_RECORDS ">", NULL, on_record, w, &w->sub);
    if (s != RR_OK) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return s;
    }
    *out = w;
    return RR_OK;
}

void rr_waiters_destroy(rr_waiters *w)
{
    if (w == NULL)
        return;
    rr_bus_unsubscribe(w->sub);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

rr_waiter *rr_waiters_register(rr_waiters *w, const char *tenant, const char *id)
{
    rr_waiter *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    rr_record_key(x->key, tenant, id);
    snprintf(x->tenant, sizeof x->tenant, "%s", tenant);
    snprintf(x->id, sizeof x->id, "%s", id);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cond, &attr);
    pthread_condattr_destroy(&attr);
    unsigned b = hash_key(x->key);
    pthread_mutex_lock(&w->mu);
    x->next = w->buckets[b];
    w->buckets[b] = x;
    w->count++;
    pthread_mutex_unlock(&w->mu);
    return x;
}

void rr_waiters_unregister(rr_waiters *w, rr_waiter *waiter)
{
    if (waiter == NULL)
        return;
    unsigned b = hash_key(waiter->key);
    pthread_mutex_lock(&w->mu);
    for (rr_waiter **p = &w->buckets[b]; *p != NULL; p = &(*p)->next) {
        if (*p == waiter) {
            *p = waiter->next;
            w->count--;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&waiter->cond);
    free(waiter->data);
    free(waiter);
}

static struct timespec mono_deadline(int64_t at_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(at_ms / 1000);
    ts.tv_nsec = (long)(at_ms % 1000) * 1000000L;
    return ts;
}

/* The fallback read: a terminal record found in KV ends the wait like a wake-up. */
static bool reread_terminal(rr_waiters *w, rr_waiter *x, rr_record *out, uint64_t *rev)
{
    if (rr_store_get(w->bus, x->tenant, x->id, out, rev) != RR_OK)
        return false;
    if (rr_state_terminal(out->state))
        return true;
    rr_record_free(out);
    return false;
}

rr_status rr_waiter_wait(rr_waiters *w, rr_waiter *x, int64_t timeout_ms, rr_record *out,
                         uint64_t *rev)
{
    int64_t end = rr_mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (x->data != NULL) {
            uint8_t *data = x->data;
            size_t len = x->len;
            *rev = x->rev;
            x->data = NULL;
            pthread_mutex_unlock(&w->mu);
            rr_status s = rr_record_decode(out, data, len);
            free(data);
            return s;
        }
        if (w->shutdown) {
            pthread_mutex_unlock(&w->mu);
            return RR_CANCELLED;
        }
        int64_t now = rr_mono_ms();
        if (now >= end) {
            pthread_mutex_unlock(&w->mu);
            return RR_TIMEOUT;
        }
        int64_t slice_end = now + REREAD_MS < end ? now + REREAD_MS : end;
        struct timespec ts = mono_deadline(slice_end);
        pthread_cond_timedwait(&x->cond, &w->mu, &ts);
        if (x->data == NULL && !w->shutdown && rr_mono_ms() >= slice_end &&
            slice_end < end) {
            pthread_mutex_unlock(&w->mu);
            bool done = reread_terminal(w, x, out, rev);
            if (done)
                return RR_OK;
            pthread_mutex_lock(&w->mu);
        }
    }
}

void rr_waiters_shutdown(rr_waiters *w)
{
    pthread_mutex_lock(&w->mu);
    w->shutdown = true;
    for (int b = 0; b < N_BUCKETS; b++) {
        for (rr_waiter *x = w->buckets[b]; x != NULL; x = x->next)
            pthread_cond_signal(&x->cond);
    }
    pthread_mutex_unlock(&w->mu);
}

int rr_waiters_count(rr_waiters *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->count;
    pthread_mutex_unlock(&w->mu);
    return n;
}
