/* HTTP handlers: parse the transport, call submit/requests, write the rr_reply. */
#include "http_api.h"

#include "authn.h"
#include "reply.h"
#include "requests.h"
#include "submit.h"
#include "waiters.h"

#include "reqrun/clock.h"
#include "reqrun/ids.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_reply(struct mg_connection *conn, const rr_reply *r)
{
    char location[64], attempts[16], retry_after[16];
    rr_http_header h[6];
    size_t n = 0;
    if (r->request_id[0] != '\0')
        h[n++] = (rr_http_header){"X-ReqRun-Request-Id", r->request_id};
    if (r->attempts > 0) {
        snprintf(attempts, sizeof attempts, "%d", r->attempts);
        h[n++] = (rr_http_header){"X-ReqRun-Attempts", attempts};
    }
    if (r->replayed)
        h[n++] = (rr_http_header){"Idempotent-Replayed", "true"};
    if (r->location) {
        snprintf(location, sizeof location, "/v1/requests/%s", r->request_id);
        h[n++] = (rr_http_header){"Location", location};
    }
    if (r->should_retry >= 0)
        h[n++] = (rr_http_header){"x-should-retry", r->should_retry ? "true" : "false"};
    if (r->retry_after_s > 0) {
        snprintf(retry_after, sizeof retry_after, "%d", r->retry_after_s);
        h[n++] = (rr_http_header){"Retry-After", retry_after};
    }
    rr_http_send(conn, r->status, "application/json", h, n, r->body, r->body_len);
}

/* The error code of an answer's body, for the log line ("" when not an error). */
static void error_code_of(const rr_reply *r, char *out, size_t n)
{
    out[0] = '\0';
    if (r->status < 400 || r->body == NULL)
        return;
    const char *p = strstr(r->body, "\"code\":\"");
    if (p != NULL)
        snprintf(out, n, "%.*s", (int)strcspn(p + 8, "\""), p + 8);
}

static int finish_request(rr_ingress *ing, struct mg_connection *conn, const char *route,
                          const char *tenant, int64_t started_us, rr_reply *r)
{
    send_reply(conn, r);
    char code[8], error[48];
    snprintf(code, sizeof code, "%d", r->status);
    rr_counter_add(ing->m.http_requests, route, code, 1);
    error_code_of(r, error, sizeof error);
    /* refusals and failures at info (they leave no executor line), successes at debug:
     * the executor logs every request's outcome once */
    rr_log(r->status >= 500 ? RR_LOG_WARN : r->status >= 400 ? RR_LOG_INFO : RR_LOG_DEBUG,
           RR_LOG_CTX(.request_id = r->request_id[0] ? r->request_id : NULL,
                      .tenant = tenant != NULL && tenant[0] ? tenant : NULL,
                      .attempt = r->attempts, .http_status = r->status,
                      .duration_us = rr_mono_us() - started_us + 1,
                      .code = error[0] ? error : NULL),
           "%s %s", rr_http_method(conn), route);
    int status = r->status;
    rr_reply_free(r);
    return status;
}

static int finish(rr_ingress *ing, struct mg_connection *conn, const char *route, rr_reply *r)
{
    return finish_request(ing, conn, route, NULL, rr_mono_us(), r);
}

static int fail(rr_ingress *ing, struct mg_connection *conn, const char *route,
                rr_api_code code, const char *message)
{
    rr_reply r;
    rr_reply_init(&r);
    rr_reply_error(&r, code, "%s", message);
    return finish(ing, conn, route, &r);
}

#define BODY_READ_TIMEOUT_MS 30000
#define SMALL_BODY_MAX 65536

/* The tenant of this request (see authn.h); body is what was read of it. */
static bool authenticate(rr_ingress *ing, struct mg_connection *conn, const char *body,
                         size_t len, char tenant[RR_TENANT_BUF], rr_reply *out)
{
    char target[2048];
    rr_http_target(conn, target, sizeof target);
    rr_authn_input in = {
        .method = rr_http_method(conn),
        .target = target,
        .authorization = rr_http_get_header(conn, "Authorization"),
        .timestamp = rr_http_get_header(conn, "X-ReqRun-Timestamp"),
        .nonce = rr_http_get_header(conn, "X-ReqRun-Nonce"),
        .signature = rr_http_get_header(conn, "X-ReqRun-Signature"),
        .body = body,
        .body_len = len,
    };
    return rr_authn(ing, &in, tenant, out);
}

/* Reads the body (bounded in size and time); on failure answers and returns false. */
static bool read_body(rr_ingress *ing, struct mg_connection *conn, const char *route,
                      size_t max, char **body, size_t *len, int *status)
{
    rr_status s = rr_http_read_body(conn, max, BODY_READ_TIMEOUT_MS, body, len);
    if (s == RR_OK)
        return true;
    char msg[128];
    rr_api_code code = RR_E_MALFORMED_REQUEST;
    if (s == RR_TOO_LARGE) {
        code = RR_E_BODY_TOO_LARGE;
        snprintf(msg, sizeof msg, "the body is larger than %zu bytes", max);
    } else if (s == RR_TIMEOUT) {
        code = RR_E_REQUEST_TIMEOUT;
        snprintf(msg, sizeof msg, "the body did not arrive within %d s",
                 BODY_READ_TIMEOUT_MS / 1000);
    } else {
        snprintf(msg, sizeof msg, "the body ended before Content-Length bytes arrived");
    }
    *status = fail(ing, conn, route, code, msg);
    return false;
}

static int handle_chat(struct mg_connection *conn, void *ctx)
{
    rr_ingress *ing = ctx;
    const char *route = "chat_completions";
    if (strcmp(rr_http_method(conn), "POST") != 0)
        return fail(ing, conn, route, RR_E_METHOD_NOT_ALLOWED,
                    "use POST /v1/chat/completions");
    int64_t started = rr_mono_us();
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    if (!read_body(ing, conn, route, (size_t)ing->cfg->max_body_bytes, &body, &len, &status))
        return status;
    rr_reply r;
    rr_reply_init(&r);
    char tenant[RR_TENANT_BUF] = "";
    if (authenticate(ing, conn, body, len, tenant, &r)) {
        rr_submit_input in = {tenant, body, len, rr_http_get_header(conn, "Idempotency-Key")};
        rr_submit(ing, &in, &r);
    }
    free(body);
    rr_histogram_observe(ing->m.submit_latency, (double)(rr_mono_us() - started) / 1e6);
    return finish_request(ing, conn, route, tenant, started, &r);
}

/* /v1/requests/<id> and /v1/requests/<id>/cancel */
static int handle_requests(struct mg_connection *conn, void *ctx)
{
    rr_ingress *ing = ctx;
    const char *path = rr_http_path(conn);
    static const char prefix[] = "/v1/requests/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return fail(ing, conn, "other", RR_E_NOT_FOUND, "no such route");
    const char *rest = path + sizeof prefix - 1;
    char id[64];
    const char *slash = strchr(rest, '/');
    size_t idlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    bool cancel = slash != NULL && strcmp(slash, "/cancel") == 0;
    const char *route = cancel ? "cancel_request" : "get_request";
    if ((slash != NULL && !cancel) || idlen == 0 || idlen >= sizeof id)
        return fail(ing, conn, route, RR_E_NOT_FOUND, "no such route");
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    const char *method = rr_http_method(conn);
    if (cancel ? strcmp(method, "POST") != 0 : strcmp(method, "GET") != 0)
        return fail(ing, conn, route, RR_E_METHOD_NOT_ALLOWED,
                    cancel ? "use POST to cancel" : "use GET to read a request");

    /* a body is unusual here, but a signature covers whatever was sent */
    int64_t started = rr_mono_us();
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    if (!read_body(ing, conn, route, SMALL_BODY_MAX, &body, &len, &status))
        return status;
    rr_reply r;
    rr_reply_init(&r);
    char tenant[RR_TENANT_BUF] = "";
    bool ok = authenticate(ing, conn, body, len, tenant, &r);
    free(body);
    if (!ok)
        return finish_request(ing, conn, route, NULL, started, &r);
    if (cancel) {
        rr_requests_cancel(ing, tenant, id, &r);
        return finish_request(ing, conn, route, tenant, started, &r);
    }
    char include[32] = "", wait[32] = "";
    rr_http_query(conn, "include", include, sizeof include);
    int64_t wait_ms = 0;
    if (rr_http_query(conn, "wait", wait, sizeof wait)) {
        char *end = NULL;
        double secs = strtod(wait, &end);
        if (end == wait || *end != '\0' || !(secs >= 0)) {
            rr_api_error e;
            rr_api_error_set(&e, RR_E_INVALID_FIELD, "wait",
                             "wait must be a number of seconds >= 0");
            rr_reply_api_error(&r, &e);
            return finish_request(ing, conn, route, tenant, started, &r);
        }
        if (secs > (double)ing->cfg->wait_max_s)
            secs = (double)ing->cfg->wait_max_s;
        wait_ms = (int64_t)(secs * 1000.0);
    }
    rr_requests_get(ing, tenant, id, strcmp(include, "attempts") == 0, wait_ms, &r);
    return finish_request(ing, conn, route, tenant, started, &r);
}

static int handle_healthz(struct mg_connection *conn, void *ctx)
{
    (void)ctx;
    return rr_http_send_probe_ok(conn, "ok");
}

static int handle_readyz(struct mg_connection *conn, void *ctx)
{
    rr_ingress *ing = ctx;
    if (atomic_load(&ing->shutting_down)) {
        rr_http_fail(conn, RR_E_UNAVAILABLE, "shutting down");
        return 503;
    }
    if (!rr_bus_ready(ing->bus)) {
        rr_http_fail(conn, RR_E_UNAVAILABLE, "NATS or the request stream is not reachable");
        return 503;
    }
    return rr_http_send_probe_ok(conn, "ready");
}

static int handle_metrics(struct mg_connection *conn, void *ctx)
{
    rr_ingress *ing = ctx;
    return rr_http_send_metrics(conn, ing->metrics);
}

static int handle_other(struct mg_connection *conn, void *ctx)
{
    return fail(ctx, conn, "other", RR_E_NOT_FOUND, "no such route");
}

void rr_http_api_register(rr_ingress *ing, rr_httpd *h)
{
    rr_httpd_route(h, "/v1/chat/completions", handle_chat, ing);
    rr_httpd_route(h, "/v1/requests", handle_requests, ing);
    rr_httpd_route(h, "/healthz", handle_healthz, ing);
    rr_httpd_route(h, "/readyz", handle_readyz, ing);
    rr_httpd_route(h, "/metrics", handle_metrics, ing);
    rr_httpd_route(h, "**", handle_other, ing);
}
