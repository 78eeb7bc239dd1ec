/* Provisioning of DESIGN §5's resources against a real nats-server: idempotent across
 * restarts of the service, updates changed settings, verify-only mode refuses drift,
 * and the max payload check. */
#include "harness.h"

#include "reqrun/bus.h"
#include "reqrun/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 1000000000LL

static char fixture_url[128];

static int read_fixture(void **state)
{
    (void)state;
    const char *path = getenv("RT_NATS_URL_FILE");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL || fgets(fixture_url, sizeof fixture_url, f) == NULL) {
        fprintf(stderr, "no nats fixture (RT_NATS_URL_FILE)\n");
        return -1;
    }
    fclose(f);
    fixture_url[strcspn(fixture_url, "\n")] = '\0';
    return 0;
}

/* Loads the config for url with extra env (NAME=VALUE, NULL-terminated), restoring none:
 * every test sets what it needs. */
static void load_config(rr_config *cfg, const char *url, const char *const env[])
{
    static const char *const touched[] = {"REQRUN_ACK_WAIT_S", "REQRUN_RECORD_TTL_S",
                                          "REQRUN_PROVISION", "REQRUN_MAX_BODY_BYTES", NULL};
    for (int i = 0; touched[i] != NULL; i++)
        unsetenv(touched[i]);
    setenv("REQRUN_NATS_URL", url, 1);
    for (int i = 0; env != NULL && env[i] != NULL; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s", env[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        setenv(kv, eq + 1, 1);
    }
    char err[256];
    assert_int_equal(rr_config_load(cfg, err, sizeof err), RR_OK);
}

static rr_status setup_once(const char *url, const char *const env[], char *err, size_t errlen)
{
    rr_config cfg;
    load_config(&cfg, url, env);
    rr_bus *bus = NULL;
    rr_status s = rr_bus_connect(&bus, &cfg, "test-provision");
    if (s == RR_OK)
        s = rr_bus_setup(bus, &cfg, err, errlen);
    rr_bus_destroy(bus);
    rr_config_free(&cfg);
    return s;
}

typedef struct js_handle {
    natsConnection *nc;
    jsCtx *js;
} js_handle;

static void js_open(js_handle *h, const char *url)
{
    assert_int_equal(natsConnection_ConnectTo(&h->nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&h->js, h->nc, NULL), NATS_OK);
}

static void js_close(js_handle *h)
{
    jsCtx_Destroy(h->js);
    natsConnection_Destroy(h->nc);
}

static jsStreamInfo *stream_info(js_handle *h, const char *name)
{
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, h->js, name, NULL, NULL), NATS_OK);
    return si;
}

static jsConsumerInfo *consumer_info(js_handle *h, const char *stream, const char *name)
{
    jsConsumerInfo *ci = NULL;
    assert_int_equal(js_GetConsumerInfo(&ci, h->js, stream, name, NULL, NULL), NATS_OK);
    return ci;
}

static void test_setup_is_idempotent_across_restarts(void **state)
{
    (void)state;
    char err[512] = "";
    /* three "service starts" in a row: each connects, provisions, goes away */
    for (int i = 0; i < 3; i++) {
        rr_status s = setup_once(fixture_url, NULL, err, sizeof err);
        if (s != RR_OK)
            fprintf(stderr, "setup %d: %s\n", i, err);
        assert_int_equal(s, RR_OK);
    }
    js_handle h;
    js_open(&h, fixture_url);
    jsStreamInfo *si = stream_info(&h, RR_STREAM_REQUESTS);
    assert_int_equal(si->Config->Retention, js_WorkQueuePolicy);
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->Config->Duplicates, 120 * NS);
    assert_int_equal(si->Config->MaxAge, (3600 + 3600) * NS);
    assert_int_equal(si->Config->MaxMsgsPerSubject, 10000);
    assert_true(si->Config->DiscardNewPerSubject);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], "reqrun.requests.>");
    jsStreamInfo_Destroy(si);

    jsConsumerInfo *ci = consumer_info(&h, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS);
    assert_int_equal(ci->Config->AckPolicy, js_AckExplicit);
    assert_int_equal(ci->Config->AckWait, 30 * NS);
    assert_int_equal(ci->Config->MaxDeliver, 5 * 2 + 5);
    assert_int_equal(ci->Config->MaxAckPending, 100000);
    assert_int_equal(ci->Config->BackOffLen, 0);
    jsConsumerInfo_Destroy(ci);

    si = stream_info(&h, "KV_reqrun_records");
    assert_int_equal(si->Config->MaxAge, 86400 * NS);
    assert_int_equal(si->Config->MaxMsgsPerSubject, 1);
    assert_non_null(si->Config->RePublish);
    assert_string_equal(si->Config->RePublish->Destination, "reqrun.records.>");
    jsStreamInfo_Destroy(si);

    si = stream_info(&h, "KV_reqrun_nonces");
    assert_int_equal(si->Config->MaxAge, 600 * NS);
    jsStreamInfo_Destroy(si);

    si = stream_info(&h, RR_STREAM_EVENTS);
    assert_int_equal(si->Config->Retention, js_LimitsPolicy);
    assert_int_equal(si->Config->MaxAge, 72LL * 3600 * NS);
    jsStreamInfo_Destroy(si);

    ci = consumer_info(&h, RR_STREAM_EVENTS, RR_CONSUMER_WEBHOOKS);
    assert_int_equal(ci->Config->AckPolicy, js_AckExplicit);
    jsConsumerInfo_Destroy(ci);
    js_close(&h);
}

static void test_setup_applies_changed_settings(void **state)
{
    (void)state;
    char err[512] = "";
    const char *env[] = {"REQRUN_ACK_WAIT_S=45", "REQRUN_RECORD_TTL_S=7200", NULL};
    assert_int_equal(setup_once(fixture_url, env, err, sizeof err), RR_OK);
    js_handle h;
    js_open(&h, fixture_url);
    jsConsumerInfo *ci = consumer_info(&h, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS);
    assert_int_equal(ci->Config->AckWait, 45 * NS);
    jsConsumerInfo_Destroy(ci);
    jsStreamInfo *si = stream_info(&h, "KV_reqrun_records");
    assert_int_equal(si->Config->MaxAge, 7200 * NS);
    assert_non_null(si->Config->RePublish); /* an update keeps the republish */
    jsStreamInfo_Destroy(si);
    js_close(&h);
    /* back to the defaults for the other tests */
    assert_int_equal(setup_once(fixture_url, NULL, err, sizeof err), RR_OK);
}

static void test_verify_mode_refuses_drift(void **state)
{
    (void)state;
    char err[512] = "";
    const char *same[] = {"REQRUN_PROVISION=0", NULL};
    rr_status s = setup_once(fixture_url, same, err, sizeof err);
    if (s != RR_OK)
        fprintf(stderr, "verify: %s\n", err);
    assert_int_equal(s, RR_OK);
    const char *drift[] = {"REQRUN_PROVISION=0", "REQRUN_ACK_WAIT_S=40", NULL};
    assert_int_equal(setup_once(fixture_url, drift, err, sizeof err), RR_CONFIG);
    assert_non_null(strstr(err, "ack wait"));
    /* verify-only mode changed nothing */
    js_handle h;
    js_open(&h, fixture_url);
    jsConsumerInfo *ci = consumer_info(&h, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS);
    assert_int_equal(ci->Config->AckWait, 30 * NS);
    jsConsumerInfo_Destroy(ci);
    js_close(&h);
}

static void test_verify_mode_needs_the_resources(void **state)
{
    (void)state;
    char dir[256];
    rt_tmpdir(dir, sizeof dir, "reqrun-provision");
    rt_nats fresh;
    assert_true(rt_nats_start(&fresh, dir));
    char err[512] = "";
    const char *env[] = {"REQRUN_PROVISION=0", NULL};
    assert_int_not_equal(setup_once(fresh.url, env, err, sizeof err), RR_OK);
    assert_non_null(strstr(err, RR_STREAM_REQUESTS));
    rt_nats_stop(&fresh, SIGTERM);
    rt_rmdir(dir);
}

static void test_refuses_small_max_payload(void **state)
{
    (void)state;
    char dir[256], conf[300], text[600];
    rt_tmpdir(dir, sizeof dir, "reqrun-payload");
    int port = rt_free_port();
    snprintf(conf, sizeof conf, "%s/nats.conf", dir);
    /* the server default max_payload: 1 MiB */
    snprintf(text, sizeof text, "listen: 127.0.0.1:%d\njetstream { store_dir: \"%s/store\" }\n",
             port, dir);
    assert_true(rt_write_file(conf, text));
    rt_proc p;
    char *argv[] = {"/usr/sbin/nats-server", "-c", conf, NULL};
    assert_true(rt_proc_start(&p, "nats", argv, NULL, dir, false));
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    bool up;
    RT_POLL(up, rt_js_ready(url), 10000);
    assert_true(up);
    char err[512] = "";
    assert_int_equal(setup_once(url, NULL, err, sizeof err), RR_CONFIG);
    assert_non_null(strstr(err, "max_payload"));
    rt_proc_stop(&p, SIGTERM, 10000);
    rt_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_is_idempotent_across_restarts),
        cmocka_unit_test(test_setup_applies_changed_settings),
        cmocka_unit_test(test_verify_mode_refuses_drift),
        cmocka_unit_test(test_verify_mode_needs_the_resources),
        cmocka_unit_test(test_refuses_small_max_payload),
    };
    return cmocka_run_group_tests(tests, read_fixture, NULL);
}
