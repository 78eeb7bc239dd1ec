/* Configuration: one table of env vars with defaults and bounds, read once at start. */
#include "reqrun/config.h"

#include "reqrun/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { T_STR, T_SECRET, T_INT, T_BOOL } entry_type;

typedef struct config_entry {
    const char *name;
    entry_type type;
    size_t offset;
    const char *def; /* NULL: unset */
    int64_t min, max;
    const char *help;
} config_entry;

#define F(field) offsetof(rr_config, field)
#define NOB 0, 0
#define MAX64 INT64_MAX

static const config_entry config_table[] = {
    {"REQRUN_NATS_URL", T_STR, F(nats_url), "nats://127.0.0.1:4222", NOB,
     "NATS server URL(s), comma-separated for a cluster"},
    {"REQRUN_NATS_CREDS", T_STR, F(nats_creds), NULL, NOB, "NATS credentials file"},
    {"REQRUN_NATS_USER", T_STR, F(nats_user), NULL, NOB, "NATS user"},
    {"REQRUN_NATS_PASSWORD", T_SECRET, F(nats_password), NULL, NOB, "NATS password"},
    {"REQRUN_NATS_TLS_CA", T_STR, F(nats_tls_ca), NULL, NOB,
     "CA file for TLS to NATS (turns TLS on)"},
    {"REQRUN_NATS_INBOX_PREFIX", T_STR, F(nats_inbox_prefix), "_INBOX", NOB,
     "subject prefix of this process's reply inboxes (one per service lets NATS users "
     "subscribe to their own replies only)"},
    {"REQRUN_LISTEN", T_STR, F(listen), "127.0.0.1:8080", NOB, "ingress HTTP listen address"},
    {"REQRUN_EXECUTOR_LISTEN", T_STR, F(executor_listen), "127.0.0.1:8081", NOB,
     "executor's /healthz, /readyz, /metrics"},
    {"REQRUN_MOCK_LISTEN", T_STR, F(mock_listen), "127.0.0.1:8090", NOB,
     "reqrun-mockllm listen address"},
    {"REQRUN_HTTP_THREADS", T_INT, F(http_threads), "1024", 8, 16384,
     "ingress HTTP worker threads: one per open connection, held requests included"},
    {"REQRUN_UPSTREAM_URL", T_STR, F(upstream_url), "https://api.openai.com/v1", NOB,
     "upstream base URL; the executor POSTs to <base>/chat/completions"},
    {"REQRUN_UPSTREAM_API_KEY", T_SECRET, F(upstream_api_key), NULL, NOB,
     "upstream API key (executor only)"},
    {"REQRUN_UPSTREAM_API_KEY_FILE", T_STR, F(upstream_api_key_file), NULL, NOB,
     "file holding the upstream API key (preferred over the variable)"},
    {"REQRUN_UPSTREAM_TIMEOUT_S", T_INT, F(upstream_timeout_s), "300", 1, 3600,
     "timeout of one upstream attempt"},
    {"REQRUN_EXECUTOR_CONCURRENCY", T_INT, F(executor_concurrency), "256", 1, 65536,
     "upstream calls in flight per executor"},
    {"REQRUN_MAX_ATTEMPTS", T_INT, F(max_attempts), "5", 1, 100,
     "default and cap of reqrun.max_attempts"},
    {"REQRUN_DEADLINE_S", T_INT, F(deadline_s), "3600", 1, 604800,
     "default and cap of reqrun.timeout_s (end-to-end deadline)"},
    {"REQRUN_RETRY_BASE_MS", T_INT, F(retry_base_ms), "500", 1, 3600000,
     "base of the full-jitter exponential backoff"},
    {"REQRUN_RETRY_MAX_MS", T_INT, F(retry_max_ms), "60000", 1, 3600000,
     "cap of the exponential backoff"},
    {"REQRUN_RETRY_AMBIGUOUS", T_BOOL, F(retry_ambiguous), "true", NOB,
     "retry attempts that were sent but got no answer"},
    {"REQRUN_WAIT_TIMEOUT_S", T_INT, F(wait_timeout_s), "20", 0, 3600,
     "how long wait:true holds a request"},
    {"REQRUN_WAIT_MAX_S", T_INT, F(wait_max_s), "120", 0, 3600,
     "cap of numeric waits and long-polls"},
    {"REQRUN_PUBLISH_TIMEOUT_MS", T_INT, F(publish_timeout_ms), "3000", 10, 60000,
     "how long the ingress waits for JetStream's PubAck before answering 503"},
    {"REQRUN_ACK_WAIT_S", T_INT, F(ack_wait_s), "30", 3, 3600,
     "AckWait of consumer executors (heartbeats every third of it)"},
    {"REQRUN_MAX_ACK_PENDING", T_INT, F(max_ack_pending), "100000", 1, 10000000,
     "MaxAckPending of consumer executors: in-flight calls plus waiting retries"},
    {"REQRUN_REPLICAS", T_INT, F(replicas), "1", 1, 5, "replicas of streams and buckets"},
    {"REQRUN_DEDUP_WINDOW_S", T_INT, F(dedup_window_s), "120", 1, 86400,
     "duplicate window of stream REQRUN_REQUESTS"},
    {"REQRUN_RECORD_TTL_S", T_INT, F(record_ttl_s), "86400", 60, 31536000,
     "how long records live: the idempotency promise"},
    {"REQRUN_STREAM_MAX_BYTES", T_INT, F(stream_max_bytes), "-1", -1, MAX64,
     "MaxBytes of REQRUN_REQUESTS (-1 unlimited); full gives 503"},
    {"REQRUN_PROVISION", T_BOOL, F(provision), "true", NOB,
     "create/update NATS resources at start (false: verify only)"},
    {"REQRUN_API_KEYS_FILE", T_STR, F(api_keys_file), NULL, NOB,
     "lines '<tenant> <sha256 hex of key> [<signing secret>]'; unset = dev mode"},
    {"REQRUN_ALLOW_INSECURE", T_BOOL, F(allow_insecure), "false", NOB,
     "dev mode may listen on a non-loopback address"},
    {"REQRUN_TENANT_MAX_PENDING", T_INT, F(tenant_max_pending), "10000", 1, 100000000,
     "non-terminal requests per tenant before 429"},
    {"REQRUN_MAX_BODY_BYTES", T_INT, F(max_body_bytes), "4194304", 1024, 7340032,
     "largest request body (413 above)"},
    {"REQRUN_MAX_MESSAGES", T_INT, F(max_messages), "2048", 1, 1000000,
     "largest messages array of a chat request"},
    {"REQRUN_WEBHOOK_SECRETS_FILE", T_STR, F(webhook_secrets_file), NULL, NOB,
     "lines '<tenant> whsec_<base64>'"},
    {"REQRUN_WEBHOOK_SECRET", T_SECRET, F(webhook_secret), NULL, NOB,
     "webhook secret of tenant default"},
    {"REQRUN_WEBHOOK_ALLOW", T_STR, F(webhook_allow), NULL, NOB,
     "hosts allowed over http and on private addresses (comma-separated)"},
    {"REQRUN_DRAIN_TIMEOUT_S", T_INT, F(drain_timeout_s), "30", 0, 3600,
     "on SIGTERM, how long in-flight work may finish before it is handed back"},
    {"REQRUN_SHUTDOWN_DELAY_S", T_INT, F(shutdown_delay_s), "2", 0, 300,
     "ingress: on SIGTERM, /readyz fails and held requests get the async object; new "
     "requests are still served (without waiting) this long before the listener closes"},
    {"REQRUN_INSTANCE_ID", T_STR, F(instance_id), NULL, NOB,
     "this process's name in records (default <hostname>-<pid>)"},
    {"REQRUN_LOG_LEVEL", T_STR, F(log_level), "info", NOB, "debug, info, warn or error"},
    {"REQRUN_LOG_BODIES", T_BOOL, F(log_bodies), "false", NOB,
     "log prompts and completions"},
    {"REQRUN_MOCK_LATENCY_MS", T_INT, F(mock_latency_ms), "0", 0, 3600000,
     "reqrun-mockllm: default latency of each answer"},
    {"REQRUN_MOCK_FAULT", T_STR, F(mock_fault), NULL, NOB,
     "reqrun-mockllm: default fault spec (429:N, 500:N, 503:N, hang, reset, quota, 400)"},
    {"REQRUN_MOCK_API_KEY", T_SECRET, F(mock_api_key), NULL, NOB,
     "reqrun-mockllm: when set, chat calls need Authorization: Bearer <this key> (401 "
     "otherwise, like a real provider)"},
};

#define N_ENTRIES (sizeof config_table / sizeof config_table[0])

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static char *read_secret_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Editors and `echo` add a newline; `kubectl create secret --from-file` keeps any
     * stray blank: trim both ends, or the key would go out as "Bearer  sk-...". */
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    const char *start = buf;
    while (isspace((unsigned char)*start))
        start++;
    return strdup(start);
}

static rr_status load_entry(rr_config *cfg, const config_entry *e, char *err, size_t errlen)
{
    const char *v = getenv(e->name);
    if (v != NULL && v[0] == '\0')
        v = NULL;
    if (v == NULL)
        v = e->def;
    char *base = (char *)cfg + e->offset;
    switch (e->type) {
    case T_STR:
    case T_SECRET:
        *(char **)base = v != NULL ? strdup(v) : NULL;
        return RR_OK;
    case T_BOOL:
        if (!parse_bool(v, (bool *)base)) {
            snprintf(err, errlen, "%s=%s is not a boolean (true/false/1/0)", e->name, v);
            return RR_CONFIG;
        }
        return RR_OK;
    case T_INT: {
        int64_t n;
        if (!parse_int(v, &n)) {
            snprintf(err, errlen, "%s=%s is not an integer", e->name, v);
            return RR_CONFIG;
        }
        if (n < e->min || n > e->max) {
            snprintf(err, errlen, "%s=%" PRId64 " is out of bounds [%" PRId64 ", %" PRId64 "]",
                     e->name, n, e->min, e->max);
            return RR_CONFIG;
        }
        *(int64_t *)base = n;
        return RR_OK;
    }
    }
    return RR_ERR;
}

/* A subject without wildcards, empty tokens or spaces: what an inbox prefix must be. */
static bool is_literal_subject(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 64)
        return false;
    char prev = '.';
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '.' && prev == '.')
            return false;
        if (*p == '*' || *p == '>' || isspace((unsigned char)*p) || !isprint((unsigned char)*p))
            return false;
        prev = *p;
    }
    return prev != '.';
}

static rr_status check_rules(rr_config *cfg, char *err, size_t errlen)
{
    if (!is_literal_subject(cfg->nats_inbox_prefix)) {
        snprintf(err, errlen,
                 "REQRUN_NATS_INBOX_PREFIX must be a subject of up to 64 characters without "
                 "wildcards, spaces or empty tokens");
        return RR_CONFIG;
    }
    if (cfg->deadline_s >= cfg->record_ttl_s) {
        snprintf(err, errlen, "REQRUN_DEADLINE_S must be below REQRUN_RECORD_TTL_S");
        return RR_CONFIG;
    }
    if (cfg->wait_timeout_s > cfg->wait_max_s) {
        snprintf(err, errlen, "REQRUN_WAIT_TIMEOUT_S must not exceed REQRUN_WAIT_MAX_S");
        return RR_CONFIG;
    }
    if (cfg->retry_base_ms > cfg->retry_max_ms) {
        snprintf(err, errlen, "REQRUN_RETRY_BASE_MS must not exceed REQRUN_RETRY_MAX_MS");
        return RR_CONFIG;
    }
    if (cfg->upstream_api_key_file != NULL) {
        free(cfg->upstream_api_key);
        cfg->upstream_api_key = read_secret_file(cfg->upstream_api_key_file);
        if (cfg->upstream_api_key == NULL || cfg->upstream_api_key[0] == '\0') {
            snprintf(err, errlen, "REQRUN_UPSTREAM_API_KEY_FILE: cannot read %s, or it is empty",
                     cfg->upstream_api_key_file);
            return RR_CONFIG;
        }
    }
    if (cfg->instance_id == NULL) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char id[96];
        snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
        cfg->instance_id = strdup(id);
    }
    return RR_OK;
}

rr_status rr_config_load(rr_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        rr_status s = load_entry(cfg, &config_table[i], err, errlen);
        if (s != RR_OK) {
            rr_config_free(cfg);
            return s;
        }
    }
    rr_status s = check_rules(cfg, err, errlen);
    if (s != RR_OK)
        rr_config_free(cfg);
    return s;
}

void rr_config_free(rr_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_ENTRIES; i++) {
        const config_entry *e = &config_table[i];
        if (e->type == T_STR || e->type == T_SECRET) {
            char **p = (char **)((char *)cfg + e->offset);
            free(*p);
            *p = NULL;
        }
    }
}

void rr_config_print_help(FILE *out, const char *binary, const char *summary)
{
    fprintf(out, "Usage: %s [--help]\n%s\n\nEnvironment (DESIGN §6):\n", binary, summary);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        const config_entry *e = &config_table[i];
        char bounds[64] = "";
        if (e->type == T_INT) {
            if (e->max == MAX64)
                snprintf(bounds, sizeof bounds, " [%" PRId64 "..]", e->min);
            else
                snprintf(bounds, sizeof bounds, " [%" PRId64 "..%" PRId64 "]", e->min, e->max);
        }
        fprintf(out, "  %-30s default %s%s\n      %s%s\n", e->name,
                e->def != NULL ? e->def : "(unset)", bounds, e->help,
                e->type == T_SECRET ? " (secret: never logged)" : "");
    }
}

bool rr_config_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static void append(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (*o + n >= outlen)
        n = outlen - 1 - *o;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

/* Copies s with the userinfo of every URL ("nats://user:pass@host") replaced by
 * "(redacted)": nats.c takes credentials and tokens inside REQRUN_NATS_URL. */
static void hide_url_credentials(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (;;) {
        const char *scheme = strstr(s, "://");
        if (scheme == NULL) {
            append(out, outlen, &o, s, strlen(s));
            return;
        }
        append(out, outlen, &o, s, (size_t)(scheme + 3 - s));
        s = scheme + 3;
        size_t authority = strcspn(s, "/?#,"); /* a comma starts the next URL */
        const char *at = memrchr(s, '@', authority);
        if (at != NULL) {
            append(out, outlen, &o, "(redacted)", 10);
            s = at;
        }
    }
}

void rr_config_log(const rr_config *cfg)
{
    char line[4096];
    size_t used = 0;
    line[0] = '\0';
    for (size_t i = 0; i < N_ENTRIES && used < sizeof line; i++) {
        const config_entry *e = &config_table[i];
        const char *base = (const char *)cfg + e->offset;
        char val[512];
        switch (e->type) {
        case T_STR:
            hide_url_credentials(*(char *const *)base ? *(char *const *)base : "", val,
                                 sizeof val);
            break;
        case T_SECRET:
            snprintf(val, sizeof val, "%s", *(char *const *)base ? "(set)" : "(unset)");
            break;
        case T_BOOL:
            snprintf(val, sizeof val, "%s", *(const bool *)base ? "true" : "false");
            break;
        case T_INT:
            snprintf(val, sizeof val, "%" PRId64, *(const int64_t *)base);
            break;
        }
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s=%s", used ? " " : "",
                                 e->name, val);
    }
    rr_info("config %s", line);
}

int64_t rr_config_max_deliver(const rr_config *cfg)
{
    return cfg->max_attempts * 2 + 5;
}
