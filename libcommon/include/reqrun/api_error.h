/* The API's error codes: HTTP status, OpenAI error type, stable code string, and the
 * {"error":{"message","type","code"}} body. One table, used by every answer. */
#ifndef RR_API_ERROR_H
#define RR_API_ERROR_H

#include <stddef.h>

typedef enum rr_api_code {
    RR_E_INVALID_JSON,
    RR_E_MALFORMED_REQUEST,
    RR_E_MISSING_REQUIRED_FIELD,
    RR_E_INVALID_FIELD,
    RR_E_TOO_MANY_MESSAGES,
    RR_E_INVALID_IDEMPOTENCY_KEY,
    RR_E_IDEMPOTENCY_KEY_MISMATCH,
    RR_E_STREAM_NOT_SUPPORTED,
    RR_E_WEBHOOK_SECRET_NOT_CONFIGURED,
    RR_E_INVALID_WEBHOOK_URL,
    RR_E_MISSING_API_KEY,
    RR_E_INVALID_API_KEY,
    RR_E_SIGNATURE_REQUIRED,
    RR_E_INVALID_SIGNATURE,
    RR_E_STALE_TIMESTAMP,
    RR_E_NONCE_REUSED,
    RR_E_UNKNOWN_TENANT,
    RR_E_NOT_FOUND,
    RR_E_REQUEST_NOT_FOUND,
    RR_E_METHOD_NOT_ALLOWED,
    RR_E_REQUEST_TIMEOUT,
    RR_E_REQUEST_CANCELLED,
    RR_E_BODY_TOO_LARGE,
    RR_E_IDEMPOTENCY_KEY_REUSED,
    RR_E_HEADERS_TOO_LARGE,
    RR_E_TOO_MANY_PENDING_REQUESTS,
    RR_E_INTERNAL,
    RR_E_MAX_ATTEMPTS_EXCEEDED,
    RR_E_MAX_DELIVERIES_EXCEEDED,
    RR_E_UPSTREAM_TIMEOUT,
    RR_E_UPSTREAM_UNREACHABLE,
    RR_E_UPSTREAM_CONNECTION_LOST,
    RR_E_UPSTREAM_RESPONSE_TOO_LARGE,
    RR_E_UPSTREAM_ERROR,
    RR_E_UNAVAILABLE,
    RR_E_DEADLINE_EXCEEDED,
    RR_E__COUNT
} rr_api_code;

typedef struct rr_api_error {
    rr_api_code code;
    char param[64];    /* the offending field, "" when none */
    char message[256];
} rr_api_error;

int rr_api_error_status(rr_api_code code);
const char *rr_api_error_code_str(rr_api_code code);
const char *rr_api_error_type(rr_api_code code);
/* Looks a code string up (for records that store the terminal reason); -1 if unknown. */
int rr_api_error_from_str(const char *code);
/* Fills e; param may be NULL. */
void rr_api_error_set(rr_api_error *e, rr_api_code code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The JSON body of e, malloc'd, *len set. NULL only when out of memory. */
char *rr_api_error_json(const rr_api_error *e, size_t *len);

#endif
