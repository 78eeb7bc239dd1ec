/* reqrun.submit.<tenant>: the NATS door to the same submit path as HTTP. */
#include "nats_submit.h"

#include "reply.h"
#include "submit.h"

#include "reqrun/auth.h"
#include "reqrun/bus.h"
#include "reqrun/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 32
#define QUEUE_MAX 4096

typedef struct job {
    char tenant[RR_TENANT_BUF];
    char *reply_to;
    char *key;
    char *body;
    size_t len;
    struct job *next;
} job;

struct rr_nats_submit {
    rr_ingress *ing;
    rr_bus_sub *sub;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int queued;
    bool stop;
    pthread_t workers[WORKERS];
};

static void job_free(job *j)
{
    free(j->reply_to);
    free(j->key);
    free(j->body);
    free(j);
}

static void respond(rr_nats_submit *ns, const char *reply_to, const rr_reply *r)
{
    if (reply_to == NULL)
        return;
    char status[8], attempts[16];
    snprintf(status, sizeof status, "%d", r->status);
    snprintf(attempts, sizeof attempts, "%d", r->attempts);
    rr_bus_header h[5];
    size_t n = 0;
    h[n++] = (rr_bus_header){"Reqrun-Status", status};
    if (r->request_id[0] != '\0')
        h[n++] = (rr_bus_header){"Reqrun-Request-Id", r->request_id};
    if (r->attempts > 0)
        h[n++] = (rr_bus_header){"Reqrun-Attempts", attempts};
    if (r->replayed)
        h[n++] = (rr_bus_header){"Idempotent-Replayed", "true"};
    if (r->should_retry >= 0)
        h[n++] = (rr_bus_header){"x-should-retry", r->should_retry ? "true" : "false"};
    rr_status s = rr_bus_respond(ns->ing->bus, reply_to, h, n, r->body, r->body_len);
    if (s != RR_OK)
        rr_log(RR_LOG_WARN, RR_LOG_CTX(.request_id = r->request_id), "submit reply lost: %s",
               rr_status_str(s));
}

static void run(rr_nats_submit *ns, job *j)
{
    rr_ingress *ing = ns->ing;
    rr_reply r;
    rr_reply_init(&r);
    if (!rr_tenant_valid(j->tenant))
        rr_reply_error(&r, RR_E_UNKNOWN_TENANT, "the subject's tenant is not a valid name");
    else if (ing->keys != NULL && !rr_keyring_has_tenant(ing->keys, j->tenant))
        rr_reply_error(&r, RR_E_UNKNOWN_TENANT, "no such tenant");
    else {
        rr_submit_input in = {j->tenant, j->body, j->len, j->key};
        rr_submit(ing, &in, &r);
    }
    char code[8];
    snprintf(code, sizeof code, "%d", r.status);
    rr_counter_add(ing->m.http_requests, "nats_submit", code, 1);
    respond(ns, j->reply_to, &r);
    rr_reply_free(&r);
}

static void *worker_main(void *arg)
{
    rr_nats_submit *ns = arg;
    for (;;) {
        pthread_mutex_lock(&ns->mu);
        while (ns->head == NULL && !ns->stop)
            pthread_cond_wait(&ns->cv, &ns->mu);
        job *j = ns->head;
        if (j == NULL) {
            pthread_mutex_unlock(&ns->mu);
            return NULL;
        }
        ns->head = j->next;
        if (ns->head == NULL)
            ns->tail = NULL;
        ns->queued--;
        pthread_mutex_unlock(&ns->mu);
        run(ns, j);
        job_free(j);
    }
}

static void on_submit(const rr_bus_msg *m, void *ctx)
{
    rr_nats_submit *ns = ctx;
    const char *subject = rr_bus_msg_subject(m);
    const char *tenant = subject + sizeof RR_SUBJ_SUBMIT - 1;
    const char *reply_to = rr_bus_msg_reply(m);
    size_t len = 0;
    const char *data = rr_bus_msg_data(m, &len);
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return;
    snprintf(j->tenant, sizeof j->tenant, "%s", strlen(tenant) <= RR_TENANT_MAX ? tenant : "");
    const char *key = rr_bus_msg_header(m, "Idempotency-Key");
    j->reply_to = reply_to != NULL ? strdup(reply_to) : NULL;
    j->key = key != NULL ? strdup(key) : NULL;
    j->body = malloc(len + 1);
    if (j->body != NULL) {
        memcpy(j->body, data, len);
        j->body[len] = '\0';
        j->len = len;
    }
    pthread_mutex_lock(&ns->mu);
    bool full = ns->queued >= QUEUE_MAX || ns->stop || j->body == NULL;
    if (!full) {
        if (ns->tail != NULL)
            ns->tail->next = j;
        else
            ns->head = j;
        ns->tail = j;
        ns->queued++;
        pthread_cond_signal(&ns->cv);
    }
    pthread_mutex_unlock(&ns->mu);
    if (full) {
        rr_reply r;
        rr_reply_init(&r);
        rr_reply_error(&r, RR_E_UNAVAILABLE, "the ingress is overloaded or stopping; retry");
        r.retry_after_s = 1;
        r.should_retry = 1; /* nothing was done with it */
        respond(ns, j->reply_to, &r);
        rr_reply_free(&r);
        job_free(j);
    }
}

rr_status rr_nats_submit_start(rr_nats_submit **out, rr_ingress *ing)
{
    rr_nats_submit *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return RR_NOMEM;
    ns->ing = ing;
    pthread_mutex_init(&ns->mu, NULL);
    pthread_cond_init(&ns->cv, NULL);
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&ns->workers[i], NULL, worker_main, ns);
    rr_status s = rr_bus_subscribe(ing->bus, RR_SUBJ_SUBMIT "*", "ingress", on_submit, ns,
                                   &ns->sub);
    if (s != RR_OK) {
        rr_nats_submit_stop(ns);
        return s;
    }
    *out = ns;
    return RR_OK;
}

void rr_nats_submit_stop(rr_nats_submit *ns)
{
    if (ns == NULL)
        return;
    rr_bus_unsubscribe(ns->sub);
    pthread_mutex_lock(&ns->mu);
    ns->stop = true;
    pthread_cond_broadcast(&ns->cv);
    pthread_mutex_unlock(&ns->mu);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(ns->workers[i], NULL);
    pthread_cond_destroy(&ns->cv);
    pthread_mutex_destroy(&ns->mu);
    free(ns);
}
