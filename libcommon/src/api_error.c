/* Error codes of the HTTP API and their OpenAI-style bodies. */
#include "reqrun/api_error.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct code_def {
    int status;
    const char *type;
    const char *code;
} code_def;

static const code_def code_table[RR_E__COUNT] = {
    [RR_E_INVALID_JSON] = {400, "invalid_request_error", "invalid_json"},
    [RR_E_MALFORMED_REQUEST] = {400, "invalid_request_error", "malformed_request"},
    [RR_E_MISSING_REQUIRED_FIELD] = {400, "invalid_request_error", "missing_required_field"},
    [RR_E_INVALID_FIELD] = {400, "invalid_request_error", "invalid_field"},
    [RR_E_TOO_MANY_MESSAGES] = {400, "invalid_request_error", "too_many_messages"},
    [RR_E_INVALID_IDEMPOTENCY_KEY] = {400, "invalid_request_error", "invalid_idempotency_key"},
    [RR_E_IDEMPOTENCY_KEY_MISMATCH] = {400, "invalid_request_error", "idempotency_key_mismatch"},
    [RR_E_STREAM_NOT_SUPPORTED] = {400, "invalid_request_error", "stream_not_supported"},
    [RR_E_WEBHOOK_SECRET_NOT_CONFIGURED] = {400, "invalid_request_error",
                                            "webhook_secret_not_configured"},
    [RR_E_INVALID_WEBHOOK_URL] = {400, "invalid_request_error", "invalid_webhook_url"},
    [RR_E_MISSING_API_KEY] = {401, "authentication_error", "missing_api_key"},
    [RR_E_INVALID_API_KEY] = {401, "authentication_error", "invalid_api_key"},
    [RR_E_SIGNATURE_REQUIRED] = {401, "authentication_error", "signature_required"},
    [RR_E_INVALID_SIGNATURE] = {401, "authentication_error", "invalid_signature"},
    [RR_E_STALE_TIMESTAMP] = {401, "authentication_error", "stale_timestamp"},
    [RR_E_NONCE_REUSED] = {401, "authentication_error", "nonce_reused"},
    [RR_E_UNKNOWN_TENANT] = {403, "permission_error", "unknown_tenant"},
    [RR_E_NOT_FOUND] = {404, "invalid_request_error", "not_found"},
    [RR_E_REQUEST_NOT_FOUND] = {404, "invalid_request_error", "request_not_found"},
    [RR_E_METHOD_NOT_ALLOWED] = {405, "invalid_request_error", "method_not_allowed"},
    [RR_E_REQUEST_TIMEOUT] = {408, "invalid_request_error", "request_timeout"},
    [RR_E_REQUEST_CANCELLED] = {409, "invalid_request_error", "request_cancelled"},
    [RR_E_BODY_TOO_LARGE] = {413, "invalid_request_error", "body_too_large"},
    [RR_E_IDEMPOTENCY_KEY_REUSED] = {422, "invalid_request_error", "idempotency_key_reused"},
    [RR_E_HEADERS_TOO_LARGE] = {431, "invalid_request_error", "headers_too_large"},
    [RR_E_TOO_MANY_PENDING_REQUESTS] = {429, "rate_limit_error", "too_many_pending_requests"},
    [RR_E_INTERNAL] = {500, "server_error", "internal_error"},
    [RR_E_MAX_ATTEMPTS_EXCEEDED] = {502, "server_error", "max_attempts_exceeded"},
    [RR_E_MAX_DELIVERIES_EXCEEDED] = {502, "server_error", "max_deliveries_exceeded"},
    [RR_E_UPSTREAM_TIMEOUT] = {502, "server_error", "upstream_timeout"},
    [RR_E_UPSTREAM_UNREACHABLE] = {502, "server_error", "upstream_unreachable"},
    [RR_E_UPSTREAM_CONNECTION_LOST] = {502, "server_error", "upstream_connection_lost"},
    [RR_E_UPSTREAM_RESPONSE_TOO_LARGE] = {502, "server_error", "upstream_response_too_large"},
    [RR_E_UPSTREAM_ERROR] = {502, "server_error", "upstream_error"},
    [RR_E_UNAVAILABLE] = {503, "server_error", "unavailable"},
    [RR_E_DEADLINE_EXCEEDED] = {504, "server_error", "deadline_exceeded"},
};

int rr_api_error_status(rr_api_code code)
{
    return code_table[code].status;
}

const char *rr_api_error_code_str(rr_api_code code)
{
    return code_table[code].code;
}

const char *rr_api_error_type(rr_api_code code)
{
    return code_table[code].type;
}

int rr_api_error_from_str(const char *code)
{
    for (int i = 0; i < RR_E__COUNT; i++) {
        if (strcmp(code_table[i].code, code) == 0)
            return i;
    }
    return -1;
}

void rr_api_error_set(rr_api_error *e, rr_api_code code, const char *param, const char *fmt, ...)
{
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param != NULL ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *rr_api_error_json(const rr_api_error *e, size_t *len)
{
    json_t *msg = json_string(e->message);
    if (msg == NULL) /* a message quoting invalid UTF-8 from a client */
        msg = json_string("invalid request");
    json_t *err = json_pack("{s:o, s:s, s:s}", "message", msg, "type",
                            rr_api_error_type(e->code), "code", rr_api_error_code_str(e->code));
    if (err != NULL && e->param[0] != '\0')
        json_object_set_new(err, "param", json_string(e->param));
    json_t *body = json_pack("{s:o}", "error", err);
    if (body == NULL)
        return NULL;
    char *out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (out != NULL)
        *len = strlen(out);
    return out;
}
