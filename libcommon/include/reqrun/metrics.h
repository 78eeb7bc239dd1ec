/* Prometheus metrics: counters with up to two labels, gauges read at scrape time, and
 * histograms, rendered in the text exposition format. */
#ifndef RR_METRICS_H
#define RR_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rr_metrics rr_metrics;
typedef struct rr_counter rr_counter;
typedef struct rr_histogram rr_histogram;

rr_metrics *rr_metrics_new(void);
/* Frees the registry and every metric in it. NULL-safe. */
void rr_metrics_destroy(rr_metrics *m);

/* A counter family; labels is NULL, "a" or "a,b". Owned by the registry. */
rr_counter *rr_metrics_counter(rr_metrics *m, const char *name, const char *help,
                               const char *labels);
/* Adds v to the child with these label values (NULL when the family has fewer). */
void rr_counter_add(rr_counter *c, const char *l1, const char *l2, uint64_t v);

/* A gauge whose value is read by fn at scrape time. */
void rr_metrics_gauge_fn(rr_metrics *m, const char *name, const char *help,
                         double (*fn)(void *ctx), void *ctx);

/* A counter whose value is read by fn at scrape time (e.g. a library's own count). */
void rr_metrics_counter_fn(rr_metrics *m, const char *name, const char *help,
                           double (*fn)(void *ctx), void *ctx);

/* A histogram with ascending upper bounds (+Inf is implicit). */
rr_histogram *rr_metrics_histogram(rr_metrics *m, const char *name, const char *help,
                                   const double *bounds, size_t n_bounds);
void rr_histogram_observe(rr_histogram *h, double v);

/* The exposition text, malloc'd; *len set. */
char *rr_metrics_render(rr_metrics *m, size_t *len);

#endif
