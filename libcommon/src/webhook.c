/* Webhook secrets, SSRF guard, signing and delivery (libcurl easy, one call at a time). */
#include "reqrun/webhook.h"

#include "reqrun/clock.h"
#include "reqrun/crypto.h"
#include "reqrun/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct rr_webhook_secrets {
    rr_webhook_tenant *t;
    size_t n;
};

/* ---- secrets ---- */

static rr_status add_tenant(rr_webhook_secrets *s, const char *tenant, const char *whsec,
                            const char *url, char *err, size_t errlen)
{
    if (!rr_tenant_valid(tenant)) {
        snprintf(err, errlen, "tenant %.64s must match ^[a-z0-9_-]{1,64}$", tenant);
        return RR_INVALID;
    }
    if (strncmp(whsec, "whsec_", 6) != 0) {
        snprintf(err, errlen, "the secret of %s must start with whsec_", tenant);
        return RR_INVALID;
    }
    rr_webhook_tenant e;
    memset(&e, 0, sizeof e);
    if (rr_base64_decode(whsec + 6, e.secret, sizeof e.secret, &e.secret_len) != RR_OK ||
        e.secret_len < 16) {
        snprintf(err, errlen, "the secret of %s is not base64 of 16 to 64 bytes", tenant);
        return RR_INVALID;
    }
    if (rr_webhook_secrets_find(s, tenant) != NULL) {
        snprintf(err, errlen, "tenant %s is listed twice", tenant);
        return RR_INVALID;
    }
    snprintf(e.tenant, sizeof e.tenant, "%s", tenant);
    if (url != NULL && strlen(url) >= sizeof e.default_url) {
        snprintf(err, errlen, "the default URL of %s is too long", tenant);
        return RR_INVALID;
    }
    snprintf(e.default_url, sizeof e.default_url, "%s", url != NULL ? url : "");
    rr_webhook_tenant *grown = realloc(s->t, (s->n + 1) * sizeof *grown);
    if (grown == NULL)
        return RR_NOMEM;
    grown[s->n++] = e;
    s->t = grown;
    return RR_OK;
}

rr_status rr_webhook_secrets_parse(rr_webhook_secrets **out, const char *text, size_t len,
                                   char *err, size_t errlen)
{
    *out = NULL;
    rr_webhook_secrets *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RR_NOMEM;
    rr_status st = RR_OK;
    int lineno = 0;
    for (size_t pos = 0; pos < len && st == RR_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        char line[4096];
        if (n >= sizeof line || memchr(text + pos, '\0', n) != NULL) {
            snprintf(err, errlen, "line %d: too long or not text", lineno);
            st = RR_INVALID;
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + 1;
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *save = NULL, *f[4] = {NULL};
        int nf = 0;
        for (char *tok = strtok_r(line, " \t\r", &save); tok != NULL && nf < 4;
             tok = strtok_r(NULL, " \t\r", &save))
            f[nf++] = tok;
        if (nf == 0)
            continue;
        if (nf < 2 || nf > 3) {
            snprintf(err, errlen, "line %d: expected '<tenant> whsec_<base64> [<url>]'", lineno);
            st = RR_INVALID;
            break;
        }
        char sub[256];
        st = add_tenant(s, f[0], f[1], nf == 3 ? f[2] : NULL, sub, sizeof sub);
        if (st != RR_OK)
            snprintf(err, errlen, "line %d: %s", lineno, sub);
    }
    if (st != RR_OK) {
        rr_webhook_secrets_destroy(s);
        return st;
    }
    *out = s;
    return RR_OK;
}

rr_status rr_webhook_secrets_load(rr_webhook_secrets **out, const rr_config *cfg, char *err,
                                  size_t errlen)
{
    rr_webhook_secrets *s = NULL;
    rr_status st;
    if (cfg->webhook_secrets_file != NULL) {
        FILE *f = fopen(cfg->webhook_secrets_file, "rb");
        if (f == NULL) {
            snprintf(err, errlen, "cannot open %s", cfg->webhook_secrets_file);
            return RR_IO;
        }
        char *buf = malloc(1 << 20);
        size_t n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
        fclose(f);
        if (buf == NULL)
            return RR_NOMEM;
        st = rr_webhook_secrets_parse(&s, buf, n, err, errlen);
        free(buf);
    } else {
        st = rr_webhook_secrets_parse(&s, "", 0, err, errlen);
    }
    if (st == RR_OK && cfg->webhook_secret != NULL && rr_webhook_secrets_find(s, "default") == NULL)
        st = add_tenant(s, "default", cfg->webhook_secret, NULL, err, errlen);
    if (st != RR_OK) {
        rr_webhook_secrets_destroy(s);
        return st;
    }
    *out = s;
    return RR_OK;
}

void rr_webhook_secrets_destroy(rr_webhook_secrets *s)
{
    if (s == NULL)
        return;
    free(s->t);
    free(s);
}

size_t rr_webhook_secrets_size(const rr_webhook_secrets *s)
{
    return s != NULL ? s->n : 0;
}

const rr_webhook_tenant *rr_webhook_secrets_at(const rr_webhook_secrets *s, size_t i)
{
    return s != NULL && i < s->n ? &s->t[i] : NULL;
}

const rr_webhook_tenant *rr_webhook_secrets_find(const rr_webhook_secrets *s,
                                                 const char *tenant)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (strcmp(s->t[i].tenant, tenant) == 0)
            return &s->t[i];
    }
    return NULL;
}

/* ---- URL policy ---- */

void rr_webhook_policy_init(rr_webhook_policy *p, const char *allow_list)
{
    memset(p, 0, sizeof *p);
    if (allow_list == NULL)
        return;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", allow_list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok != NULL && p->n_hosts < 16;
         tok = strtok_r(NULL, ", ", &save))
        snprintf(p->hosts[p->n_hosts++], sizeof p->hosts[0], "%s", tok);
}

static bool host_allowed(const rr_webhook_policy *p, const char *host)
{
    for (int i = 0; i < p->n_hosts; i++) {
        if (strcasecmp(p->hosts[i], host) == 0)
            return true;
    }
    return false;
}

typedef struct url_parts {
    char scheme[8];
    char host[256];
    long port;
} url_parts;

static bool parse_url(const char *url, url_parts *out)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return false;
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
              strlen(scheme) < sizeof out->scheme && strlen(host) < sizeof out->host;
    if (ok) {
        snprintf(out->scheme, sizeof out->scheme, "%s", scheme);
        /* IPv6 literals come back bracketed */
        size_t hl = strlen(host);
        if (hl > 2 && host[0] == '[' && host[hl - 1] == ']')
            snprintf(out->host, sizeof out->host, "%.*s", (int)(hl - 2), host + 1);
        else
            snprintf(out->host, sizeof out->host, "%s", host);
        out->port = strtol(port, NULL, 10);
        ok = (strcmp(out->scheme, "https") == 0 || strcmp(out->scheme, "http") == 0) &&
             out->host[0] != '\0' && out->port > 0 && out->port < 65536;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

bool rr_webhook_url_acceptable(const rr_webhook_policy *p, const char *url, char *why,
                               size_t whylen)
{
    url_parts parts;
    if (!parse_url(url, &parts)) {
        snprintf(why, whylen, "not an http(s) URL with a host");
        return false;
    }
    if (strcmp(parts.scheme, "https") != 0 && !host_allowed(p, parts.host)) {
        snprintf(why, whylen, "webhooks need https unless the host is in REQRUN_WEBHOOK_ALLOW");
        return false;
    }
    return true;
}

bool rr_webhook_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 0 ||                      /* 0.0.0.0/8 */
               (a >> 24) == 10 ||                     /* 10/8 */
               (a >> 24) == 127 ||                    /* loopback */
               (a >> 16) == ((169u << 8) | 254) ||    /* link-local, cloud metadata */
               (a >> 20) == ((172u << 4) | 1) ||      /* 172.16/12 */
               (a >> 16) == ((192u << 8) | 168) ||    /* 192.168/16 */
               (a >> 22) == ((100u << 2) | 1) ||      /* 100.64/10 CGNAT */
               (a >> 17) == ((198u << 7) | 9) ||      /* 198.18/15 */
               (a >> 24) >= 224;                      /* multicast, reserved, broadcast */
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        const uint8_t *b = a->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, b + 12, 4);
            return rr_webhook_address_private((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
               IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_SITELOCAL(a) ||
               IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc || /* fc00::/7 */
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8); /* doc */
    }
    return true; /* anything else is not a public internet address */
}

void rr_webhook_sign(const uint8_t *secret, size_t secret_len, const char *msg_id,
                     int64_t timestamp_s, const char *body, size_t body_len, char out[128])
{
    char prefix[160];
    int n = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id, (long long)timestamp_s);
    char *msg = malloc((size_t)n + body_len);
    if (msg == NULL) {
        out[0] = '\0';
        return;
    }
    memcpy(msg, prefix, (size_t)n);
    memcpy(msg + n, body, body_len);
    uint8_t mac[RR_SHA256_LEN];
    rr_hmac_sha256(secret, secret_len, msg, (size_t)n + body_len, mac);
    free(msg);
    char b64[64];
    rr_base64_encode(mac, sizeof mac, b64, sizeof b64);
    snprintf(out, 128, "v1,%s", b64);
}

static void fail(rr_webhook_result *out, const char *code, bool retryable)
{
    snprintf(out->error_code, sizeof out->error_code, "%s", code);
    out->retryable = retryable;
}

/* Resolves host and picks the address to pin; refuses private ones unless allowed. */
static bool resolve_checked(const rr_webhook_policy *p, const url_parts *u, char *addr,
                            size_t addrlen, rr_webhook_result *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%ld", u->port);
    if (getaddrinfo(u->host, port, &hints, &res) != 0 || res == NULL) {
        fail(out, "webhook_dns_failed", true);
        return false;
    }
    bool allowed = host_allowed(p, u->host);
    bool ok = true;
    /* every address the name has must be public: DNS answers can rotate */
    for (struct addrinfo *ai = res; ai != NULL && ok; ai = ai->ai_next) {
        if (!allowed && rr_webhook_address_private(ai->ai_addr))
            ok = false;
    }
    if (ok) {
        const void *raw = res->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        char text[INET6_ADDRSTRLEN];
        inet_ntop(res->ai_family, raw, text, sizeof text);
        snprintf(addr, addrlen, res->ai_family == AF_INET6 ? "[%s]" : "%s", text);
    }
    freeaddrinfo(res);
    if (!ok)
        fail(out, "webhook_address_refused", false);
    return ok;
}

static size_t discard(char *d, size_t size, size_t nmemb, void *ud)
{
    (void)d;
    (void)ud;
    return size * nmemb;
}

void rr_webhook_deliver(const rr_webhook_policy *p, const char *url, const char *msg_id,
                        int64_t timestamp_s, const char *body, size_t body_len,
                        const uint8_t *secret, size_t secret_len, rr_webhook_result *out)
{
    memset(out, 0, sizeof *out);
    url_parts u;
    char why[128];
    if (!rr_webhook_url_acceptable(p, url, why, sizeof why) || !parse_url(url, &u)) {
        fail(out, "webhook_url_refused", false);
        return;
    }
    char addr[INET6_ADDRSTRLEN + 2];
    if (!resolve_checked(p, &u, addr, sizeof addr, out))
        return;
    char pin[512], h_id[160], h_ts[64], h_sig[160];
    snprintf(pin, sizeof pin, "%s:%ld:%s", u.host, u.port, addr);
    char sig[128];
    rr_webhook_sign(secret, secret_len, msg_id, timestamp_s, body, body_len, sig);
    snprintf(h_id, sizeof h_id, "webhook-id: %s", msg_id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)timestamp_s);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);

    CURL *c = curl_easy_init();
    if (c == NULL) {
        fail(out, "webhook_internal_error", true);
        return;
    }
    struct curl_slist *resolve = curl_slist_append(NULL, pin);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: ReqRun-Webhooks/1");
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, h_id);
    h = curl_slist_append(h, h_ts);
    h = curl_slist_append(h, h_sig);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve); /* connect only to the checked address */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)RR_WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(c);

    out->http_status = (int)status;
    if (rc != CURLE_OK) {
        fail(out, rc == CURLE_OPERATION_TIMEDOUT ? "webhook_timeout" : "webhook_unreachable",
             true);
        return;
    }
    if (status >= 200 && status < 300) {
        out->delivered = true;
        return;
    }
    /* 4xx other than 408/429 mean the receiver refuses this message for good */
    bool retry = status >= 500 || status == 408 || status == 429 || status < 200 ||
                 (status >= 300 && status < 400);
    char code[RR_CODE_BUF];
    snprintf(code, sizeof code, "webhook_http_%ld", status);
    fail(out, code, retry);
}

char *rr_webhook_payload(const rr_record *rec, size_t *len)
{
    char created[RR_RFC3339_BUF], updated[RR_RFC3339_BUF], type[48];
    rr_rfc3339(rec->created_ms, created);
    rr_rfc3339(rec->updated_ms, updated);
    snprintf(type, sizeof type, "request.%s", rr_state_str(rec->state));
    json_t *meta = json_object();
    for (size_t i = 0; i < rec->n_metadata; i++)
        json_object_set_new(meta, rec->metadata[i].key, json_string(rec->metadata[i].value));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:s, s:s, s:o}", "id", rec->id,
                          "object", "reqrun.webhook", "type", type, "status",
                          rr_state_str(rec->state), "attempts", (int)rec->attempts,
                          "last_error_code",
                          rec->last_error.code[0] ? json_string(rec->last_error.code)
                                                  : json_null(),
                          "created_at", created, "updated_at", updated, "metadata", meta);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}
