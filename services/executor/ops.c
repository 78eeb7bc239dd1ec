/* Health, readiness and Prometheus metrics of reqrun-executor. */
#include "ops.h"

#include "reqrun/clock.h"

#include <pthread.h>
#include <stdlib.h>

static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2,     5,     10,   20,    30,   60,  120, 300};

/* Consumer info costs a JetStream API round trip: read it at most once a second. */
typedef struct stats_cache {
    pthread_mutex_t mu;
    int64_t at_ms;
    rr_consumer_stats stats;
} stats_cache;

static stats_cache consumer_cache = {PTHREAD_MUTEX_INITIALIZER, 0, {0, 0, 0}};

static rr_consumer_stats consumer_stats(rr_executor *ex)
{
    pthread_mutex_lock(&consumer_cache.mu);
    if (rr_mono_ms() - consumer_cache.at_ms > 1000) {
        rr_consumer_stats s;
        if (rr_bus_consumer_stats(ex->bus, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS, &s) ==
            RR_OK)
            consumer_cache.stats = s;
        consumer_cache.at_ms = rr_mono_ms();
    }
    rr_consumer_stats s = consumer_cache.stats;
    pthread_mutex_unlock(&consumer_cache.mu);
    return s;
}

static double g_in_flight(void *ctx)
{
    return rr_upstream_in_flight(((rr_executor *)ctx)->upstream);
}

static double g_jobs(void *ctx)
{
    return rr_executor_jobs(ctx);
}

static double g_pending(void *ctx)
{
    return (double)consumer_stats(ctx).pending;
}

static double g_ack_pending(void *ctx)
{
    return (double)consumer_stats(ctx).ack_pending;
}

static double g_max_ack_pending(void *ctx)
{
    return (double)((rr_executor *)ctx)->cfg->max_ack_pending;
}

static double g_concurrency(void *ctx)
{
    return (double)((rr_executor *)ctx)->cfg->executor_concurrency;
}

static double c_reconnects(void *ctx)
{
    return (double)rr_bus_reconnects(((rr_executor *)ctx)->bus);
}

static double g_connected(void *ctx)
{
    return rr_bus_connected(((rr_executor *)ctx)->bus) ? 1 : 0;
}

void rr_ops_register_metrics(rr_executor *ex)
{
    rr_metrics *m = ex->metrics;
    ex->m.attempts = rr_metrics_counter(m, "reqrun_attempts_total",
                                        "Upstream attempts by outcome class", "outcome");
    ex->m.terminal = rr_metrics_counter(m, "reqrun_records_terminal_total",
                                        "Requests that reached a terminal status", "status");
    ex->m.retries = rr_metrics_counter(m, "reqrun_retries_total",
                                       "Retries scheduled, by reason (error code)", "reason");
    ex->m.deliveries = rr_metrics_counter(
        m, "reqrun_deliveries_total",
        "Deliveries of consumer executors by how they ended", "result");
    ex->m.upstream_latency = rr_metrics_histogram(
        m, "reqrun_upstream_duration_seconds", "Duration of upstream attempts", latency_bounds,
        sizeof latency_bounds / sizeof latency_bounds[0]);
    rr_metrics_gauge_fn(m, "reqrun_upstream_in_flight", "Upstream calls in flight now",
                        g_in_flight, ex);
    rr_metrics_gauge_fn(m, "reqrun_executor_jobs", "Deliveries held by this executor now",
                        g_jobs, ex);
    rr_metrics_gauge_fn(m, "reqrun_consumer_pending",
                        "Messages of consumer executors not yet delivered", g_pending, ex);
    rr_metrics_gauge_fn(m, "reqrun_consumer_ack_pending",
                        "Messages delivered and not yet acked (in flight plus waiting retries)",
                        g_ack_pending, ex);
    rr_metrics_gauge_fn(m, "reqrun_consumer_max_ack_pending",
                        "MaxAckPending of consumer executors (REQRUN_MAX_ACK_PENDING)",
                        g_max_ack_pending, ex);
    rr_metrics_gauge_fn(m, "reqrun_executor_concurrency",
                        "Upstream calls this executor may hold (REQRUN_EXECUTOR_CONCURRENCY)",
                        g_concurrency, ex);
    rr_metrics_counter_fn(m, "reqrun_nats_reconnects_total", "NATS reconnections",
                          c_reconnects, ex);
    rr_metrics_gauge_fn(m, "reqrun_nats_connected", "1 when connected to NATS", g_connected,
                        ex);
}

static int handle_healthz(struct mg_connection *conn, void *ctx)
{
    (void)ctx;
    return rr_http_send_probe_ok(conn, "ok");
}

static int handle_readyz(struct mg_connection *conn, void *ctx)
{
    rr_executor *ex = ctx;
    if (!atomic_load(&ex->ready) || !rr_bus_ready(ex->bus)) {
        rr_http_fail(conn, RR_E_UNAVAILABLE, "not ready (starting, draining or NATS unreachable)");
        return 503;
    }
    return rr_http_send_probe_ok(conn, "ready");
}

static int handle_metrics(struct mg_connection *conn, void *ctx)
{
    rr_executor *ex = ctx;
    return rr_http_send_metrics(conn, ex->metrics);
}

static int handle_other(struct mg_connection *conn, void *ctx)
{
    (void)ctx;
    rr_http_fail(conn, RR_E_NOT_FOUND, "no such route");
    return 404;
}

void rr_ops_register_routes(rr_executor *ex, rr_httpd *h)
{
    rr_httpd_route(h, "/healthz", handle_healthz, ex);
    rr_httpd_route(h, "/readyz", handle_readyz, ex);
    rr_httpd_route(h, "/metrics", handle_metrics, ex);
    rr_httpd_route(h, "**", handle_other, ex);
}
