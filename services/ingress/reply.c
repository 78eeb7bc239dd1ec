/* Rendering of the ingress's answers: async objects, record views, terminal outcomes. */
#include "reply.h"

#include "reqrun/chatreq.h"
#include "reqrun/clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rr_reply_init(rr_reply *r)
{
    memset(r, 0, sizeof *r);
    r->should_retry = -1;
}

void rr_reply_free(rr_reply *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static void set_json(rr_reply *r, int status, json_t *body)
{
    free(r->body);
    r->status = status;
    r->body = json_dumps(body, JSON_COMPACT);
    r->body_len = r->body != NULL ? strlen(r->body) : 0;
    json_decref(body);
}

void rr_reply_api_error(rr_reply *r, const rr_api_error *e)
{
    free(r->body);
    r->status = rr_api_error_status(e->code);
    r->body = rr_api_error_json(e, &r->body_len);
    /* 4xx are final for the client, except a timeout or the pending cap */
    if (r->status >= 400 && r->status < 500 && r->status != 408 && r->status != 429)
        r->should_retry = 0;
}

void rr_reply_error(rr_reply *r, rr_api_code code, const char *fmt, ...)
{
    rr_api_error e;
    e.code = code;
    e.param[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    rr_reply_api_error(r, &e);
}

void rr_reply_async(rr_reply *r, const char *id, rr_state state, int64_t created_ms)
{
    snprintf(r->request_id, sizeof r->request_id, "%s", id);
    r->location = true;
    set_json(r, 200,
             json_pack("{s:s, s:s, s:s, s:I}", "id", id, "object", "chat.completion.async",
                       "status", rr_state_str(state), "created",
                       (json_int_t)(created_ms / 1000)));
}

static void copy_body(rr_reply *r, int status, const uint8_t *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->body = malloc(len + 1);
    r->body_len = r->body != NULL ? len : 0;
    if (r->body != NULL) {
        if (len > 0)
            memcpy(r->body, body, len);
        r->body[len] = '\0';
    }
}

/* The last upstream status seen in the attempt log, for failure messages. */
static uint32_t last_upstream_status(const rr_record *rec)
{
    for (size_t i = rec->n_attempt_log; i > 0; i--) {
        if (rec->attempt_log[i - 1].upstream_status != 0)
            return rec->attempt_log[i - 1].upstream_status;
    }
    return 0;
}

static void failure_reply(rr_reply *r, const rr_record *rec)
{
    int known = rr_api_error_from_str(rec->last_error.code);
    rr_api_code code = known >= 0 && rr_api_error_status((rr_api_code)known) >= 500
                           ? (rr_api_code)known
                           : RR_E_UPSTREAM_ERROR;
    uint32_t last = last_upstream_status(rec);
    const rr_attempt *a = rec->n_attempt_log > 0 ? &rec->attempt_log[rec->n_attempt_log - 1]
                                                  : NULL;
    char last_desc[96];
    if (last != 0)
        snprintf(last_desc, sizeof last_desc, "last upstream status %u", last);
    else if (a != NULL && a->error_code[0] != '\0')
        snprintf(last_desc, sizeof last_desc, "last attempt: %s", a->error_code);
    else
        snprintf(last_desc, sizeof last_desc, "no upstream answer");
    rr_reply_error(r, code, "request %s failed after %u attempt(s) (%s): %s", rec->id,
                   rec->attempts, last_desc, rec->last_error.code);
}

void rr_reply_from_record(rr_reply *r, const rr_record *rec)
{
    snprintf(r->request_id, sizeof r->request_id, "%s", rec->id);
    r->attempts = (int)rec->attempts;
    switch (rec->state) {
    case RR_STATE_COMPLETED:
        copy_body(r, rec->result_status != 0 ? (int)rec->result_status : 200, rec->result,
                  rec->result_len);
        return;
    case RR_STATE_FAILED:
        if (rec->result_status != 0) /* the upstream's own final answer */
            copy_body(r, (int)rec->result_status, rec->result, rec->result_len);
        else
            failure_reply(r, rec);
        r->should_retry = 0;
        return;
    case RR_STATE_EXPIRED:
        rr_reply_error(r, RR_E_DEADLINE_EXCEEDED,
                       "request %s passed its deadline after %u attempt(s)", rec->id,
                       rec->attempts);
        r->should_retry = 0;
        return;
    case RR_STATE_CANCELLED:
        rr_reply_error(r, RR_E_REQUEST_CANCELLED, "request %s was cancelled", rec->id);
        r->should_retry = 0;
        return;
    default:
        r->attempts = 0;
        rr_reply_async(r, rec->id, rec->state, rec->created_ms);
        return;
    }
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[RR_RFC3339_BUF];
    rr_rfc3339(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *result_json(const rr_record *rec)
{
    if (rec->state != RR_STATE_COMPLETED || rec->result_len == 0)
        return json_null();
    const char *text = (const char *)rec->result;
    json_t *v = NULL;
    if (rr_json_depth_ok(text, rec->result_len, RR_JSON_MAX_DEPTH))
        v = json_loadb(text, rec->result_len, 0, NULL);
    if (v == NULL) /* not JSON: show it as a string rather than hide it */
        v = json_stringn(text, rec->result_len);
    return v != NULL ? v : json_null();
}

void rr_reply_record_view(rr_reply *r, const rr_record *rec, bool with_attempts)
{
    snprintf(r->request_id, sizeof r->request_id, "%s", rec->id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rec->id));
    json_object_set_new(o, "status", json_string(rr_state_str(rec->state)));
    json_object_set_new(o, "attempts", json_integer(rec->attempts));
    json_object_set_new(o, "created_at", time_or_null(rec->created_ms));
    json_object_set_new(o, "updated_at", time_or_null(rec->updated_ms));
    json_object_set_new(o, "last_error_code", str_or_null(rec->last_error.code));
    json_object_set_new(o, "result", result_json(rec));
    if (with_attempts) {
        json_t *log = json_array();
        for (size_t i = 0; i < rec->n_attempt_log; i++) {
            const rr_attempt *a = &rec->attempt_log[i];
            json_array_append_new(
                log, json_pack("{s:i, s:o, s:o, s:o, s:o, s:s, s:o}", "number", (int)a->number,
                               "started_at", time_or_null(a->started_ms), "finished_at",
                               time_or_null(a->finished_ms), "upstream_status",
                               a->upstream_status ? json_integer(a->upstream_status)
                                                  : json_null(),
                               "error_code", str_or_null(a->error_code), "outcome",
                               rr_outcome_str(a->outcome), "executor",
                               str_or_null(a->executor)));
        }
        json_object_set_new(o, "attempt_log", log);
        json_t *hooks = json_array();
        for (size_t i = 0; i < rec->n_webhook_log; i++) {
            const rr_webhook_delivery *d = &rec->webhook_log[i];
            json_array_append_new(
                hooks, json_pack("{s:i, s:o, s:o, s:o, s:b}", "number", (int)d->number, "at",
                                 time_or_null(d->at_ms), "http_status",
                                 d->http_status ? json_integer(d->http_status) : json_null(),
                                 "error_code", str_or_null(d->error_code), "delivered",
                                 d->delivered));
        }
        json_object_set_new(o, "webhook_deliveries", hooks);
        if (rec->last_error.code[0] != '\0') {
            json_t *msg = rec->last_error.message != NULL
                              ? json_string(rec->last_error.message)
                              : NULL;
            json_object_set_new(
                o, "last_error",
                json_pack("{s:s, s:o, s:o, s:b}", "code", rec->last_error.code, "message",
                          msg != NULL ? msg : json_string(""), "upstream_status",
                          rec->last_error.upstream_status
                              ? json_integer(rec->last_error.upstream_status)
                              : json_null(),
                          "retryable", rec->last_error.retryable));
        } else {
            json_object_set_new(o, "last_error", json_null());
        }
    }
    set_json(r, 200, o);
}
