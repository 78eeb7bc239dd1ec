/* CivetWeb server wrapper and answer helpers. */
#include "reqrun/httpd.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rr_httpd {
    struct mg_context *ctx;
};

static int log_civetweb(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    rr_debug("civetweb: %s", message);
    return 1; /* handled: keep CivetWeb from writing to stderr itself */
}

/* CivetWeb's own errors (malformed requests, headers too large, ...) get ReqRun's JSON
 * error body too. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    rr_api_code code;
    switch (status) {
    case 404: code = RR_E_NOT_FOUND; break;
    case 405: code = RR_E_METHOD_NOT_ALLOWED; break;
    case 408: code = RR_E_REQUEST_TIMEOUT; break;
    case 413: code = RR_E_BODY_TOO_LARGE; break;
    case 431: code = RR_E_HEADERS_TOO_LARGE; break;
    case 500: code = RR_E_INTERNAL; break;
    case 503: code = RR_E_UNAVAILABLE; break;
    default: code = RR_E_MALFORMED_REQUEST; break;
    }
    rr_api_error e;
    if (status == 400 && errmsg != NULL && strcmp(errmsg, "Malformed message") == 0)
        errmsg = "malformed request, or a request line and headers larger than 64 KiB";
    rr_api_error_set(&e, code, NULL, "%s", errmsg != NULL && errmsg[0] ? errmsg : "bad request");
    size_t len = 0;
    char *body = rr_api_error_json(&e, &len);
    if (body == NULL)
        return 1;
    rr_http_header close_hdr = {"Connection", "close"};
    rr_http_send(conn, status, "application/json", &close_hdr, 1, body, len);
    free(body);
    return 0;
}

/* Headers are refused past RR_HTTP_MAX_HEADER_BYTES with a clear 431. CivetWeb itself
 * answers an overflow of its (larger) buffer with a bare 400, so the limit is checked
 * here, before any handler, with room to spare in CivetWeb's buffer. */
#define RR_HTTP_MAX_HEADER_BYTES 16384
#define CIVETWEB_REQUEST_BUFFER "65536"

static int on_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    size_t total = strlen(ri->request_method) + strlen(ri->request_uri) + 16;
    for (int i = 0; i < ri->num_headers; i++)
        total += strlen(ri->http_headers[i].name) + strlen(ri->http_headers[i].value) + 4;
    if (total <= RR_HTTP_MAX_HEADER_BYTES)
        return 0; /* go on to the handlers */
    rr_api_error e;
    rr_api_error_set(&e, RR_E_HEADERS_TOO_LARGE, NULL,
                     "request line and headers exceed %d bytes", RR_HTTP_MAX_HEADER_BYTES);
    rr_http_header close_hdr = {"Connection", "close"};
    rr_http_send_error(conn, &e, &close_hdr, 1);
    return 431;
}

rr_status rr_httpd_start(rr_httpd **out, const rr_httpd_options *opts)
{
    *out = NULL;
    rr_httpd *h = calloc(1, sizeof *h);
    if (h == NULL)
        return RR_NOMEM;
    char threads[16], req_timeout[16], ka_timeout[16];
    snprintf(threads, sizeof threads, "%d", opts->threads);
    snprintf(req_timeout, sizeof req_timeout, "%d", opts->request_timeout_ms);
    snprintf(ka_timeout, sizeof ka_timeout, "%d", opts->keep_alive_timeout_ms);
    const char *options[] = {
        "listening_ports", opts->listen,
        "num_threads", threads,
        "request_timeout_ms", req_timeout,
        "keep_alive_timeout_ms", ka_timeout,
        "enable_keep_alive", "yes",
        "tcp_nodelay", "1",
        "max_request_size", CIVETWEB_REQUEST_BUFFER, /* headers only; see on_begin_request */
        "listen_backlog", "1024",
        "decode_url", "no", /* keep the target as sent: signatures cover it */
        NULL,
    };
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_civetweb;
    cb.http_error = on_http_error;
    cb.begin_request = on_begin_request;
    h->ctx = mg_start(&cb, NULL, options);
    if (h->ctx == NULL) {
        rr_error("cannot listen on %s", opts->listen);
        free(h);
        return RR_IO;
    }
    *out = h;
    return RR_OK;
}

void rr_httpd_route(rr_httpd *h, const char *uri, rr_httpd_handler handler, void *ctx)
{
    mg_set_request_handler(h->ctx, uri, handler, ctx);
}

void rr_httpd_stop(rr_httpd *h)
{
    if (h == NULL)
        return;
    mg_stop(h->ctx);
    free(h);
}

int rr_httpd_port(rr_httpd *h)
{
    struct mg_server_port ports[4];
    int n = mg_get_server_ports(h->ctx, 4, ports);
    return n > 0 ? ports[0].port : 0;
}

static const char *reason(int status)
{
    const char *r = mg_get_response_code_text(NULL, status);
    return r != NULL ? r : "";
}

void rr_http_send(struct mg_connection *conn, int status, const char *content_type,
                  const rr_http_header *headers, size_t n_headers, const void *body,
                  size_t len)
{
    /* Head and a small body leave in one write: one segment with TCP_NODELAY. */
    char buf[8192];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                     reason(status), content_type, len);
    for (size_t i = 0; i < n_headers && n > 0 && (size_t)n < sizeof buf; i++) {
        if (headers[i].value != NULL)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%s: %s\r\n", headers[i].name,
                          headers[i].value);
    }
    if (n < 0 || (size_t)n > sizeof buf - 3)
        return; /* headers never get this long: ours are bounded */
    buf[n++] = '\r';
    buf[n++] = '\n';
    if (len > 0 && len <= sizeof buf - (size_t)n) {
        memcpy(buf + n, body, len);
        mg_write(conn, buf, (size_t)n + len);
        return;
    }
    mg_write(conn, buf, (size_t)n);
    if (len > 0)
        mg_write(conn, body, len);
}

void rr_http_send_error(struct mg_connection *conn, const rr_api_error *e,
                        const rr_http_header *headers, size_t n_headers)
{
    size_t len = 0;
    char *body = rr_api_error_json(e, &len);
    if (body == NULL) {
        static const char fallback[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
            "\"code\":\"internal_error\"}}";
        rr_http_send(conn, 500, "application/json", NULL, 0, fallback, sizeof fallback - 1);
        return;
    }
    rr_http_send(conn, rr_api_error_status(e->code), "application/json", headers, n_headers,
                 body, len);
    free(body);
}

void rr_http_fail(struct mg_connection *conn, rr_api_code code, const char *message)
{
    rr_api_error e;
    rr_api_error_set(&e, code, NULL, "%s", message);
    rr_http_send_error(conn, &e, NULL, 0);
}

int rr_http_send_probe_ok(struct mg_connection *conn, const char *word)
{
    char body[64];
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\"}", word);
    rr_http_send(conn, 200, "application/json", NULL, 0, body, (size_t)n);
    return 200;
}

int rr_http_send_metrics(struct mg_connection *conn, rr_metrics *m)
{
    size_t len = 0;
    char *text = rr_metrics_render(m, &len);
    if (text == NULL) {
        rr_http_fail(conn, RR_E_INTERNAL, "out of memory");
        return 500;
    }
    rr_http_send(conn, 200, "text/plain; version=0.0.4", NULL, 0, text, len);
    free(text);
    return 200;
}

rr_status rr_http_read_body(struct mg_connection *conn, size_t max, int64_t timeout_ms,
                            char **body, size_t *len)
{
    int64_t deadline = rr_mono_ms() + timeout_ms;
    *body = NULL;
    *len = 0;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    long long declared = ri->content_length;
    if (declared > (long long)max)
        return RR_TOO_LARGE;
    size_t cap = declared >= 0 ? (size_t)declared + 1 : 16384;
    char *buf = malloc(cap);
    if (buf == NULL)
        return RR_NOMEM;
    size_t used = 0;
    for (;;) {
        if (used + 1 >= cap) {
            if (declared >= 0)
                break; /* read exactly what was declared */
            if (cap > max + 1) {
                free(buf);
                return RR_TOO_LARGE;
            }
            size_t grown_cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *grown = realloc(buf, grown_cap);
            if (grown == NULL) {
                free(buf);
                return RR_NOMEM;
            }
            buf = grown;
            cap = grown_cap;
        }
        if (rr_mono_ms() > deadline) {
            free(buf);
            return RR_TIMEOUT;
        }
        int n = mg_read(conn, buf + used, cap - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (declared < 0 && used > max) {
            free(buf);
            return RR_TOO_LARGE;
        }
    }
    if (declared >= 0 && used != (size_t)declared) {
        free(buf);
        return RR_IO; /* a stalled or truncated body: CivetWeb hands us a short read */
    }
    buf[used] = '\0';
    *body = buf;
    *len = used;
    return RR_OK;
}

const char *rr_http_get_header(const struct mg_connection *conn, const char *name)
{
    return mg_get_header(conn, name);
}

bool rr_http_query(const struct mg_connection *conn, const char *name, char *out, size_t outlen)
{
    const char *qs = mg_get_request_info(conn)->query_string;
    if (qs == NULL)
        return false;
    return mg_get_var(qs, strlen(qs), name, out, outlen) >= 0;
}

void rr_http_target(const struct mg_connection *conn, char *out, size_t outlen)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri_raw != NULL ? ri->local_uri_raw : ri->local_uri;
    if (ri->query_string != NULL)
        snprintf(out, outlen, "%s?%s", path, ri->query_string);
    else
        snprintf(out, outlen, "%s", path);
}

const char *rr_http_method(const struct mg_connection *conn)
{
    return mg_get_request_info(conn)->request_method;
}

const char *rr_http_path(const struct mg_connection *conn)
{
    return mg_get_request_info(conn)->local_uri;
}
