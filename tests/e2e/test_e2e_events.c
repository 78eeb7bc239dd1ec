/* Event-driven integration (issue 6): lifecycle events on REQRUN_EVENTS seen by a C
 * client for one tenant, NATS-native submit, signed webhooks (verified independently,
 * delivered once after the receiver comes back, refused for private addresses), and
 * long-poll. */
#include "harness.h"

#include "reqrun/ids.h"
#include "reqrun/record.h"

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
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* 32 bytes, base64 */
#define WHSEC_B64 "c2VjcmV0LWZvci1yZXFydW4td2ViaG9vay10ZXN0cyE="
static rt_stack stack;
static natsConnection *nc;

/* ---- a webhook receiver ---- */

#define MAX_HOOKS 64

typedef struct hook {
    char id[128];
    char timestamp[32];
    char signature[128];
    char body[4096];
} hook;

static struct receiver {
    int port;
    int listen_fd;
    pthread_t thread;
    pthread_mutex_t mu;
    hook hooks[MAX_HOOKS];
    int n;
    atomic_bool running;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void header_value(const char *head, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; (p = strcasestr(p, name)) != NULL; p += nl) {
        if ((p == head || p[-1] == '\n') && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)l, v);
            return;
        }
    }
}

static void *receiver_main(void *arg)
{
    (void)arg;
    while (atomic_load(&rx.running)) {
        int fd = accept(rx.listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        char buf[8192];
        size_t len = 0;
        ssize_t r;
        char *end = NULL;
        while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)r;
            buf[len] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
                char cl[16];
                header_value(buf, "Content-Length", cl, sizeof cl);
                if (len >= (size_t)(end + 4 - buf) + (size_t)atol(cl))
                    break;
            }
        }
        if (end != NULL) {
            pthread_mutex_lock(&rx.mu);
            if (rx.n < MAX_HOOKS) {
                hook *h = &rx.hooks[rx.n++];
                header_value(buf, "webhook-id", h->id, sizeof h->id);
                header_value(buf, "webhook-timestamp", h->timestamp, sizeof h->timestamp);
                header_value(buf, "webhook-signature", h->signature, sizeof h->signature);
                snprintf(h->body, sizeof h->body, "%s", end + 4);
            }
            pthread_mutex_unlock(&rx.mu);
            const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            ssize_t w = write(fd, ok, strlen(ok));
            (void)w;
        }
        close(fd);
    }
    return NULL;
}

static void receiver_up(void)
{
    rx.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(rx.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rx.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rx.listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(rx.listen_fd, 64), 0);
    atomic_store(&rx.running, true);
    pthread_create(&rx.thread, NULL, receiver_main, NULL);
}

static void receiver_down(void)
{
    atomic_store(&rx.running, false);
    shutdown(rx.listen_fd, SHUT_RDWR);
    close(rx.listen_fd);
    pthread_join(rx.thread, NULL);
}

static int hooks_for(const char *id, hook *out)
{
    int n = 0;
    pthread_mutex_lock(&rx.mu);
    for (int i = 0; i < rx.n; i++) {
        if (strstr(rx.hooks[i].body, id) != NULL) {
            if (out != NULL && n == 0)
                *out = rx.hooks[i];
            n++;
        }
    }
    pthread_mutex_unlock(&rx.mu);
    return n;
}

/* Standard Webhooks, checked with OpenSSL directly (not with libcommon). */
static bool signature_valid(const hook *h)
{
    unsigned char secret[64];
    int slen = EVP_DecodeBlock(secret, (const unsigned char *)WHSEC_B64, (int)strlen(WHSEC_B64));
    slen -= 1; /* one '=' of padding */
    char msg[8192];
    int n = snprintf(msg, sizeof msg, "%s.%s.%s", h->id, h->timestamp, h->body);
    unsigned char mac[32];
    unsigned int mlen = 32;
    HMAC(EVP_sha256(), secret, slen, (unsigned char *)msg, (size_t)n, mac, &mlen);
    char b64[64], want[80];
    EVP_EncodeBlock((unsigned char *)b64, mac, 32);
    snprintf(want, sizeof want, "v1,%s", b64);
    return strcmp(want, h->signature) == 0;
}

static int setup(void **state)
{
    (void)state;
    rx.port = rt_free_port();
    receiver_up();
    rt_stack_opts o = {.env = {"REQRUN_WEBHOOK_SECRET=whsec_" WHSEC_B64,
                               "REQRUN_WEBHOOK_ALLOW=127.0.0.1", "REQRUN_RETRY_BASE_MS=100",
                               NULL}};
    if (!rt_stack_start(&stack, &o))
        return -1;
    return natsConnection_ConnectTo(&nc, stack.nats_url) == NATS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    natsConnection_Destroy(nc);
    receiver_down();
    return rt_stack_stop(&stack) ? 0 : -1;
}

static void test_events_show_each_transition_in_order(void **state)
{
    (void)state;
    char id[RR_ID_BUF];
    rr_id_derive(id, "default", "events-429", strlen("events-429"));
    /* a consumer of one tenant's events; it picks statuses itself (single filter on 2.9) */
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.DeliverPolicy = js_DeliverNew;
    assert_int_equal(js_SubscribeSync(&sub, js, "reqrun.events.default.>", NULL, &so, NULL),
                     NATS_OK);
    rt_resp r;
    const char *h[] = {"Idempotency-Key: events-429", NULL};
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"e\"}],\"mock\":{\"fault\":\"429:1\"},\"wait\":30}",
                             h));
    assert_int_equal(r.status, 200);
    rt_resp_free(&r);
    const char *want[] = {"processing", "retrying", "processing", "completed"};
    int seen = 0;
    uint64_t last_rev = 0;
    int64_t until = rt_now_ms() + rt_ms(10000);
    while (seen < 4 && rt_now_ms() < until) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 500) != NATS_OK)
            continue;
        const char *subj = natsMsg_GetSubject(m);
        char prefix[96];
        snprintf(prefix, sizeof prefix, "reqrun.events.default.%s.", id);
        if (strncmp(subj, prefix, strlen(prefix)) == 0) {
            assert_string_equal(subj + strlen(prefix), want[seen]);
            /* the payload is a protobuf Event: its revision grows */
            rr_event ev;
            assert_int_equal(rr_event_decode(&ev, natsMsg_GetData(m),
                                             (size_t)natsMsg_GetDataLength(m)),
                             RR_OK);
            assert_string_equal(ev.id, id);
            assert_string_equal(rr_state_str(ev.state), want[seen]);
            assert_true(ev.revision > last_rev);
            last_rev = ev.revision;
            assert_int_equal(ev.attempt, seen < 2 ? 1 : 2);
            seen++;
        }
        natsMsg_Destroy(m);
    }
    assert_int_equal(seen, 4);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
}

static natsMsg *nats_submit(const char *body, const char *key)
{
    natsMsg *req = NULL, *reply = NULL;
    assert_int_equal(natsMsg_Create(&req, "reqrun.submit.default", NULL, body, (int)strlen(body)),
                     NATS_OK);
    if (key != NULL)
        natsMsgHeader_Set(req, "Idempotency-Key", key);
    assert_int_equal(natsConnection_RequestMsg(&reply, nc, req, rt_ms(30000)), NATS_OK);
    natsMsg_Destroy(req);
    return reply;
}

static const char *hdr(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : "";
}

static void test_nats_native_submit(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"over "
                       "nats\"}],\"wait\":true}";
    natsMsg *a = nats_submit(body, NULL);
    assert_string_equal(hdr(a, "Reqrun-Status"), "200");
    char id[64];
    snprintf(id, sizeof id, "%s", hdr(a, "Reqrun-Request-Id"));
    assert_int_equal(strlen(id), 29);
    json_t *j = json_loadb(natsMsg_GetData(a), (size_t)natsMsg_GetDataLength(a), 0, NULL);
    assert_string_equal(rt_json_str(j, "object"), "chat.completion");
    json_decref(j);
    natsMsg_Destroy(a);
    assert_int_equal(rt_mock_calls(&stack, id), 1);

    /* with a key, twice: one id, one call, the second a replay */
    natsMsg *k1 = nats_submit(body, "nats-key-1");
    natsMsg *k2 = nats_submit(body, "nats-key-1");
    assert_string_equal(hdr(k1, "Reqrun-Status"), "200");
    assert_string_equal(hdr(k2, "Reqrun-Status"), "200");
    assert_string_equal(hdr(k1, "Reqrun-Request-Id"), hdr(k2, "Reqrun-Request-Id"));
    assert_string_equal(hdr(k2, "Idempotent-Replayed"), "true");
    assert_int_equal(rt_mock_calls(&stack, hdr(k1, "Reqrun-Request-Id")), 1);
    natsMsg_Destroy(k1);
    natsMsg_Destroy(k2);

    /* bad JSON: the same error as over HTTP */
    natsMsg *bad = nats_submit("{\"model\":", NULL);
    assert_string_equal(hdr(bad, "Reqrun-Status"), "400");
    j = json_loadb(natsMsg_GetData(bad), (size_t)natsMsg_GetDataLength(bad), 0, NULL);
    assert_string_equal(rt_json_str(json_object_get(j, "error"), "code"), "invalid_json");
    json_decref(j);
    natsMsg_Destroy(bad);
}

static void submit_with_webhook(const char *url, char id[64])
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hook\"}],"
             "\"reqrun\":{\"webhook_url\":\"%s\",\"metadata\":{\"order\":\"42\"}}}",
             url);
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r, body, NULL));
    assert_int_equal(r.status, 200);
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, 64));
    rt_resp_free(&r);
}

static void test_webhook_signed_and_delivered(void **state)
{
    (void)state;
    char url[96], id[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rx.port);
    submit_with_webhook(url, id);
    bool ok;
    RT_POLL(ok, hooks_for(id, NULL) == 1, 10000);
    assert_true(ok);
    hook h;
    hooks_for(id, &h);
    assert_true(signature_valid(&h));
    assert_true(strncmp(h.id, id, strlen(id)) == 0);
    long ts = atol(h.timestamp);
    assert_true(labs(ts - (long)time(NULL)) < 60);
    json_t *j = json_loads(h.body, 0, NULL);
    assert_string_equal(rt_json_str(j, "id"), id);
    assert_string_equal(rt_json_str(j, "status"), "completed");
    assert_string_equal(rt_json_str(j, "type"), "request.completed");
    assert_string_equal(rt_json_str(json_object_get(j, "metadata"), "order"), "42");
    json_decref(j);
    json_t *rec = rt_get_request(&stack, id, "include=attempts");
    json_t *log = json_object_get(rec, "webhook_deliveries");
    bool logged;
    RT_POLL(logged, (json_decref(rec), rec = rt_get_request(&stack, id, "include=attempts"),
                     log = json_object_get(rec, "webhook_deliveries"), json_array_size(log) == 1),
            5000);
    assert_true(logged);
    assert_true(json_is_true(json_object_get(json_array_get(log, 0), "delivered")));
    json_decref(rec);
}

static void test_webhook_delivered_once_after_receiver_recovers(void **state)
{
    (void)state;
    receiver_down();
    char url[96], id[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rx.port);
    submit_with_webhook(url, id);
    rt_sleep_ms(5000);
    assert_int_equal(hooks_for(id, NULL), 0);
    receiver_up();
    bool ok;
    RT_POLL(ok, hooks_for(id, NULL) >= 1, 30000);
    assert_true(ok);
    rt_sleep_ms(rt_ms(3000));
    assert_int_equal(hooks_for(id, NULL), 1); /* exactly once */
    json_t *rec = rt_get_request(&stack, id, "include=attempts");
    json_t *log = json_object_get(rec, "webhook_deliveries");
    size_t n = json_array_size(log);
    assert_true(n >= 2); /* failed attempts while down, then the delivery */
    assert_true(json_is_true(json_object_get(json_array_get(log, n - 1), "delivered")));
    assert_string_equal(rt_json_str(json_array_get(log, 0), "error_code"), "webhook_unreachable");
    json_decref(rec);
}

static void test_webhook_to_private_address_refused(void **state)
{
    (void)state;
    char id[64];
    /* https passes the submit check; the address check happens after DNS */
    submit_with_webhook("https://10.1.2.3:8443/hook", id);
    json_t *rec = NULL;
    bool ok;
    RT_POLL(ok, (json_decref(rec), rec = rt_get_request(&stack, id, "include=attempts"),
                 json_array_size(json_object_get(rec, "webhook_deliveries")) >= 1),
            10000);
    assert_true(ok);
    json_t *d = json_array_get(json_object_get(rec, "webhook_deliveries"), 0);
    assert_string_equal(rt_json_str(d, "error_code"), "webhook_address_refused");
    assert_true(json_is_false(json_object_get(d, "delivered")));
    json_decref(rec);
    rt_sleep_ms(rt_ms(2500)); /* refused for good: no retry */
    rec = rt_get_request(&stack, id, "include=attempts");
    assert_int_equal(json_array_size(json_object_get(rec, "webhook_deliveries")), 1);
    json_decref(rec);
}

static void test_webhook_url_checked_at_submit(void **state)
{
    (void)state;
    rt_resp r;
    /* http to a host that is not allow-listed */
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"reqrun\":"
                             "{\"webhook_url\":\"http://example.com/hook\"}}",
                             NULL));
    assert_int_equal(r.status, 400);
    json_t *j = rt_resp_json(&r);
    assert_string_equal(rt_json_str(json_object_get(j, "error"), "code"), "invalid_webhook_url");
    json_decref(j);
    rt_resp_free(&r);
    /* a tenant without a secret */
    rt_proc_stop(&stack.ingress, SIGTERM, 30000);
    char *no_secret[] = {"REQRUN_WEBHOOK_SECRET=", NULL};
    assert_true(rt_stack_start_ingress(&stack, no_secret));
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"reqrun\":"
                             "{\"webhook_url\":\"https://example.com/hook\"}}",
                             NULL));
    assert_int_equal(r.status, 400);
    j = rt_resp_json(&r);
    assert_string_equal(rt_json_str(json_object_get(j, "error"), "code"),
                        "webhook_secret_not_configured");
    json_decref(j);
    rt_resp_free(&r);
    rt_proc_stop(&stack.ingress, SIGTERM, 30000);
    assert_true(rt_stack_start_ingress(&stack, NULL));
}

static int64_t parse_ms(const char *rfc3339)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    const char *rest = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL || sscanf(rest, ".%3dZ", &ms) != 1)
        return 0;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_long_poll(void **state)
{
    (void)state;
    char id[64];
    rt_resp r;
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"lp\"}],\"mock\":{\"latency_ms\":1000}}",
                             NULL));
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    rt_resp_free(&r);
    json_t *rec = rt_get_request(&stack, id, "wait=10");
    int64_t got = wall_ms();
    assert_string_equal(rt_json_str(rec, "status"), "completed");
    int64_t done = parse_ms(rt_json_str(rec, "updated_at"));
    fprintf(stderr, "long-poll answered %lld ms after completion\n", (long long)(got - done));
    assert_true(got - done < rt_ms(100));
    json_decref(rec);

    /* not terminal within N s: the record as it is, after N s */
    assert_true(rt_post_chat(&stack, &r,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"lp2\"}],\"mock\":{\"fault\":\"hang\"},\"reqrun\":{\"timeout_s\":"
                             "20}}",
                             NULL));
    assert_non_null(rt_resp_header(&r, "X-ReqRun-Request-Id", id, sizeof id));
    rt_resp_free(&r);
    int64_t t0 = rt_now_ms();
    rec = rt_get_request(&stack, id, "wait=1");
    int64_t took = rt_now_ms() - t0;
    const char *st = rt_json_str(rec, "status");
    assert_true(strcmp(st, "processing") == 0 || strcmp(st, "queued") == 0);
    assert_true(took >= 950 && took < rt_ms(1500));
    json_decref(rec);
    char url[160];
    snprintf(url, sizeof url, "%s/v1/requests/%s/cancel", stack.base, id);
    assert_true(rt_http(&r, "POST", url, NULL, NULL, 10000));
    rt_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_show_each_transition_in_order),
        cmocka_unit_test(test_nats_native_submit),
        cmocka_unit_test(test_webhook_signed_and_delivered),
        cmocka_unit_test(test_webhook_delivered_once_after_receiver_recovers),
        cmocka_unit_test(test_webhook_to_private_address_refused),
        cmocka_unit_test(test_webhook_url_checked_at_submit),
        cmocka_unit_test(test_long_poll),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
