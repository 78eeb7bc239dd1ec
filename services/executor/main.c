/* reqrun-executor: wires config, logging, NATS, the upstream client and the executor
 * runtime, serves /healthz /readyz /metrics, and drains on SIGTERM. */
#include "executor.h"
#include "ops.h"
#include "webhooks.h"

#include "reqrun/bus.h"
#include "reqrun/config.h"
#include "reqrun/httpd.h"
#include "reqrun/log.h"
#include "reqrun/process.h"
#include "reqrun/upstream.h"

#include <string.h>

#define MAX_RESULT_BYTES (4 * 1024 * 1024)

static const char summary[] =
    "ReqRun executor: consumes REQRUN_REQUESTS (consumer executors) and calls the upstream.";

int main(int argc, char **argv)
{
    rr_process_block_signals();
    rr_config cfg;
    int code = 0;
    if (!rr_process_start(argc, argv, "reqrun-executor", summary, &cfg, &code))
        return code;

    int exit_code = 1;
    rr_bus *bus = NULL;
    rr_upstream *upstream = NULL;
    rr_httpd *httpd = NULL;
    rr_executor ex;
    memset(&ex, 0, sizeof ex);
    rr_webhook_secrets *secrets = NULL;
    rr_webhooks *webhooks = NULL;
    bool started = false;
    char err[512];

    if (rr_webhook_secrets_load(&secrets, &cfg, err, sizeof err) != RR_OK) {
        rr_error("webhook secrets: %s", err);
        exit_code = 2;
        goto out;
    }
    if (rr_bus_connect(&bus, &cfg, "reqrun-executor") != RR_OK)
        goto out;
    if (rr_bus_setup(bus, &cfg, err, sizeof err) != RR_OK) {
        rr_error("NATS resources: %s", err);
        goto out;
    }
    rr_upstream_options uopts = {
        .base_url = cfg.upstream_url,
        .api_key = cfg.upstream_api_key,
        .max_response_bytes = MAX_RESULT_BYTES,
    };
    if (rr_upstream_new(&upstream, &uopts) != RR_OK)
        goto out;
    ex.metrics = rr_metrics_new();
    rr_ops_register_metrics(&ex);
    if (rr_executor_start(&ex, &cfg, bus, upstream, ex.metrics) != RR_OK)
        goto out;
    started = true;
    if (rr_webhooks_start(&webhooks, &cfg, bus, secrets, ex.metrics) != RR_OK)
        goto out;

    mg_init_library(0);
    rr_httpd_options hopts = {
        .listen = cfg.executor_listen,
        .threads = 8,
        .request_timeout_ms = 10000,
        .keep_alive_timeout_ms = 2000,
    };
    if (rr_httpd_start(&httpd, &hopts) != RR_OK)
        goto out;
    rr_ops_register_routes(&ex, httpd);
    rr_info("reqrun-executor ready: upstream %s, concurrency %lld, ops on http://%s",
            cfg.upstream_url, (long long)cfg.executor_concurrency, cfg.executor_listen);

    int sig = rr_process_wait_signal();
    rr_info("signal %d: draining", sig);
    exit_code = 0;
out:
    if (started)
        rr_executor_drain(&ex); /* first: pulling stops at once */
    rr_webhooks_stop(webhooks);
    rr_httpd_stop(httpd);
    rr_upstream_destroy(upstream);
    if (started)
        rr_executor_free(&ex);
    if (bus != NULL)
        rr_bus_drain(bus, 5000);
    rr_bus_destroy(bus);
    rr_metrics_destroy(ex.metrics);
    rr_webhook_secrets_destroy(secrets);
    rr_config_free(&cfg);
    if (exit_code == 0)
        rr_info("reqrun-executor stopped");
    return exit_code;
}
