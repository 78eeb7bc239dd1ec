/* Fault 7: a network partition between the executor and NATS. The executor reaches
 * nats-server only through a loopback TCP proxy in this test (the ingress stays direct).
 * 360 keyed requests (mock latency 300 ms) go out at 15/s. 3 s in, the proxy cuts both
 * ways for 5 s (proxied connections closed, new ones refused); after the executor has
 * reconnected, it blackholes for at least 8 s (bytes stop flowing, nothing is closed:
 * only the client's pings, every 2 s with 3 outstanding allowed, can notice), then
 * restores. The executor reconnects each time (reqrun_nats_reconnects_total grows),
 * messages delivered into the dead connections come back after AckWait (30 s), no call in
 * flight is taken over or repeated, every request has exactly one terminal event, and
 * nothing is lost. Bytes held by the blackhole are delivered when it lifts, as a network
 * that queued them would: a write the executor gave up on may still land. */
#include "chaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CUT_MS 5000
#define BLACKHOLE_MS 8000

/* ---- a loopback TCP proxy with three modes ---- */

enum { P_PASS, P_CUT, P_BLACKHOLE };
#define MAX_PAIRS 64

static struct proxy {
    int port, target_port;
    int listen_fd;
    atomic_int mode;
    atomic_bool exit;
    pthread_t thread;
    int cfd[MAX_PAIRS], sfd[MAX_PAIRS]; /* client side, server side: proxy thread only */
    int n;
    atomic_int accepted;
} px;

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void close_pair(int i)
{
    close(px.cfd[i]);
    close(px.sfd[i]);
    px.n--;
    px.cfd[i] = px.cfd[px.n];
    px.sfd[i] = px.sfd[px.n];
}

/* Moves what src has to dst; false when either side is gone. */
static bool forward(int src, int dst)
{
    char buf[65536];
    ssize_t r = read(src, buf, sizeof buf);
    if (r <= 0)
        return false;
    for (ssize_t off = 0; off < r;) {
        ssize_t w = send(dst, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    (void)arg;
    int last = P_PASS;
    while (!atomic_load(&px.exit)) {
        int mode = atomic_load(&px.mode);
        if (mode != last) {
            /* The listening socket stays bound throughout (a closed one could lose its
             * port to an outgoing connection): shutdown refuses, listen accepts again. */
            if (mode == P_CUT) { /* both ways: established connections closed, new refused */
                while (px.n > 0)
                    close_pair(px.n - 1);
                shutdown(px.listen_fd, SHUT_RD);
            } else if (last == P_CUT) {
                listen(px.listen_fd, 64);
            }
            last = mode;
        }
        struct pollfd pfd[1 + 2 * MAX_PAIRS];
        int np = 0;
        if (mode != P_CUT)
            pfd[np++] = (struct pollfd){.fd = px.listen_fd, .events = POLLIN};
        int first_pair = np;
        if (mode == P_PASS) { /* a blackhole neither reads nor writes: bytes just stop */
            for (int i = 0; i < px.n; i++) {
                pfd[np++] = (struct pollfd){.fd = px.cfd[i], .events = POLLIN};
                pfd[np++] = (struct pollfd){.fd = px.sfd[i], .events = POLLIN};
            }
        }
        if (poll(pfd, (nfds_t)np, 50) <= 0)
            continue;
        if (mode == P_PASS) {
            bool dead[MAX_PAIRS] = {false};
            int pairs = (np - first_pair) / 2;
            for (int i = 0; i < pairs; i++) {
                struct pollfd *c = &pfd[first_pair + 2 * i], *s = c + 1;
                if ((c->revents & (POLLIN | POLLHUP | POLLERR)) && !forward(px.cfd[i], px.sfd[i]))
                    dead[i] = true;
                if (!dead[i] && (s->revents & (POLLIN | POLLHUP | POLLERR)) &&
                    !forward(px.sfd[i], px.cfd[i]))
                    dead[i] = true;
            }
            for (int i = pairs - 1; i >= 0; i--) {
                if (dead[i])
                    close_pair(i);
            }
        }
        if (first_pair == 1 && (pfd[0].revents & POLLIN)) {
            int c = accept(px.listen_fd, NULL, NULL);
            int s = c >= 0 && px.n < MAX_PAIRS ? connect_to(px.target_port) : -1;
            if (s >= 0) {
                px.cfd[px.n] = c;
                px.sfd[px.n] = s;
                px.n++;
                atomic_fetch_add(&px.accepted, 1);
            } else if (c >= 0) {
                close(c);
            }
        }
    }
    while (px.n > 0)
        close_pair(px.n - 1);
    close(px.listen_fd);
    return NULL;
}

static bool proxy_start(int target_port)
{
    memset(&px, 0, sizeof px);
    px.port = rt_free_port();
    px.target_port = target_port;
    px.listen_fd = listen_on(px.port);
    if (px.listen_fd < 0)
        return false;
    return pthread_create(&px.thread, NULL, proxy_main, NULL) == 0;
}

static void proxy_stop(void)
{
    atomic_store(&px.exit, true);
    pthread_join(px.thread, NULL);
}

/* ---- the test ---- */

static rt_stack stack;

static int setup(void **state)
{
    (void)state;
    /* AckWait 30 s (the default): heartbeats go every 10 s, so even a heartbeat sent just
     * before an outage and the next one just after it leave a gap (10 + ~9 + 10 s) short of
     * AckWait: no call in flight can be taken over, and none may be repeated. */
    rt_stack_opts o = {.env = {"REQRUN_ACK_WAIT_S=30", NULL}, .executors = 1, .no_wrap = true};
    if (!rt_stack_start(&stack, &o))
        return -1;
    /* the executor again, now behind the proxy */
    char url[96];
    static char env_url[128];
    if (!proxy_start(stack.nats.port))
        return -1;
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", px.port);
    snprintf(env_url, sizeof env_url, "REQRUN_NATS_URL=%s", url);
    char *extra[] = {env_url, NULL};
    if (rt_proc_stop(&stack.executor[0], SIGTERM, 30000) != 0 ||
        !rt_stack_start_executor(&stack, 0, extra)) {
        rt_stack_dump_logs(&stack);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bool ok = rt_stack_stop(&stack);
    proxy_stop();
    return ok ? 0 : -1;
}

static double metric(const char *name)
{
    return chaos_executor_metric(&stack, 0, name);
}

static bool reconnected_since(double before)
{
    return metric("reqrun_nats_reconnects_total") > before &&
           metric("reqrun_nats_connected") == 1;
}

static void test_partition_executor_from_nats(void **state)
{
    (void)state;
    assert_true(atomic_load(&px.accepted) >= 1); /* the executor goes through the proxy */
    chaos_run r;
    chaos_run_init(&r, &stack, "partition", 360);
    chaos_mock_latency(&r, 300);
    r.rate = 15;
    r.threads = 16;
    double reconnects0 = metric("reqrun_nats_reconnects_total");
    chaos_start(&r);

    /* 1. cut both ways */
    rt_sleep_ms(3000);
    int64_t cut_at = chaos_elapsed_ms(&r);
    atomic_store(&px.mode, P_CUT);
    bool cut_seen;
    RT_POLL(cut_seen, metric("reqrun_nats_connected") == 0, 3000);
    rt_sleep_ms(CUT_MS - (chaos_elapsed_ms(&r) - cut_at));
    atomic_store(&px.mode, P_PASS);
    int64_t cut_end = chaos_elapsed_ms(&r);
    bool back1;
    RT_POLL(back1, reconnected_since(reconnects0), 15000);
    double reconnects1 = metric("reqrun_nats_reconnects_total");
    fprintf(stderr, "CHAOS partition: cut %lld..%lld ms (noticed: %s), reconnected at %lld ms\n",
            (long long)cut_at, (long long)cut_end, cut_seen ? "yes" : "no",
            (long long)chaos_elapsed_ms(&r));

    /* 2. a silent blackhole: held until the client's pings notice, at least 8 s */
    rt_sleep_ms(2000);
    int64_t hole_at = chaos_elapsed_ms(&r);
    atomic_store(&px.mode, P_BLACKHOLE);
    bool hole_seen;
    RT_POLL(hole_seen, metric("reqrun_nats_connected") == 0, 20000);
    int64_t noticed_after = chaos_elapsed_ms(&r) - hole_at;
    int64_t left = BLACKHOLE_MS - (chaos_elapsed_ms(&r) - hole_at);
    if (left > 0)
        rt_sleep_ms(left);
    atomic_store(&px.mode, P_PASS);
    int64_t hole_end = chaos_elapsed_ms(&r);
    bool back2;
    RT_POLL(back2, reconnected_since(reconnects1), 15000);
    double reconnects2 = metric("reqrun_nats_reconnects_total");
    fprintf(stderr, "CHAOS partition: blackhole %lld..%lld ms (noticed after %lld ms), "
                    "reconnected at %lld ms; reconnects %.0f -> %.0f -> %.0f\n",
            (long long)hole_at, (long long)hole_end, (long long)noticed_after,
            (long long)chaos_elapsed_ms(&r), reconnects0, reconnects1, reconnects2);

    chaos_join(&r);
    chaos_figures f;
    chaos_verify(&r, 90000, &f);
    bool queue_empty;
    RT_POLL(queue_empty, chaos_queue_settled(&stack), 60000);
    int leftovers = chaos_queue_leftovers(&r, &f.violations);
    int copies = 0, diverged = 0;
    int event_violations = chaos_check_events(&r, &copies, &diverged);
    fprintf(stderr, "CHAOS partition: %d extra event copies; executor deliveries settled "
                    "as lost_race: %.0f, requests it logged terminal: %.0f\n",
            copies, metric("reqrun_deliveries_total{result=\"lost_race\"}"),
            metric("reqrun_records_terminal_total"));
    chaos_print(&r, &f);
    if (f.lost > 0 || f.violations > 0 || event_violations > 0)
        rt_stack_dump_logs(&stack);

    assert_true(cut_seen);
    assert_true(back1);
    assert_true(hole_seen);
    assert_true(back2);
    assert_true(reconnects2 >= reconnects0 + 2);
    assert_true(queue_empty);
    assert_int_equal(leftovers, 0);
    assert_int_equal(f.lost, 0);
    assert_int_equal(f.unknown, 0);
    assert_int_equal(f.violations, 0);
    assert_int_equal(event_violations, 0);
    assert_int_equal(f.ok, r.n);
    /* neither outage outlasted AckWait: no call was taken over and repeated */
    assert_int_equal(f.duplicate_upstream_calls, 0);
    chaos_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_executor_from_nats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
