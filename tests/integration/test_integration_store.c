/* The bus and the record store against a real nats-server: create-only and
 * compare-and-set writes, republished writes (only stored ones), request publishing with
 * dedup, the per-tenant pending cap, and pull deliveries settled once. */
#include "harness.h"

#include "reqrun/bus.h"
#include "reqrun/clock.h"
#include "reqrun/config.h"
#include "reqrun/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rr_config cfg;
static rr_bus *bus;

static rr_bus *connect_to(const char *url, rr_config *c, const char *const env[])
{
    setenv("REQRUN_NATS_URL", url, 1);
    unsetenv("REQRUN_TENANT_MAX_PENDING");
    for (int i = 0; env != NULL && env[i] != NULL; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s", env[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        setenv(kv, eq + 1, 1);
    }
    char err[512];
    assert_int_equal(rr_config_load(c, err, sizeof err), RR_OK);
    rr_bus *b = NULL;
    assert_int_equal(rr_bus_connect(&b, c, "test-store"), RR_OK);
    rr_status s = rr_bus_setup(b, c, err, sizeof err);
    if (s != RR_OK)
        fprintf(stderr, "setup: %s\n", err);
    assert_int_equal(s, RR_OK);
    return b;
}

static int setup(void **state)
{
    (void)state;
    char url[128] = "";
    const char *path = getenv("RT_NATS_URL_FILE");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL || fgets(url, sizeof url, f) == NULL)
        return -1;
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    bus = connect_to(url, &cfg, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rr_bus_destroy(bus);
    rr_config_free(&cfg);
    return 0;
}

static void make_record(rr_record *rec, const char *tenant, rr_state st)
{
    memset(rec, 0, sizeof *rec);
    char id[RR_ID_BUF];
    assert_int_equal(rr_id_random(id), RR_OK);
    snprintf(rec->id, sizeof rec->id, "%s", id);
    snprintf(rec->tenant, sizeof rec->tenant, "%s", tenant);
    rec->state = st;
    rec->max_attempts = 3;
    rec->created_ms = rec->updated_ms = rr_now_ms();
}

static void test_create_update_conflict(void **state)
{
    (void)state;
    rr_record rec;
    make_record(&rec, "tstore", RR_STATE_QUEUED);
    uint64_t rev1 = 0, rev2 = 0, got_rev = 0;
    rr_record got;
    assert_int_equal(rr_store_get(bus, rec.tenant, rec.id, &got, &got_rev), RR_NOT_FOUND);
    assert_int_equal(rr_store_put(bus, &rec, 0, &rev1, NULL), RR_OK);
    assert_true(rev1 > 0);
    /* create-only: a second create is refused */
    assert_int_equal(rr_store_put(bus, &rec, 0, &rev2, NULL), RR_EXISTS);
    rec.state = RR_STATE_PROCESSING;
    rec.attempts = 1;
    assert_int_equal(rr_store_put(bus, &rec, rev1, &rev2, NULL), RR_OK);
    assert_true(rev2 > rev1);
    /* compare-and-set against a stale revision loses */
    rec.state = RR_STATE_COMPLETED;
    assert_int_equal(rr_store_put(bus, &rec, rev1, NULL, NULL), RR_CONFLICT);
    assert_int_equal(rr_store_get(bus, rec.tenant, rec.id, &got, &got_rev), RR_OK);
    assert_int_equal(got.state, RR_STATE_PROCESSING);
    assert_int_equal(got_rev, rev2);
    assert_int_equal(got.attempts, 1);
    rr_record_free(&got);
    /* another tenant's key is another record */
    assert_int_equal(rr_store_get(bus, "other", rec.id, &got, &got_rev), RR_NOT_FOUND);
}

typedef struct seen {
    pthread_mutex_t mu;
    int count;
    rr_state last;
    uint64_t last_rev;
    char key[RR_RECORD_KEY_BUF];
} seen;

static void on_record(const rr_bus_msg *m, void *ctx)
{
    seen *s = ctx;
    const char *subject = rr_bus_msg_subject(m);
    if (strcmp(subject + strlen(RR_SUBJ_RECORDS), s->key) != 0)
        return;
    size_t len = 0;
    const void *data = rr_bus_msg_data(m, &len);
    rr_record rec;
    if (rr_record_decode(&rec, data, len) != RR_OK)
        return;
    pthread_mutex_lock(&s->mu);
    s->count++;
    s->last = rec.state;
    s->last_rev = rr_bus_msg_revision(m);
    pthread_mutex_unlock(&s->mu);
    rr_record_free(&rec);
}

static int seen_count(seen *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void test_republish_only_stored_writes(void **state)
{
    (void)state;
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rr_record rec;
    make_record(&rec, "trepub", RR_STATE_QUEUED);
    rr_record_key(s.key, rec.tenant, rec.id);
    rr_bus_sub *sub = NULL;
    assert_int_equal(rr_bus_subscribe(bus, RR_SUBJ_RECORDS ">", NULL, on_record, &s, &sub),
                     RR_OK);
    uint64_t rev = 0;
    assert_int_equal(rr_store_put(bus, &rec, 0, &rev, NULL), RR_OK);
    bool ok;
    RT_POLL(ok, seen_count(&s) == 1, 5000);
    assert_true(ok);
    /* a losing compare-and-set must not wake anyone */
    rec.state = RR_STATE_COMPLETED;
    assert_int_equal(rr_store_put(bus, &rec, rev + 1000, NULL, NULL), RR_CONFLICT);
    uint64_t rev2 = 0;
    rec.state = RR_STATE_FAILED;
    assert_int_equal(rr_store_put(bus, &rec, rev, &rev2, NULL), RR_OK);
    RT_POLL(ok, seen_count(&s) == 2, 5000);
    assert_true(ok);
    rt_sleep_ms(200);
    assert_int_equal(seen_count(&s), 2);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.last, RR_STATE_FAILED);
    assert_int_equal(s.last_rev, rev2);
    pthread_mutex_unlock(&s.mu);
    rr_bus_unsubscribe(sub);
}

static void test_publish_dedup_and_fetch_settle(void **state)
{
    (void)state;
    char tenant[32];
    snprintf(tenant, sizeof tenant, "tpub%lld", (long long)(rr_now_ms() % 100000));
    rr_pub_ack a = {0}, b = {0}, c = {0};
    assert_int_equal(rr_bus_publish_request(bus, tenant, "id1.h1", "one", 3, 2000, &a), RR_OK);
    assert_false(a.duplicate);
    assert_int_equal(rr_bus_publish_request(bus, tenant, "id1.h1", "one", 3, 2000, &b), RR_OK);
    assert_true(b.duplicate);
    assert_int_equal(b.seq, a.seq);
    assert_int_equal(rr_bus_publish_request(bus, tenant, "id2.h2", "two", 3, 2000, &c), RR_OK);
    assert_false(c.duplicate);

    rr_bus_consumer *cons = NULL;
    assert_int_equal(rr_bus_consumer_open(bus, RR_STREAM_REQUESTS, RR_CONSUMER_EXECUTORS, &cons),
                     RR_OK);
    /* the consumer is shared with the other tests of this fixture: keep only ours */
    rr_delivery *batch[16];
    int n = 0, mine = 0;
    rr_delivery *first = NULL;
    int64_t until = rt_now_ms() + rt_ms(5000);
    while (mine < 2 && rt_now_ms() < until) {
        if (rr_bus_fetch(cons, 16, 500, batch, &n) != RR_OK)
            continue;
        for (int i = 0; i < n; i++) {
            rr_delivery_meta m = rr_delivery_meta_of(batch[i]);
            char subj[64];
            snprintf(subj, sizeof subj, RR_SUBJ_REQUESTS "%s", tenant);
            if (strcmp(rr_delivery_subject(batch[i]), subj) != 0) {
                rr_delivery_settle(batch[i], RR_SETTLE_ACK, 0);
                continue;
            }
            assert_int_equal(m.num_delivered, 1);
            mine++;
            if (m.stream_seq == a.seq) {
                first = batch[i];
            } else {
                assert_int_equal(m.stream_seq, c.seq);
                assert_int_equal(rr_delivery_settle(batch[i], RR_SETTLE_ACK, 0), RR_OK);
            }
        }
    }
    assert_int_equal(mine, 2);
    assert_non_null(first);
    /* a NAK with delay redelivers later, with the delivery count up */
    int64_t nak_at = rt_now_ms();
    assert_int_equal(rr_delivery_settle(first, RR_SETTLE_NAK, 300), RR_OK);
    rr_delivery *again = NULL;
    until = rt_now_ms() + rt_ms(5000);
    while (again == NULL && rt_now_ms() < until) {
        if (rr_bus_fetch(cons, 1, 500, batch, &n) == RR_OK)
            again = batch[0];
    }
    assert_non_null(again);
    assert_true(rt_now_ms() - nak_at >= 250);
    rr_delivery_meta m = rr_delivery_meta_of(again);
    assert_int_equal(m.stream_seq, a.seq);
    assert_int_equal(m.num_delivered, 2);
    size_t len = 0;
    const char *data = rr_delivery_data(again, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "one", 3);
    assert_int_equal(rr_delivery_settle(again, RR_SETTLE_TERM, 0), RR_OK);
    /* nothing left for us */
    assert_int_equal(rr_bus_fetch(cons, 4, 300, batch, &n), RR_TIMEOUT);
    rr_bus_consumer_close(cons);
}

static void test_tenant_pending_cap(void **state)
{
    (void)state;
    char dir[256];
    rt_tmpdir(dir, sizeof dir, "reqrun-cap");
    rt_nats srv;
    assert_true(rt_nats_start(&srv, dir));
    rr_config c;
    const char *env[] = {"REQRUN_TENANT_MAX_PENDING=2", NULL};
    rr_bus *b = connect_to(srv.url, &c, env);
    rr_pub_ack ack;
    assert_int_equal(rr_bus_publish_request(b, "capped", "m1", "x", 1, 2000, &ack), RR_OK);
    assert_int_equal(rr_bus_publish_request(b, "capped", "m2", "x", 1, 2000, &ack), RR_OK);
    assert_int_equal(rr_bus_publish_request(b, "capped", "m3", "x", 1, 2000, &ack), RR_LIMIT);
    /* other tenants are not affected */
    assert_int_equal(rr_bus_publish_request(b, "other", "m4", "x", 1, 2000, &ack), RR_OK);
    rr_bus_destroy(b);
    rr_config_free(&c);
    rt_nats_stop(&srv, SIGTERM);
    rt_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_update_conflict),
        cmocka_unit_test(test_republish_only_stored_writes),
        cmocka_unit_test(test_publish_dedup_and_fetch_settle),
        cmocka_unit_test(test_tenant_pending_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
