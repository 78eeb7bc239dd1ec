/* Chat-request validation and canonicalisation over jansson. */
#include "reqrun/chatreq.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool rr_json_depth_ok(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

static rr_status invalid(rr_api_error *err, rr_api_code code, const char *param, const char *msg)
{
    rr_api_error_set(err, code, param, "%s", msg);
    return RR_INVALID;
}

static rr_status parse_wait(json_t *v, const rr_chatreq_limits *lim, int64_t *wait_ms,
                            rr_api_error *err)
{
    *wait_ms = 0;
    if (v == NULL || json_is_null(v) || json_is_false(v))
        return RR_OK;
    if (json_is_true(v)) {
        *wait_ms = lim->wait_default_s * 1000;
        return RR_OK;
    }
    if (json_is_number(v)) {
        double secs = json_number_value(v);
        if (!(secs >= 0) || isinf(secs))
            return invalid(err, RR_E_INVALID_FIELD, "wait",
                           "wait must be true, false or a number of seconds >= 0");
        if (secs > (double)lim->wait_max_s)
            secs = (double)lim->wait_max_s;
        *wait_ms = (int64_t)(secs * 1000.0);
        return RR_OK;
    }
    return invalid(err, RR_E_INVALID_FIELD, "wait",
                   "wait must be true, false or a number of seconds >= 0");
}

static rr_status parse_metadata(json_t *v, rr_chatreq *out, rr_api_error *err)
{
    if (!json_is_object(v))
        return invalid(err, RR_E_INVALID_FIELD, "reqrun.metadata",
                       "reqrun.metadata must be an object of strings");
    size_t n = json_object_size(v);
    if (n > RR_METADATA_MAX_PAIRS)
        return invalid(err, RR_E_INVALID_FIELD, "reqrun.metadata",
                       "reqrun.metadata has more than 16 pairs");
    if (n == 0)
        return RR_OK;
    out->metadata = calloc(n, sizeof *out->metadata);
    if (out->metadata == NULL)
        return RR_NOMEM;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (!json_is_string(val) || strlen(key) > RR_METADATA_KEY_MAX ||
            json_string_length(val) > RR_METADATA_VALUE_MAX ||
            strlen(json_string_value(val)) != json_string_length(val))
            return invalid(err, RR_E_INVALID_FIELD, "reqrun.metadata",
                           "reqrun.metadata values must be strings (keys <= 64, values "
                           "<= 512 bytes)");
        rr_kv_pair *p = &out->metadata[out->n_metadata++];
        p->key = strdup(key);
        p->value = strdup(json_string_value(val));
        if (p->key == NULL || p->value == NULL)
            return RR_NOMEM;
    }
    return RR_OK;
}

static bool webhook_url_shape_ok(const char *url)
{
    size_t n = strlen(url);
    if (n > RR_WEBHOOK_URL_MAX)
        return false;
    const char *rest = NULL;
    if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/')
        return false;
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    }
    return true;
}

static rr_status parse_reqrun(json_t *v, const rr_chatreq_limits *lim, rr_chatreq *out,
                              rr_api_error *err)
{
    out->max_attempts = lim->max_attempts;
    out->timeout_s = lim->deadline_s;
    if (v == NULL)
        return RR_OK;
    if (!json_is_object(v))
        return invalid(err, RR_E_INVALID_FIELD, "reqrun", "reqrun must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "max_attempts") == 0) {
            if (!json_is_integer(val) || json_integer_value(val) < 1)
                return invalid(err, RR_E_INVALID_FIELD, "reqrun.max_attempts",
                               "reqrun.max_attempts must be an integer >= 1");
            json_int_t n = json_integer_value(val);
            out->max_attempts = n > (json_int_t)lim->max_attempts ? lim->max_attempts
                                                                  : (uint32_t)n;
        } else if (strcmp(key, "timeout_s") == 0) {
            double secs = json_is_number(val) ? json_number_value(val) : -1;
            if (!(secs > 0) || isinf(secs))
                return invalid(err, RR_E_INVALID_FIELD, "reqrun.timeout_s",
                               "reqrun.timeout_s must be a number of seconds > 0");
            out->timeout_s = secs > (double)lim->deadline_s ? lim->deadline_s
                                                            : (int64_t)ceil(secs);
        } else if (strcmp(key, "metadata") == 0) {
            rr_status s = parse_metadata(val, out, err);
            if (s != RR_OK)
                return s;
        } else if (strcmp(key, "webhook_url") == 0) {
            if (!json_is_string(val) || !webhook_url_shape_ok(json_string_value(val)))
                return invalid(err, RR_E_INVALID_WEBHOOK_URL, "reqrun.webhook_url",
                               "reqrun.webhook_url must be an http(s) URL of at most "
                               "2048 printable ASCII characters");
            out->webhook_url = strdup(json_string_value(val));
            if (out->webhook_url == NULL)
                return RR_NOMEM;
        } else {
            rr_api_error_set(err, RR_E_INVALID_FIELD, "reqrun",
                             "unknown field reqrun.%.64s (known: max_attempts, timeout_s, "
                             "metadata, webhook_url)",
                             key);
            return RR_INVALID;
        }
    }
    return RR_OK;
}

static rr_status validate_chat(json_t *root, const rr_chatreq_limits *lim, rr_api_error *err)
{
    json_t *model = json_object_get(root, "model");
    if (model == NULL)
        return invalid(err, RR_E_MISSING_REQUIRED_FIELD, "model", "model is required");
    if (!json_is_string(model) || json_string_length(model) == 0)
        return invalid(err, RR_E_INVALID_FIELD, "model", "model must be a non-empty string");
    json_t *messages = json_object_get(root, "messages");
    if (messages == NULL)
        return invalid(err, RR_E_MISSING_REQUIRED_FIELD, "messages", "messages is required");
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return invalid(err, RR_E_INVALID_FIELD, "messages",
                       "messages must be a non-empty array");
    if (json_array_size(messages) > lim->max_messages) {
        rr_api_error_set(err, RR_E_TOO_MANY_MESSAGES, "messages",
                         "messages has %zu entries; the limit is %zu",
                         json_array_size(messages), lim->max_messages);
        return RR_INVALID;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return invalid(err, RR_E_INVALID_FIELD, "messages",
                           "each message must be an object with a string role");
    }
    json_t *stream = json_object_get(root, "stream");
    if (json_is_true(stream))
        return invalid(err, RR_E_STREAM_NOT_SUPPORTED, "stream",
                       "stream: true is not supported yet; send stream: false or omit it");
    return RR_OK;
}

static rr_status parse_key(json_t *v, rr_chatreq *out, rr_api_error *err)
{
    if (v == NULL || json_is_null(v))
        return RR_OK;
    if (!json_is_string(v) ||
        !rr_idem_key_valid(json_string_value(v), json_string_length(v)))
        return invalid(err, RR_E_INVALID_IDEMPOTENCY_KEY, "idempotency_key",
                       "idempotency_key must be 1 to 255 printable ASCII characters");
    out->idempotency_key = strdup(json_string_value(v));
    return out->idempotency_key != NULL ? RR_OK : RR_NOMEM;
}

#define DUMP_FLAGS (JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17))

rr_status rr_chatreq_parse(rr_chatreq *out, const char *body, size_t len,
                           const rr_chatreq_limits *lim, rr_api_error *err)
{
    memset(out, 0, sizeof *out);
    if (!rr_json_depth_ok(body, len, RR_JSON_MAX_DEPTH))
        return invalid(err, RR_E_INVALID_JSON, NULL, "JSON nesting is deeper than 64 levels");
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rr_api_error_set(err, RR_E_INVALID_JSON, NULL, "invalid JSON: %s (position %d)",
                         jerr.text, jerr.position);
        return RR_INVALID;
    }
    rr_status s = RR_INVALID;
    if (!json_is_object(root)) {
        invalid(err, RR_E_INVALID_JSON, NULL, "the body must be a JSON object");
        goto out;
    }
    if ((s = validate_chat(root, lim, err)) != RR_OK ||
        (s = parse_wait(json_object_get(root, "wait"), lim, &out->wait_ms, err)) != RR_OK ||
        (s = parse_key(json_object_get(root, "idempotency_key"), out, err)) != RR_OK ||
        (s = parse_reqrun(json_object_get(root, "reqrun"), lim, out, err)) != RR_OK)
        goto out;

    json_object_del(root, "wait");
    json_object_del(root, "idempotency_key");
    s = RR_NOMEM;
    out->canonical = json_dumps(root, DUMP_FLAGS);
    if (out->canonical == NULL)
        goto out;
    out->canonical_len = strlen(out->canonical);
    rr_sha256(out->canonical, out->canonical_len, out->body_hash);
    if (json_object_del(root, "reqrun") == 0) {
        out->upstream_body = json_dumps(root, DUMP_FLAGS);
        if (out->upstream_body == NULL)
            goto out;
        out->upstream_len = strlen(out->upstream_body);
    } else {
        out->upstream_body = out->canonical;
        out->upstream_len = out->canonical_len;
    }
    s = RR_OK;
out:
    json_decref(root);
    if (s != RR_OK)
        rr_chatreq_free(out);
    return s;
}

void rr_chatreq_free(rr_chatreq *r)
{
    if (r == NULL)
        return;
    if (r->upstream_body != r->canonical)
        free(r->upstream_body);
    free(r->canonical);
    free(r->idempotency_key);
    for (size_t i = 0; i < r->n_metadata; i++) {
        free(r->metadata[i].key);
        free(r->metadata[i].value);
    }
    free(r->metadata);
    free(r->webhook_url);
    memset(r, 0, sizeof *r);
}

rr_status rr_chatreq_to_request(rr_chatreq *r, rr_request *out, const char *id,
                                const char *tenant, bool has_key, int64_t now_ms)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
    memcpy(out->body_hash, r->body_hash, RR_SHA256_LEN);
    if (r->upstream_body == r->canonical) {
        out->body = malloc(r->upstream_len);
        if (out->body == NULL)
            return RR_NOMEM;
        memcpy(out->body, r->upstream_body, r->upstream_len);
    } else {
        out->body = (uint8_t *)r->upstream_body;
        r->upstream_body = NULL;
    }
    out->body_len = r->upstream_len;
    r->upstream_len = 0;
    out->max_attempts = r->max_attempts;
    out->created_ms = now_ms;
    out->deadline_ms = now_ms + r->timeout_s * 1000;
    out->metadata = r->metadata;
    out->n_metadata = r->n_metadata;
    r->metadata = NULL;
    r->n_metadata = 0;
    out->webhook_url = r->webhook_url;
    r->webhook_url = NULL;
    out->has_idempotency_key = has_key;
    return RR_OK;
}
