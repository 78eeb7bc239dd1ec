/* JSON-line logger. Lines are built with jansson so every field is escaped correctly. */
#include "reqrun/log.h"

#include "reqrun/clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set once in main before any thread starts; read-only afterwards. */
static const char *log_service = "reqrun";
static rr_log_level log_min = RR_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static json_t *text_or_marker(const char *s)
{
    json_t *v = json_string(s);
    return v != NULL ? v : json_string("(not valid UTF-8)");
}

void rr_log_init(const char *service, rr_log_level min_level)
{
    log_service = service;
    log_min = min_level;
}

bool rr_log_level_parse(const char *s, rr_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rr_log_level)i;
            return true;
        }
    }
    return false;
}

bool rr_log_enabled(rr_log_level level)
{
    return level >= log_min;
}

void rr_log(rr_log_level level, const rr_log_ctx *ctx, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[RR_RFC3339_BUF];
    rr_rfc3339(rr_now_ms(), ts);
    json_t *o = json_object();
    /* json_string refuses invalid UTF-8 (a truncated message, bytes from a client). */
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "svc", json_string(log_service));
    json_object_set_new(o, "msg", text_or_marker(msg));
    if (ctx != NULL) {
        if (ctx->request_id != NULL)
            json_object_set_new(o, "request_id", text_or_marker(ctx->request_id));
        if (ctx->tenant != NULL)
            json_object_set_new(o, "tenant", text_or_marker(ctx->tenant));
        if (ctx->attempt > 0)
            json_object_set_new(o, "attempt", json_integer(ctx->attempt));
        if (ctx->status != NULL)
            json_object_set_new(o, "status", text_or_marker(ctx->status));
        if (ctx->http_status > 0)
            json_object_set_new(o, "http_status", json_integer(ctx->http_status));
        if (ctx->duration_us > 0)
            json_object_set_new(o, "duration_ms", json_real((double)ctx->duration_us / 1000.0));
        if (ctx->code != NULL)
            json_object_set_new(o, "code", text_or_marker(ctx->code));
    }
    char line[8192];
    size_t n = json_dumpb(o, line, sizeof line - 1, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (n == 0 || n > sizeof line - 1)
        return;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
