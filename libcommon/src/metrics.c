/* A small Prometheus registry. Label values are few (routes, status codes, outcomes), so
 * children live in a short array searched under the family's lock. */
#include "reqrun/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHILDREN 256
#define LABEL_MAX 48
#define MAX_BOUNDS 24

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_COUNTER_FN } metric_kind;

typedef struct child {
    char l1[LABEL_MAX];
    char l2[LABEL_MAX];
    uint64_t value;
} child;

struct rr_counter {
    char label1[32];
    char label2[32];
    int n_labels;
    child children[MAX_CHILDREN];
    size_t n_children;
};

struct rr_histogram {
    double bounds[MAX_BOUNDS];
    size_t n_bounds;
    uint64_t counts[MAX_BOUNDS + 1];
    double sum;
    uint64_t count;
};

typedef struct metric {
    metric_kind kind;
    char name[96];
    char help[192];
    pthread_mutex_t mu;
    rr_counter counter;
    rr_histogram hist;
    double (*fn)(void *ctx);
    void *ctx;
    struct metric *next;
} metric;

struct rr_metrics {
    pthread_mutex_t mu;
    metric *head;
    metric *tail;
};

rr_metrics *rr_metrics_new(void)
{
    rr_metrics *m = calloc(1, sizeof *m);
    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void rr_metrics_destroy(rr_metrics *m)
{
    if (m == NULL)
        return;
    metric *it = m->head;
    while (it != NULL) {
        metric *next = it->next;
        pthread_mutex_destroy(&it->mu);
        free(it);
        it = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static metric *add_metric(rr_metrics *m, metric_kind kind, const char *name, const char *help)
{
    metric *x = calloc(1, sizeof *x);
    if (x == NULL)
        abort(); /* registration happens at start-up; nothing sensible to do */
    x->kind = kind;
    snprintf(x->name, sizeof x->name, "%s", name);
    snprintf(x->help, sizeof x->help, "%s", help);
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_lock(&m->mu);
    if (m->tail != NULL)
        m->tail->next = x;
    else
        m->head = x;
    m->tail = x;
    pthread_mutex_unlock(&m->mu);
    return x;
}

rr_counter *rr_metrics_counter(rr_metrics *m, const char *name, const char *help,
                               const char *labels)
{
    metric *x = add_metric(m, M_COUNTER, name, help);
    rr_counter *c = &x->counter;
    if (labels != NULL) {
        const char *comma = strchr(labels, ',');
        if (comma != NULL) {
            snprintf(c->label1, sizeof c->label1, "%.*s", (int)(comma - labels), labels);
            snprintf(c->label2, sizeof c->label2, "%s", comma + 1);
            c->n_labels = 2;
        } else {
            snprintf(c->label1, sizeof c->label1, "%s", labels);
            c->n_labels = 1;
        }
    }
    return c;
}

static metric *metric_of_counter(rr_counter *c)
{
    return (metric *)((char *)c - offsetof(metric, counter));
}

static metric *metric_of_hist(rr_histogram *h)
{
    return (metric *)((char *)h - offsetof(metric, hist));
}

void rr_counter_add(rr_counter *c, const char *l1, const char *l2, uint64_t v)
{
    metric *x = metric_of_counter(c);
    l1 = l1 != NULL ? l1 : "";
    l2 = l2 != NULL ? l2 : "";
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < c->n_children; i++) {
        child *ch = &c->children[i];
        if (strcmp(ch->l1, l1) == 0 && strcmp(ch->l2, l2) == 0) {
            ch->value += v;
            pthread_mutex_unlock(&x->mu);
            return;
        }
    }
    if (c->n_children < MAX_CHILDREN) {
        child *ch = &c->children[c->n_children++];
        snprintf(ch->l1, sizeof ch->l1, "%s", l1);
        snprintf(ch->l2, sizeof ch->l2, "%s", l2);
        ch->value = v;
    }
    pthread_mutex_unlock(&x->mu);
}

void rr_metrics_gauge_fn(rr_metrics *m, const char *name, const char *help,
                         double (*fn)(void *ctx), void *ctx)
{
    metric *x = add_metric(m, M_GAUGE, name, help);
    x->fn = fn;
    x->ctx = ctx;
}

void rr_metrics_counter_fn(rr_metrics *m, const char *name, const char *help,
                           double (*fn)(void *ctx), void *ctx)
{
    metric *x = add_metric(m, M_COUNTER_FN, name, help);
    x->fn = fn;
    x->ctx = ctx;
}

rr_histogram *rr_metrics_histogram(rr_metrics *m, const char *name, const char *help,
                                   const double *bounds, size_t n_bounds)
{
    metric *x = add_metric(m, M_HISTOGRAM, name, help);
    if (n_bounds > MAX_BOUNDS)
        n_bounds = MAX_BOUNDS;
    memcpy(x->hist.bounds, bounds, n_bounds * sizeof *bounds);
    x->hist.n_bounds = n_bounds;
    return &x->hist;
}

void rr_histogram_observe(rr_histogram *h, double v)
{
    metric *x = metric_of_hist(h);
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    pthread_mutex_lock(&x->mu);
    h->counts[i]++;
    h->sum += v;
    h->count++;
    pthread_mutex_unlock(&x->mu);
}

typedef struct outbuf {
    char *data;
    size_t len;
    size_t cap;
} outbuf;

__attribute__((format(printf, 2, 3))) static void out_printf(outbuf *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *grown = realloc(o->data, cap);
        if (grown == NULL)
            return;
        o->data = grown;
        o->cap = cap;
    }
}

/* Writes s escaped as the exposition format requires: backslash and newline always,
 * double quotes inside label values. */
static void out_escaped(outbuf *o, const char *s, bool label_value)
{
    while (*s != '\0') {
        size_t plain = strcspn(s, label_value ? "\\\n\"" : "\\\n");
        if (plain > 0)
            out_printf(o, "%.*s", (int)plain, s);
        s += plain;
        if (*s == '\0')
            break;
        out_printf(o, "%s", *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
        s++;
    }
}

/* v as text that reads back exactly (15 significant digits when enough, else 17):
 * "%.6g" would turn a gauge of 1234567 into 1.23457e+06. */
static void fmt_value(double v, char out[32])
{
    if (isnan(v)) {
        snprintf(out, 32, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 32, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void render_counter(outbuf *o, metric *x)
{
    rr_counter *c = &x->counter;
    if (c->n_children == 0 && c->n_labels == 0) {
        out_printf(o, "%s 0\n", x->name);
        return;
    }
    for (size_t i = 0; i < c->n_children; i++) {
        child *ch = &c->children[i];
        if (c->n_labels == 0)
            out_printf(o, "%s %llu\n", x->name, (unsigned long long)ch->value);
        else {
            out_printf(o, "%s{%s=\"", x->name, c->label1);
            out_escaped(o, ch->l1, true);
            if (c->n_labels == 2) {
                out_printf(o, "\",%s=\"", c->label2);
                out_escaped(o, ch->l2, true);
            }
            out_printf(o, "\"} %llu\n", (unsigned long long)ch->value);
        }
    }
}

static void render_histogram(outbuf *o, metric *x)
{
    rr_histogram *h = &x->hist;
    uint64_t cum = 0;
    char num[32];
    for (size_t i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        fmt_value(h->bounds[i], num);
        out_printf(o, "%s_bucket{le=\"%s\"} %llu\n", x->name, num, (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", x->name, (unsigned long long)cum);
    fmt_value(h->sum, num);
    out_printf(o, "%s_sum %s\n", x->name, num);
    out_printf(o, "%s_count %llu\n", x->name, (unsigned long long)h->count);
}

char *rr_metrics_render(rr_metrics *m, size_t *len)
{
    outbuf o = {malloc(8192), 0, 8192};
    if (o.data == NULL)
        return NULL;
    o.data[0] = '\0';
    pthread_mutex_lock(&m->mu);
    metric *head = m->head;
    pthread_mutex_unlock(&m->mu);
    static const char *const types[] = {"counter", "gauge", "histogram", "counter"};
    for (metric *x = head; x != NULL; x = x->next) {
        out_printf(&o, "# HELP %s ", x->name);
        out_escaped(&o, x->help, false);
        out_printf(&o, "\n# TYPE %s %s\n", x->name, types[x->kind]);
        if (x->kind == M_GAUGE || x->kind == M_COUNTER_FN) {
            char num[32];
            fmt_value(x->fn(x->ctx), num);
            out_printf(&o, "%s %s\n", x->name, num);
            continue;
        }
        pthread_mutex_lock(&x->mu);
        if (x->kind == M_COUNTER)
            render_counter(&o, x);
        else
            render_histogram(&o, x);
        pthread_mutex_unlock(&x->mu);
    }
    *len = o.len;
    return o.data;
}
