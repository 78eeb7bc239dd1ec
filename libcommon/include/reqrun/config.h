/* The one configuration table (DESIGN §6): env vars, defaults, bounds, --help and the
 * start-up log line. No other module calls getenv. */
#ifndef RR_CONFIG_H
#define RR_CONFIG_H

#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rr_config {
    /* NATS */
    char *nats_url;
    char *nats_creds;
    char *nats_user;
    char *nats_password;
    char *nats_tls_ca;
    char *nats_inbox_prefix;
    /* listen addresses */
    char *listen;
    char *executor_listen;
    char *mock_listen;
    int64_t http_threads;
    /* upstream */
    char *upstream_url;
    char *upstream_api_key; /* from REQRUN_UPSTREAM_API_KEY or the _FILE; secret */
    char *upstream_api_key_file;
    int64_t upstream_timeout_s;
    int64_t executor_concurrency;
    /* retries and deadlines */
    int64_t max_attempts;
    int64_t deadline_s;
    int64_t retry_base_ms;
    int64_t retry_max_ms;
    bool retry_ambiguous;
    /* waiting */
    int64_t wait_timeout_s;
    int64_t wait_max_s;
    int64_t publish_timeout_ms;
    /* JetStream resources */
    int64_t ack_wait_s;
    int64_t max_ack_pending;
    int64_t replicas;
    int64_t dedup_window_s;
    int64_t record_ttl_s;
    int64_t stream_max_bytes;
    bool provision;
    /* tenants and limits */
    char *api_keys_file;
    bool allow_insecure;
    int64_t tenant_max_pending;
    int64_t max_body_bytes;
    int64_t max_messages;
    /* webhooks */
    char *webhook_secrets_file;
    char *webhook_secret;
    char *webhook_allow;
    /* process */
    int64_t drain_timeout_s;
    int64_t shutdown_delay_s;
    char *instance_id;
    char *log_level;
    bool log_bodies;
    /* mock upstream */
    int64_t mock_latency_ms;
    char *mock_fault;
    char *mock_api_key;
} rr_config;

/* Loads every variable from the environment into cfg (defaults for unset ones), checks
 * bounds and cross-field rules, and reads REQRUN_UPSTREAM_API_KEY_FILE when set.
 * On RR_CONFIG, err holds one sentence naming the variable. Free with rr_config_free. */
rr_status rr_config_load(rr_config *cfg, char *err, size_t errlen);
/* Frees the strings cfg owns (not cfg itself). NULL-safe. */
void rr_config_free(rr_config *cfg);
/* Prints the table (name, default, bounds, meaning) for --help. */
void rr_config_print_help(FILE *out, const char *binary, const char *summary);
/* Logs one line with every setting; secrets show as "(set)" or "(unset)". */
void rr_config_log(const rr_config *cfg);
/* Handles the common argv of every binary: --help prints the table and returns true
 * (the caller exits 0). Unknown arguments are left to the caller. */
bool rr_config_wants_help(int argc, char **argv);

/* MaxDeliver of consumer "executors": REQRUN_MAX_ATTEMPTS x 2 + 5 (DESIGN §5). */
int64_t rr_config_max_deliver(const rr_config *cfg);

#endif
