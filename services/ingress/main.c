/* reqrun-ingress: wires config, logging, NATS, waiters and the HTTP API, then waits for
 * a signal and shuts down without dropping held requests. */
#include "http_api.h"
#include "ingress.h"
#include "nats_submit.h"
#include "waiters.h"

#include "reqrun/auth.h"
#include "reqrun/bus.h"
#include "reqrun/config.h"
#include "reqrun/httpd.h"
#include "reqrun/log.h"
#include "reqrun/process.h"

#include <stdio.h>
#include <time.h>
#include <string.h>

static const char summary[] =
    "ReqRun ingress: POST /v1/chat/completions, GET /v1/requests/{id}, cancel, health.\n"
    "  --provision   create or update the NATS resources, then exit";

static const double latency_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,   1,     2.5,   5,     10,
                                        30,     60,    120};

static double waiters_gauge(void *ctx)
{
    return rr_waiters_count(((rr_ingress *)ctx)->waiters);
}

static double reconnects_counter(void *ctx)
{
    return (double)rr_bus_reconnects(((rr_ingress *)ctx)->bus);
}

static double connected_gauge(void *ctx)
{
    return rr_bus_connected(((rr_ingress *)ctx)->bus) ? 1 : 0;
}

static void register_metrics(rr_ingress *ing)
{
    rr_metrics *m = ing->metrics;
    ing->m.http_requests = rr_metrics_counter(m, "reqrun_http_requests_total",
                                              "HTTP requests by route and status code",
                                              "route,code");
    ing->m.submits = rr_metrics_counter(
        m, "reqrun_submits_total",
        "Submissions by outcome (accepted, duplicate, replayed, joined, rejected)", "outcome");
    ing->m.wait_outcomes = rr_metrics_counter(
        m, "reqrun_wait_outcomes_total",
        "Held requests by outcome (completed within the wait, or async)", "outcome");
    ing->m.submit_latency = rr_metrics_histogram(
        m, "reqrun_submit_duration_seconds", "Time to answer POST /v1/chat/completions",
        latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0]);
    rr_metrics_gauge_fn(m, "reqrun_waiters", "Requests held open now", waiters_gauge, ing);
    rr_metrics_counter_fn(m, "reqrun_nats_reconnects_total", "NATS reconnections",
                          reconnects_counter, ing);
    rr_metrics_gauge_fn(m, "reqrun_nats_connected", "1 when connected to NATS",
                        connected_gauge, ing);
}

static bool is_loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return false; /* a bare port listens on every interface */
    size_t n = (size_t)(colon - listen);
    return (n >= 4 && strncmp(listen, "127.", 4) == 0) ||
           (n == 9 && strncmp(listen, "localhost", 9) == 0) ||
           (n == 5 && strncmp(listen, "[::1]", 5) == 0);
}

static bool has_arg(int argc, char **argv, const char *arg)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], arg) == 0)
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    rr_process_block_signals();
    rr_config cfg;
    int code = 0;
    if (!rr_process_start(argc, argv, "reqrun-ingress", summary, &cfg, &code))
        return code;
    bool provision_only = has_arg(argc, argv, "--provision");
    if (provision_only)
        cfg.provision = true;
    if (cfg.api_keys_file == NULL && !provision_only) {
        rr_warn("DEV MODE: REQRUN_API_KEYS_FILE is unset; every request is tenant 'default' "
                "and nothing is authenticated");
        if (!is_loopback(cfg.listen) && !cfg.allow_insecure) {
            rr_error("refusing to listen on %s without authentication; set "
                     "REQRUN_API_KEYS_FILE, or REQRUN_ALLOW_INSECURE=1",
                     cfg.listen);
            rr_config_free(&cfg);
            return 2;
        }
    }

    rr_ingress ing;
    memset(&ing, 0, sizeof ing);
    ing.cfg = &cfg;
    ing.limits = (rr_chatreq_limits){
        .max_messages = (size_t)cfg.max_messages,
        .max_attempts = (uint32_t)cfg.max_attempts,
        .deadline_s = cfg.deadline_s,
        .wait_default_s = cfg.wait_timeout_s,
        .wait_max_s = cfg.wait_max_s,
    };
    int exit_code = 1;
    rr_httpd *httpd = NULL;
    rr_nats_submit *nats_submit = NULL;
    char err[512];
    if (cfg.api_keys_file != NULL && !provision_only) {
        if (rr_keyring_load(&ing.keys, cfg.api_keys_file, err, sizeof err) != RR_OK) {
            rr_error("REQRUN_API_KEYS_FILE %s: %s", cfg.api_keys_file, err);
            exit_code = 2;
            goto out;
        }
        rr_info("%zu API key(s) loaded", rr_keyring_size(ing.keys));
    }
    if (rr_webhook_secrets_load(&ing.webhook_secrets, &cfg, err, sizeof err) != RR_OK) {
        rr_error("webhook secrets: %s", err);
        exit_code = 2;
        goto out;
    }
    rr_webhook_policy_init(&ing.webhook_policy, cfg.webhook_allow);
    if (rr_bus_connect(&ing.bus, &cfg, "reqrun-ingress") != RR_OK)
        goto out;
    if (rr_bus_setup(ing.bus, &cfg, err, sizeof err) != RR_OK) {
        rr_error("NATS resources: %s", err);
        goto out;
    }
    if (provision_only) {
        rr_info("NATS resources provisioned");
        exit_code = 0;
        goto out;
    }
    if (rr_waiters_new(&ing.waiters, ing.bus) != RR_OK)
        goto out;
    ing.metrics = rr_metrics_new();
    register_metrics(&ing);
    if (rr_nats_submit_start(&nats_submit, &ing) != RR_OK)
        goto out;

    mg_init_library(0);
    rr_httpd_options hopts = {
        .listen = cfg.listen,
        .threads = (int)cfg.http_threads,
        .request_timeout_ms = 10000,
        .keep_alive_timeout_ms = 5000,
    };
    if (rr_httpd_start(&httpd, &hopts) != RR_OK)
        goto out;
    rr_http_api_register(&ing, httpd);
    rr_info("reqrun-ingress ready on http://%s", cfg.listen);

    int sig = rr_process_wait_signal();
    rr_info("signal %d: shutting down: readyz fails, held requests answer async, listener "
            "closes in %lld s",
            sig, (long long)cfg.shutdown_delay_s);
    atomic_store(&ing.shutting_down, true);
    rr_waiters_shutdown(ing.waiters);
    /* Load balancers see /readyz fail and stop sending before the listener goes. */
    struct timespec delay = {(time_t)cfg.shutdown_delay_s, 0};
    nanosleep(&delay, NULL);
    rr_nats_submit_stop(nats_submit);
    nats_submit = NULL;
    rr_httpd_stop(httpd);
    httpd = NULL;
    exit_code = 0;
out:
    rr_nats_submit_stop(nats_submit);
    rr_httpd_stop(httpd);
    rr_waiters_destroy(ing.waiters);
    if (ing.bus != NULL)
        rr_bus_drain(ing.bus, 5000);
    rr_bus_destroy(ing.bus);
    rr_metrics_destroy(ing.metrics);
    rr_keyring_destroy(ing.keys);
    rr_webhook_secrets_destroy(ing.webhook_secrets);
    rr_config_free(&cfg);
    if (httpd == NULL && exit_code == 0)
        rr_info("reqrun-ingress stopped");
    return exit_code;
}
