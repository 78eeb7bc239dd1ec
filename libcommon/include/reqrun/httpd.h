/* HTTP server helpers over CivetWeb: start/stop, routes, bounded body reads, and
 * answers with ReqRun's headers and error bodies. */
#ifndef RR_HTTPD_H
#define RR_HTTPD_H

#include "reqrun/api_error.h"
#include "reqrun/metrics.h"
#include "reqrun/status.h"

#include <civetweb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rr_httpd rr_httpd;
/* A route handler; returns the HTTP status it sent (CivetWeb convention). */
typedef int (*rr_httpd_handler)(struct mg_connection *conn, void *ctx);

typedef struct rr_httpd_options {
    const char *listen;        /* "127.0.0.1:8080" */
    int threads;
    int request_timeout_ms;    /* whole request read, and each write */
    int keep_alive_timeout_ms;
} rr_httpd_options;

/* Starts the server. RR_IO when the address cannot be bound. */
rr_status rr_httpd_start(rr_httpd **out, const rr_httpd_options *opts);
/* Routes uri (exact, or a prefix when it ends with '/'... see CivetWeb) to handler. */
void rr_httpd_route(rr_httpd *h, const char *uri, rr_httpd_handler handler, void *ctx);
/* Stops accepting, waits for the workers, frees. NULL-safe. */
void rr_httpd_stop(rr_httpd *h);
/* The port actually bound (useful with port 0). */
int rr_httpd_port(rr_httpd *h);

typedef struct rr_http_header {
    const char *name;
    const char *value;
} rr_http_header;

/* Sends a complete answer with Content-Length. */
void rr_http_send(struct mg_connection *conn, int status, const char *content_type,
                  const rr_http_header *headers, size_t n_headers, const void *body,
                  size_t len);
/* Sends the OpenAI-style error body of e with its status. */
void rr_http_send_error(struct mg_connection *conn, const rr_api_error *e,
                        const rr_http_header *headers, size_t n_headers);
/* Shortcut: rr_api_error_set + rr_http_send_error. */
void rr_http_fail(struct mg_connection *conn, rr_api_code code, const char *message);
/* Answers 200 {"status":"<word>"} (health and readiness probes); returns 200. */
int rr_http_send_probe_ok(struct mg_connection *conn, const char *word);
/* Answers m in the Prometheus text format (500 when out of memory); returns the status. */
int rr_http_send_metrics(struct mg_connection *conn, rr_metrics *m);
/* Reads the whole body into a malloc'd NUL-terminated buffer. RR_TOO_LARGE past max
 * (declared or streamed), RR_TIMEOUT when it takes longer than timeout_ms in all (a
 * client trickling bytes), RR_IO when the client sent less than it declared. */
rr_status rr_http_read_body(struct mg_connection *conn, size_t max, int64_t timeout_ms,
                            char **body, size_t *len);
/* A request header, or NULL. */
const char *rr_http_get_header(const struct mg_connection *conn, const char *name);
/* A query parameter into out; false when absent. */
bool rr_http_query(const struct mg_connection *conn, const char *name, char *out, size_t outlen);
/* The request target as sent: raw path, plus "?query" when present. */
void rr_http_target(const struct mg_connection *conn, char *out, size_t outlen);
/* Method and path of the request. */
const char *rr_http_method(const struct mg_connection *conn);
const char *rr_http_path(const struct mg_connection *conn);

#endif
