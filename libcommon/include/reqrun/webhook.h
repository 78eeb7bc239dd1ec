/* Webhooks (DESIGN §6, Standard Webhooks): per-tenant secrets, the SSRF guard, signing,
 * and one delivery over libcurl with the checked address pinned. */
#ifndef RR_WEBHOOK_H
#define RR_WEBHOOK_H

#include "reqrun/config.h"
#include "reqrun/ids.h"
#include "reqrun/record.h"
#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RR_WEBHOOK_SECRET_MAX 64
#define RR_WEBHOOK_TIMEOUT_MS 10000

typedef struct rr_webhook_tenant {
    char tenant[RR_TENANT_BUF];
    uint8_t secret[RR_WEBHOOK_SECRET_MAX];
    size_t secret_len;
    char default_url[2049]; /* "" when the tenant has none */
} rr_webhook_tenant;

typedef struct rr_webhook_secrets rr_webhook_secrets;

/* Parses lines "<tenant> whsec_<base64> [<default webhook url>]" ('#' comments). */
rr_status rr_webhook_secrets_parse(rr_webhook_secrets **out, const char *text, size_t len,
                                   char *err, size_t errlen);
/* REQRUN_WEBHOOK_SECRETS_FILE plus REQRUN_WEBHOOK_SECRET (tenant "default"); an empty
 * set when neither is configured. */
rr_status rr_webhook_secrets_load(rr_webhook_secrets **out, const rr_config *cfg, char *err,
                                  size_t errlen);
void rr_webhook_secrets_destroy(rr_webhook_secrets *s);
size_t rr_webhook_secrets_size(const rr_webhook_secrets *s);
/* Entry i (< size), in file order. */
const rr_webhook_tenant *rr_webhook_secrets_at(const rr_webhook_secrets *s, size_t i);
/* The tenant's secret (and default URL), or NULL. */
const rr_webhook_tenant *rr_webhook_secrets_find(const rr_webhook_secrets *s,
                                                 const char *tenant);

/* Hosts allowed over http and on private addresses (REQRUN_WEBHOOK_ALLOW). */
typedef struct rr_webhook_policy {
    char hosts[16][256];
    int n_hosts;
} rr_webhook_policy;

void rr_webhook_policy_init(rr_webhook_policy *p, const char *allow_list);
/* Submit-time check without DNS: http(s), a host, https unless the host is allowed. */
bool rr_webhook_url_acceptable(const rr_webhook_policy *p, const char *url, char *why,
                               size_t whylen);
/* True for loopback, private, link-local (cloud metadata), CGNAT, multicast,
 * unspecified and the like, for IPv4 and IPv6 (IPv4-mapped included). */
bool rr_webhook_address_private(const struct sockaddr *sa);

/* "v1,<base64 HMAC-SHA256(secret, msg_id "." timestamp "." body)>" */
void rr_webhook_sign(const uint8_t *secret, size_t secret_len, const char *msg_id,
                     int64_t timestamp_s, const char *body, size_t body_len, char out[128]);

typedef struct rr_webhook_result {
    bool delivered;          /* a 2xx answer */
    bool retryable;          /* worth another try later */
    int http_status;         /* 0 when none */
    char error_code[RR_CODE_BUF];
} rr_webhook_result;

/* POSTs body to url with the Standard Webhooks headers. Resolves the host, refuses
 * private addresses unless the host is allowed, pins the checked address for the
 * connection, follows no redirects. */
void rr_webhook_deliver(const rr_webhook_policy *p, const char *url, const char *msg_id,
                        int64_t timestamp_s, const char *body, size_t body_len,
                        const uint8_t *secret, size_t secret_len, rr_webhook_result *out);

/* The JSON body of a terminal event for a record: {id, object, type, status, attempts,
 * last_error_code, created_at, updated_at, metadata}. malloc'd. */
char *rr_webhook_payload(const rr_record *rec, size_t *len);

#endif
