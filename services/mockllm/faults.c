/* Fault selection and answer bodies of reqrun-mockllm. */
#include "faults.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

bool mock_fault_parse(const char *spec, mock_fault *out)
{
    memset(out, 0, sizeof *out);
    if (spec == NULL || spec[0] == '\0')
        return true;
    if (strcmp(spec, "hang") == 0)
        out->kind = F_HANG;
    else if (strcmp(spec, "reset") == 0)
        out->kind = F_RESET;
    else if (strcmp(spec, "quota") == 0)
        out->kind = F_QUOTA;
    else if (strcmp(spec, "400") == 0)
        out->kind = F_400;
    else if (strncmp(spec, "flaky:", 6) == 0) {
        char *end = NULL;
        long pct = strtol(spec + 6, &end, 10);
        if (end == spec + 6 || *end != '\0' || pct < 0 || pct > 100)
            return false;
        out->kind = F_FLAKY;
        out->n = pct;
    } else {
        int status = 0;
        long n = 0;
        char tail;
        if (sscanf(spec, "%d:%ld%c", &status, &n, &tail) != 2 || n < 0 ||
            (status != 429 && status != 500 && status != 503))
            return false;
        out->kind = F_STATUS_N;
        out->status = status;
        out->n = n;
    }
    return true;
}

static char *dump(json_t *v, size_t *len)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

static char *error_body(const char *message, const char *type, const char *code, size_t *len)
{
    return dump(json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type", type,
                          "param", "code", code),
                len);
}

/* A chat.completion echoing the last message, so tests can tell answers apart. */
static char *completion_body(json_t *req, uint64_t seq, size_t *len)
{
    const char *model = json_string_value(json_object_get(req, "model"));
    json_t *messages = json_object_get(req, "messages");
    size_t n = json_array_size(messages);
    const char *last = n > 0 ? json_string_value(json_object_get(json_array_get(messages, n - 1),
                                                                  "content"))
                             : NULL;
    char content[320];
    snprintf(content, sizeof content, "mock reply to: %.256s", last != NULL ? last : "");
    char id[48];
    snprintf(id, sizeof id, "chatcmpl-mock-%llu", (unsigned long long)seq);
    int prompt_tokens = (int)(n * 8), completion_tokens = 12;
    return dump(json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s, s:n}, s:n, s:s}], "
                          "s:{s:i, s:i, s:i}, s:s}",
                          "id", id, "object", "chat.completion", "created",
                          (json_int_t)time(NULL), "model", model != NULL ? model : "mock",
                          "choices", "index", 0, "message", "role", "assistant", "content",
                          content, "refusal", "logprobs", "finish_reason", "stop", "usage",
                          "prompt_tokens", prompt_tokens, "completion_tokens",
                          completion_tokens, "total_tokens", prompt_tokens + completion_tokens,
                          "system_fingerprint", "reqrun-mock"),
                len);
}

void mock_plan_for(const char *body, size_t len, long call_number, const mock_defaults *def,
                   uint64_t completion_seq, mock_plan *out)
{
    memset(out, 0, sizeof *out);
    json_t *req = json_loadb(body, len, 0, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        out->action = MOCK_ERROR;
        out->status = 400;
        out->body = error_body("the body is not a JSON object (mock)", "invalid_request_error",
                               "invalid_json", &out->body_len);
        return;
    }
    mock_fault fault = def->fault;
    out->latency_ms = def->latency_ms;
    json_t *mock = json_object_get(req, "mock");
    if (json_is_object(mock)) {
        json_t *spec = json_object_get(mock, "fault");
        if (json_is_string(spec) && !mock_fault_parse(json_string_value(spec), &fault)) {
            out->action = MOCK_ERROR;
            out->status = 400;
            out->body = error_body("unknown mock.fault spec", "invalid_request_error",
                                   "invalid_mock_fault", &out->body_len);
            json_decref(req);
            return;
        }
        json_t *lat = json_object_get(mock, "latency_ms");
        if (json_is_integer(lat) && json_integer_value(lat) >= 0)
            out->latency_ms = json_integer_value(lat);
    }
    switch (fault.kind) {
    case F_HANG:
        out->action = MOCK_HANG;
        break;
    case F_RESET:
        out->action = MOCK_RESET;
        break;
    case F_QUOTA:
        out->action = MOCK_ERROR;
        out->status = 429;
        out->body = error_body("You exceeded your current quota, please check your plan and "
                               "billing details. (mock)",
                               "insufficient_quota", "insufficient_quota", &out->body_len);
        break;
    case F_400:
        out->action = MOCK_ERROR;
        out->status = 400;
        out->body = error_body("Invalid value for 'messages' (mock)", "invalid_request_error",
                               "invalid_value", &out->body_len);
        break;
    case F_FLAKY: {
        static _Thread_local unsigned seed;
        if (seed == 0)
            seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
        int roll = rand_r(&seed) % 100;
        if (roll < fault.n) {
            out->action = MOCK_ERROR;
            out->status = roll % 2 == 0 ? 429 : 500;
            out->body = out->status == 429
                            ? error_body("Rate limit reached (mock storm)", "requests",
                                         "rate_limit_exceeded", &out->body_len)
                            : error_body("The server had an error (mock storm)", "server_error",
                                         "server_error", &out->body_len);
            break;
        }
        out->action = MOCK_COMPLETE;
        out->status = 200;
        out->body = completion_body(req, completion_seq, &out->body_len);
        break;
    }
    case F_STATUS_N:
        if (call_number <= fault.n) {
            out->action = MOCK_ERROR;
            out->status = fault.status;
            out->retry_after = fault.status == 429;
            out->body = fault.status == 429
                            ? error_body("Rate limit reached (mock)", "requests",
                                         "rate_limit_exceeded", &out->body_len)
                            : error_body("The server had an error (mock)", "server_error",
                                         "server_error", &out->body_len);
            break;
        }
        __attribute__((fallthrough)); /* the first N calls are spent: succeed */
    case F_NONE:
        out->action = MOCK_COMPLETE;
        out->status = 200;
        out->body = completion_body(req, completion_seq, &out->body_len);
        break;
    }
    json_decref(req);
}

void mock_plan_unauthorized(const char *presented, mock_plan *out)
{
    memset(out, 0, sizeof *out);
    char msg[160];
    size_t n = presented != NULL ? strlen(presented) : 0;
    if (n >= 8)
        snprintf(msg, sizeof msg, "Incorrect API key provided: %.3s****%s (mock)", presented,
                 presented + n - 4);
    else
        snprintf(msg, sizeof msg, "You didn't provide an API key (mock)");
    out->action = MOCK_ERROR;
    out->status = 401;
    out->body = error_body(msg, "invalid_request_error", "invalid_api_key", &out->body_len);
}

void mock_plan_free(mock_plan *p)
{
    free(p->body);
    p->body = NULL;
}
