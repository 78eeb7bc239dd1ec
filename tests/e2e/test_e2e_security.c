/* Tenants, keys and abuse resistance (issue 5): API keys -> tenants, cross-tenant
 * isolation, signed requests with every failure code, the per-tenant pending cap, size
 * limits, a full store, slow clients, and the upstream key kept secret everywhere. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SECRET_UPSTREAM_KEY "sk-live-RECOGNISABLE-0123456789abcdef"
#define SIGNING_SECRET "sig_test_secret"

static rt_stack stack;
static char keys_path[320], upstream_key_path[320], files_dir[256];

static void sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char d[32];
    unsigned int len = 32;
    EVP_Digest(s, n, d, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int setup(void **state)
{
    (void)state;
    rt_tmpdir(files_dir, sizeof files_dir, "reqrun-secfiles");
    snprintf(keys_path, sizeof keys_path, "%s/keys", files_dir);
    snprintf(upstream_key_path, sizeof upstream_key_path, "%s/upstream-key", files_dir);
    char acme[65], globex[65], signed_[65], text[512];
    sha256_hex("rk-acme-1", 9, acme);
    sha256_hex("rk-globex-1", 11, globex);
    sha256_hex("rk-signed-1", 11, signed_);
    snprintf(text, sizeof text,
             "# tenant  sha256(key)  [signing secret]\nacme %s\nglobex %s\n\nsigned %s %s\n",
             acme, globex, signed_, SIGNING_SECRET);
    if (!rt_write_file(keys_path, text) ||
        !rt_write_file(upstream_key_path, SECRET_UPSTREAM_KEY "\n"))
        return -1;
    static char keys_env[400], upstream_env[400];
    snprintf(keys_env, sizeof keys_env, "REQRUN_API_KEYS_FILE=%s", keys_path);
    snprintf(upstream_env, sizeof upstream_env, "REQRUN_UPSTREAM_API_KEY_FILE=%s",
             upstream_key_path);
    rt_stack_opts o = {.env = {keys_env, upstream_env,
                               "REQRUN_MOCK_API_KEY=" SECRET_UPSTREAM_KEY,
                               "REQRUN_TENANT_MAX_PENDING=3", "REQRUN_MAX_MESSAGES=4", NULL}};
    return rt_stack_start(&stack, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bool ok = rt_stack_stop(&stack);
    rt_rmdir(files_dir);
    return ok ? 0 : -1;
}

static const char *error_code(const rt_resp *r)
{
    static char buf[64];
    json_t *j = rt_resp_json(r);
    snprintf(buf, sizeof buf, "%s", rt_json_str(json_object_get(j, "error"), "code"));
    json_decref(j);
    return buf;
}

static long call(rt_resp *r, const char *method, const char *path, const char *body,
                 const char *key, const char *const extra[])
{
    char url[400], auth[128];
    snprintf(url, sizeof url, "%s%s", stack.base, path);
    const char *h[8] = {NULL};
    int n = 0;
    if (key != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h[n++] = auth;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
        h[n++] = extra[i];
    assert_true(rt_http(r, method, url, body, h, 30000));
    return r->status;
}

static const char chat_body[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"sec\"}],\"wait\":true}";

static void test_keys_map_to_tenants(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, NULL, NULL), 401);
    assert_string_equal(error_code(&r), "missing_api_key");
    rt_resp_free(&r);
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-nope", NULL), 401);
    assert_string_equal(error_code(&r), "invalid_api_key");
    rt_resp_free(&r);
    const char *basic[] = {"Authorization: Basic cms6eA==", NULL};
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, NULL, basic), 401);
    assert_string_equal(error_code(&r), "invalid_api_key");
    rt_resp_free(&r);
    /* the same request as two tenants: two ids, two calls (the upstream key works) */
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-acme-1", NULL), 200);
    rt_resp_free(&r);
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-globex-1", NULL),
                     200);
    rt_resp_free(&r);
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    return v[n / 2];
}

static void test_other_tenants_ids_are_not_found(void **state)
{
    (void)state;
    rt_resp r;
    const char *key[] = {"Idempotency-Key: acme-private", NULL};
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-acme-1", key), 200);
    char id[64], path[128], cancel_path[160];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    rt_resp_free(&r);
    snprintf(path, sizeof path, "/v1/requests/%s", id);
    snprintf(cancel_path, sizeof cancel_path, "/v1/requests/%s/cancel", id);
    assert_int_equal(call(&r, "GET", path, NULL, "rk-acme-1", NULL), 200);
    rt_resp_free(&r);

    /* globex: exactly the answer of an id that does not exist */
    rt_resp theirs, unknown;
    assert_int_equal(call(&theirs, "GET", path, NULL, "rk-globex-1", NULL), 404);
    char unknown_id[64], unknown_path[128];
    snprintf(unknown_id, sizeof unknown_id, "%s", id);
    unknown_id[5] = unknown_id[5] == 'a' ? 'b' : 'a';
    snprintf(unknown_path, sizeof unknown_path, "/v1/requests/%s", unknown_id);
    assert_int_equal(call(&unknown, "GET", unknown_path, NULL, "rk-globex-1", NULL), 404);
    assert_string_equal(error_code(&theirs), "request_not_found");
    /* same body but for the id it names */
    char *a = strstr(theirs.body, id), *b = strstr(unknown.body, unknown_id);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a - theirs.body, b - unknown.body);
    assert_int_equal(theirs.len, unknown.len);
    rt_resp_free(&theirs);
    rt_resp_free(&unknown);
    assert_int_equal(call(&r, "POST", cancel_path, NULL, "rk-globex-1", NULL), 404);
    rt_resp_free(&r);
    /* a replayed key under another tenant is another request, not a replay */
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-globex-1", key), 200);
    char other[64], replayed[16];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", other, sizeof other));
    assert_string_not_equal(other, id);
    assert_null(rt_resp_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    rt_resp_free(&r);

    /* similar timing: both look one key up */
    enum { N = 25 };
    double t_theirs[N], t_unknown[N];
    for (int i = 0; i < N; i++) {
        call(&r, "GET", path, NULL, "rk-globex-1", NULL);
        t_theirs[i] = r.total_ms;
        rt_resp_free(&r);
        call(&r, "GET", unknown_path, NULL, "rk-globex-1", NULL);
        t_unknown[i] = r.total_ms;
        rt_resp_free(&r);
    }
    double mt = median(t_theirs, N), mu = median(t_unknown, N);
    fprintf(stderr, "404 median: other tenant's id %.3f ms, unknown id %.3f ms\n", mt, mu);
    assert_true(mt < mu * 2 + 1.0 && mu < mt * 2 + 1.0);
}

/* The signature built here independently of libcommon: OpenSSL's HMAC directly. */
static void sign(const char *method, const char *target, const char *ts, const char *nonce,
                 const char *body, char header[128])
{
    char body_hex[65], msg[1024];
    sha256_hex(body != NULL ? body : "", body != NULL ? strlen(body) : 0, body_hex);
    int n = snprintf(msg, sizeof msg, "%s\n%s\n%s\n%s\n%s", method, target, ts, nonce, body_hex);
    unsigned char mac[32];
    unsigned int len = 32;
    HMAC(EVP_sha256(), SIGNING_SECRET, (int)strlen(SIGNING_SECRET), (unsigned char *)msg,
         (size_t)n, mac, &len);
    int off = snprintf(header, 128, "X-ReqRun-Signature: v1=");
    for (int i = 0; i < 32; i++)
        off += snprintf(header + off, (size_t)(128 - off), "%02x", mac[i]);
}

static void iso_now(char out[48], int offset_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec + offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[20];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 48, "%s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

static long signed_call(rt_resp *r, const char *method, const char *target, const char *body,
                        const char *nonce, int ts_offset, bool corrupt)
{
    char ts[48], ts_h[80], nonce_h[96], sig_h[128];
    iso_now(ts, ts_offset);
    sign(method, target, ts, nonce, body, sig_h);
    if (corrupt)
        sig_h[strlen(sig_h) - 1] = sig_h[strlen(sig_h) - 1] == '0' ? '1' : '0';
    snprintf(ts_h, sizeof ts_h, "X-ReqRun-Timestamp: %s", ts);
    snprintf(nonce_h, sizeof nonce_h, "X-ReqRun-Nonce: %s", nonce);
    const char *h[] = {ts_h, nonce_h, sig_h, NULL};
    return call(r, method, target, body, "rk-signed-1", h);
}

static void test_signed_requests(void **state)
{
    (void)state;
    rt_resp r;
    char nonce[64];
    snprintf(nonce, sizeof nonce, "n-%ld-1", (long)time(NULL));
    assert_int_equal(signed_call(&r, "POST", "/v1/chat/completions", chat_body, nonce, 0, false),
                     200);
    char id[64];
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    rt_resp_free(&r);
    /* replaying the very same nonce */
    assert_int_equal(signed_call(&r, "POST", "/v1/chat/completions", chat_body, nonce, 0, false),
                     401);
    assert_string_equal(error_code(&r), "nonce_reused");
    rt_resp_free(&r);
    /* unsigned with a key that has a secret */
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-signed-1", NULL), 401);
    assert_string_equal(error_code(&r), "signature_required");
    rt_resp_free(&r);
    snprintf(nonce, sizeof nonce, "n-%ld-2", (long)time(NULL));
    assert_int_equal(signed_call(&r, "POST", "/v1/chat/completions", chat_body, nonce, 0, true),
                     401);
    assert_string_equal(error_code(&r), "invalid_signature");
    rt_resp_free(&r);
    snprintf(nonce, sizeof nonce, "n-%ld-3", (long)time(NULL));
    assert_int_equal(signed_call(&r, "POST", "/v1/chat/completions", chat_body, nonce, -400, false),
                     401);
    assert_string_equal(error_code(&r), "stale_timestamp");
    rt_resp_free(&r);
    /* a GET with a query string: the target covers it */
    char target[160];
    snprintf(target, sizeof target, "/v1/requests/%s?include=attempts", id);
    snprintf(nonce, sizeof nonce, "n-%ld-4", (long)time(NULL));
    assert_int_equal(signed_call(&r, "GET", target, NULL, nonce, 0, false), 200);
    json_t *j = rt_resp_json(&r);
    assert_string_equal(rt_json_str(j, "status"), "completed");
    assert_non_null(json_object_get(j, "attempt_log"));
    json_decref(j);
    rt_resp_free(&r);
}

static void test_tenant_pending_cap(void **state)
{
    (void)state;
    rt_proc_stop(&stack.executor[0], SIGTERM, 30000);
    const char *async = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"cap\"}]}";
    rt_resp r;
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call(&r, "POST", "/v1/chat/completions", async, "rk-acme-1", NULL), 200);
        rt_resp_header(&r, "X-ReqRun-Request-Id", ids[i], sizeof ids[i]);
        rt_resp_free(&r);
    }
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", async, "rk-acme-1", NULL), 429);
    assert_string_equal(error_code(&r), "too_many_pending_requests");
    char ra[16], sr[16];
    assert_non_null(rt_resp_header(&r, "Retry-After", ra, sizeof ra));
    assert_non_null(rt_resp_header(&r, "x-should-retry", sr, sizeof sr));
    assert_string_equal(sr, "true");
    rt_resp_free(&r);
    /* another tenant is not held back */
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", async, "rk-globex-1", NULL), 200);
    rt_resp_free(&r);
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/requests/%s?wait=10", ids[i]);
        assert_int_equal(call(&r, "GET", path, NULL, "rk-acme-1", NULL), 200);
        json_t *j = rt_resp_json(&r);
        assert_string_equal(rt_json_str(j, "status"), "completed");
        json_decref(j);
        rt_resp_free(&r);
    }
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", async, "rk-acme-1", NULL), 200);
    rt_resp_free(&r);
}

static void test_size_limits(void **state)
{
    (void)state;
    rt_resp r;
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    memcpy(big, "X-Padding: ", 11);
    const char *h[] = {big, NULL};
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-acme-1", h), 431);
    assert_string_equal(error_code(&r), "headers_too_large");
    rt_resp_free(&r);
    free(big);
    const char *five = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},{\"role\":\"user\"},"
                       "{\"role\":\"user\"},{\"role\":\"user\"},{\"role\":\"user\"}]}";
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", five, "rk-acme-1", NULL), 400);
    assert_string_equal(error_code(&r), "too_many_messages");
    rt_resp_free(&r);
}

static void test_full_store_answers_503(void **state)
{
    (void)state;
    rt_proc_stop(&stack.executor[0], SIGTERM, 30000);
    rt_proc_stop(&stack.ingress, SIGTERM, 30000);
    char *small[] = {"REQRUN_STREAM_MAX_BYTES=8192", NULL};
    assert_true(rt_stack_start_ingress(&stack, small));
    char body[2200];
    int n = snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                        "\"content\":\"");
    memset(body + n, 'f', 2000);
    snprintf(body + n + 2000, sizeof body - (size_t)n - 2000, "\"}]}");
    rt_resp r;
    int accepted = 0;
    long status = 0;
    char ids[16][64];
    /* one tenant per submission: the pending cap (3) must not be what stops us */
    const char *keys[] = {"rk-acme-1", "rk-globex-1"};
    for (int i = 0; i < 16; i++) {
        status = call(&r, "POST", "/v1/chat/completions", body, keys[i % 2], NULL);
        if (status == 200)
            rt_resp_header(&r, "X-ReqRun-Request-Id", ids[accepted++], sizeof ids[0]);
        rt_resp_free(&r);
        if (status != 200)
            break;
    }
    assert_int_equal(status, 503);
    assert_true(accepted >= 2);
    call(&r, "POST", "/v1/chat/completions", body, "rk-globex-1", NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(error_code(&r), "unavailable");
    char sr[16];
    assert_non_null(rt_resp_header(&r, "x-should-retry", sr, sizeof sr));
    assert_string_equal(sr, "true");
    rt_resp_free(&r);
    rt_proc_stop(&stack.ingress, SIGTERM, 30000);
    assert_true(rt_stack_start_ingress(&stack, NULL));
    assert_true(rt_stack_start_executor(&stack, 0, NULL));
    /* nothing accepted was lost */
    for (int i = 0; i < accepted; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/requests/%s?wait=10", ids[i]);
        call(&r, "GET", path, NULL, keys[i % 2], NULL);
        json_t *j = rt_resp_json(&r);
        assert_string_equal(rt_json_str(j, "status"), "completed");
        json_decref(j);
        rt_resp_free(&r);
    }
}

typedef struct slow_clients {
    int n;
    int fds[200];
    int64_t until;
    int closed_by_server;
} slow_clients;

static void *trickle(void *arg)
{
    slow_clients *s = arg;
    const char *head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (int i = 0; i < s->n; i++) {
        s->fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)stack.ingress_port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s->fds[i], (struct sockaddr *)&sa, sizeof sa) == 0) {
            ssize_t w = send(s->fds[i], head, strlen(head), MSG_NOSIGNAL);
            (void)w;
        }
    }
    bool *closed = calloc((size_t)s->n, sizeof *closed);
    while (rt_now_ms() < s->until) {
        for (int i = 0; i < s->n; i++) {
            if (closed[i])
                continue;
            if (send(s->fds[i], "a", 1, MSG_NOSIGNAL) != 1) {
                closed[i] = true;
                s->closed_by_server++;
            }
        }
        rt_sleep_ms(1000);
    }
    for (int i = 0; i < s->n; i++)
        close(s->fds[i]);
    free(closed);
    return NULL;
}

static void test_slow_clients_do_not_starve_others(void **state)
{
    (void)state;
    /* 150 slowloris connections (the stack has 256 workers; REQRUN_HTTP_THREADS bounds
     * how many connections can be open at once), each sending a byte a second for 14 s;
     * CivetWeb's request_timeout (10 s) closes them. */
    slow_clients s = {.n = 150, .until = rt_now_ms() + 14000};
    pthread_t t;
    pthread_create(&t, NULL, trickle, &s);
    rt_sleep_ms(1500);
    int ok = 0;
    double worst = 0;
    for (int i = 0; i < 30; i++) {
        rt_resp r;
        if (call(&r, "POST", "/v1/chat/completions", chat_body, "rk-acme-1", NULL) == 200)
            ok++;
        if (r.total_ms > worst)
            worst = r.total_ms;
        rt_resp_free(&r);
    }
    pthread_join(t, NULL);
    fprintf(stderr, "slowloris: %d/30 normal requests ok, worst %.1f ms; %d slow connections "
                    "closed by the server\n",
            ok, worst, s.closed_by_server);
    assert_int_equal(ok, 30);
    assert_true(worst < rt_ms(1000));
    assert_true(s.closed_by_server >= s.n * 9 / 10);
}

/* Every log line, KV value, event and metric: the upstream key is nowhere. */
static bool contains_secret(const void *data, size_t len)
{
    return memmem(data, len, SECRET_UPSTREAM_KEY, strlen(SECRET_UPSTREAM_KEY)) != NULL ||
           memmem(data, len, "RECOGNISABLE", 12) != NULL;
}

static void assert_file_clean(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[65536];
    int lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
        if (contains_secret(line, strlen(line)))
            fail_msg("secret found in %s: %s", path, line);
    }
    fclose(f);
    assert_true(lines > 0);
}

static void test_upstream_key_never_leaks(void **state)
{
    (void)state;
    rt_resp r;
    /* a failure that makes the upstream talk about keys, and a success */
    const char *fault = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"f\"}],"
                        "\"mock\":{\"fault\":\"400\"},\"wait\":true}";
    call(&r, "POST", "/v1/chat/completions", fault, "rk-acme-1", NULL);
    assert_false(contains_secret(r.body, r.len));
    rt_resp_free(&r);
    assert_int_equal(call(&r, "POST", "/v1/chat/completions", chat_body, "rk-acme-1", NULL), 200);
    rt_resp_free(&r);
    /* metrics of both services */
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", stack.base);
    assert_true(rt_http(&r, "GET", url, NULL, NULL, 10000));
    assert_int_equal(r.status, 200);
    assert_false(contains_secret(r.body, r.len));
    rt_resp_free(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", stack.executor_port[0]);
    assert_true(rt_http(&r, "GET", url, NULL, NULL, 10000));
    assert_int_equal(r.status, 200);
    assert_false(contains_secret(r.body, r.len));
    rt_resp_free(&r);
    /* every log line */
    assert_file_clean(stack.ingress.log_path);
    for (int i = 0; i < stack.n_executors; i++)
        assert_file_clean(stack.executor[i].log_path);
    /* every KV value and every stored event */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    const char *streams[] = {"KV_reqrun_records", "REQRUN_EVENTS", "REQRUN_REQUESTS", NULL};
    int values = 0;
    for (int s = 0; streams[s] != NULL; s++) {
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, js, streams[s], NULL, NULL), NATS_OK);
        for (uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq; seq++) {
            natsMsg *m = NULL;
            if (js_GetMsg(&m, js, streams[s], seq, NULL, NULL) != NATS_OK)
                continue; /* deleted (acked work, replaced KV revision) */
            values++;
            if (contains_secret(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m)))
                fail_msg("secret found in %s seq %llu", streams[s], (unsigned long long)seq);
            natsMsg_Destroy(m);
        }
        jsStreamInfo_Destroy(si);
    }
    fprintf(stderr, "secret grep: %d stored values checked\n", values);
    assert_true(values > 10);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void test_dev_mode_refuses_public_listen(void **state)
{
    (void)state;
    char port[64];
    snprintf(port, sizeof port, "REQRUN_LISTEN=0.0.0.0:%d", rt_free_port());
    char nats[300];
    snprintf(nats, sizeof nats, "REQRUN_NATS_URL=%s", stack.nats_url);
    char *env[] = {port, nats, "REQRUN_API_KEYS_FILE=", NULL};
    char *argv[] = {RT_BIN_DIR "/reqrun-ingress", NULL};
    rt_proc p;
    assert_true(rt_proc_start(&p, "ingress-public", argv, env, stack.dir, false));
    assert_int_equal(rt_proc_stop(&p, 0, 10000), 2);
    assert_true(rt_proc_log_count(&p, "refusing to listen") >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_map_to_tenants),
        cmocka_unit_test(test_other_tenants_ids_are_not_found),
        cmocka_unit_test(test_signed_requests),
        cmocka_unit_test(test_tenant_pending_cap),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_full_store_answers_503),
        cmocka_unit_test(test_slow_clients_do_not_starve_others),
        cmocka_unit_test(test_upstream_key_never_leaks),
        cmocka_unit_test(test_dev_mode_refuses_public_listen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
