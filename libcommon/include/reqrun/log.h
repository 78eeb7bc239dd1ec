/* JSON-line logging to stderr: one object a line, with the request's context. */
#ifndef RR_LOG_H
#define RR_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum rr_log_level { RR_LOG_DEBUG, RR_LOG_INFO, RR_LOG_WARN, RR_LOG_ERROR } rr_log_level;

/* Optional context of a line; NULL/0 fields are left out. */
typedef struct rr_log_ctx {
    const char *request_id;
    const char *tenant;
    int attempt;
    const char *status;
    int http_status;
    int64_t duration_us; /* written as duration_ms; 0 leaves it out (set at least 1) */
    const char *code;
} rr_log_ctx;

#define RR_LOG_CTX(...) (&(rr_log_ctx){__VA_ARGS__})

/* Sets the service name written on every line and the minimum level. Call once in main. */
void rr_log_init(const char *service, rr_log_level min_level);
/* Parses "debug", "info", "warn", "error"; returns false on anything else. */
bool rr_log_level_parse(const char *s, rr_log_level *out);
bool rr_log_enabled(rr_log_level level);
/* Writes one line {"ts","level","svc","msg",...ctx} with a single write(2). */
void rr_log(rr_log_level level, const rr_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rr_debug(...) rr_log(RR_LOG_DEBUG, NULL, __VA_ARGS__)
#define rr_info(...) rr_log(RR_LOG_INFO, NULL, __VA_ARGS__)
#define rr_warn(...) rr_log(RR_LOG_WARN, NULL, __VA_ARGS__)
#define rr_error(...) rr_log(RR_LOG_ERROR, NULL, __VA_ARGS__)

#endif
