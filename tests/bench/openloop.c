/* Open-loop load generator for tests/bench/run.sh: sends request i at t0 + i/RATE whatever
 * happened to earlier requests (libcurl multi on epoll, many keep-alive connections), and
 * times each request from its *scheduled* send time to the end of its answer, so a stalled
 * server shows up as latency instead of as fewer requests (no coordinated omission).
 *
 *   openloop -u URL -r RATE -t SECONDS [-d BODY | -D FILE] [-H 'Name: value']...
 *            [-c MAXCONN] [-e SUBSTRING] [-T TIMEOUT_S]
 *
 * At most MAXCONN connections are open (default 1900); a request that finds them all busy
 * waits inside libcurl, and that wait counts in its latency. A request succeeds when curl
 * reports no error, the status is 2xx and, with -e, the body contains SUBSTRING.
 * Prints one JSON line: counts, success_pct, sent_rps (how well the schedule was kept),
 * achieved_rps (successful completions per second between the first and last
 * completion), send_lag_p99_ms (scheduled time to hand-off to libcurl) and nearest-rank
 * percentiles of the successful requests' latency. Exit status 0 when all succeeded. */
#define _POSIX_C_SOURCE 200809L

#include "benchlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct xfer {
    CURL *h;
    buf body;
    int64_t sched_ns;
    struct xfer *next_free;
} xfer;

typedef struct gen {
    CURLM *multi;
    int epfd;
    int64_t timer_deadline_ns; /* -1: none */
} gen;

static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
    (void)e;
    (void)sockp;
    gen *g = ud;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(g->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = s};
    if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
        epoll_ctl(g->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
    (void)m;
    gen *g = ud;
    g->timer_deadline_ns = timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: openloop " BENCH_REQ_USAGE " -r RATE -t SECONDS [-c MAXCONN]\n");
}

int main(int argc, char **argv)
{
    bench_req req = BENCH_REQ_INIT;
    double rate = 0, seconds = 0;
    long maxconn = 1900;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        int shared = bench_req_option(&req, a, v);
        if (shared < 0)
            return 2;
        if (shared > 0)
            continue;
        if (strcmp(a, "-r") == 0) {
            rate = strtod(v, NULL);
        } else if (strcmp(a, "-t") == 0) {
            seconds = strtod(v, NULL);
        } else if (strcmp(a, "-c") == 0) {
            maxconn = strtol(v, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (!bench_req_ready(&req) || rate <= 0 || seconds <= 0 || maxconn < 1) {
        usage();
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    gen g = {.multi = curl_multi_init(), .epfd = epoll_create1(EPOLL_CLOEXEC),
             .timer_deadline_ns = -1};
    curl_multi_setopt(g.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(g.multi, CURLMOPT_SOCKETDATA, &g);
    curl_multi_setopt(g.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(g.multi, CURLMOPT_TIMERDATA, &g);
    curl_multi_setopt(g.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxconn);
    curl_multi_setopt(g.multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
    curl_multi_setopt(g.multi, CURLMOPT_MAXCONNECTS, maxconn);

    size_t total = (size_t)(rate * seconds);
    int64_t interval_ns = (int64_t)(1e9 / rate);
    int64_t *lat = calloc(total, sizeof *lat);
    int64_t *lag = calloc(total, sizeof *lag);
    size_t ok = 0, failed = 0, sent = 0, done = 0, in_flight = 0, n_lag = 0;
    long status_hist[6] = {0}; /* 0: no HTTP status (curl error), 1..5: 1xx..5xx */
    long body_mismatch = 0, reported = 0;
    xfer *free_list = NULL;
    int64_t first_done = -1, last_done = -1, last_send = 0;

    int64_t t0 = now_ns() + 10000000; /* 10 ms to set up */
    int64_t hard_stop = t0 + (int64_t)((seconds + (double)req.timeout_s + 10) * 1e9);

    while (done < total) {
        int64_t now = now_ns();
        if (now > hard_stop)
            break;
        /* Send everything whose time has come. */
        while (sent < total && t0 + (int64_t)sent * interval_ns <= now) {
            xfer *x = free_list;
            if (x != NULL) {
                free_list = x->next_free;
            } else {
                x = calloc(1, sizeof *x);
                x->h = curl_easy_init();
                bench_req_apply(&req, x->h, &x->body);
                curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
            }
            x->sched_ns = t0 + (int64_t)sent * interval_ns;
            x->body.len = 0;
            lag[n_lag++] = now - x->sched_ns;
            curl_multi_add_handle(g.multi, x->h);
            sent++;
            in_flight++;
            last_send = now;
        }

        /* Wait for sockets, libcurl's timer or the next scheduled send. */
        int64_t wake = sent < total ? t0 + (int64_t)sent * interval_ns : hard_stop;
        if (g.timer_deadline_ns >= 0 && g.timer_deadline_ns < wake)
            wake = g.timer_deadline_ns;
        int64_t wait_ns = wake - now_ns();
        int timeout_ms = wait_ns <= 0 ? 0 : (int)((wait_ns + 999999) / 1000000);
        struct epoll_event evs[256];
        int n = epoll_wait(g.epfd, evs, 256, timeout_ms);
        int running = 0;
        for (int i = 0; i < n; i++) {
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(g.multi, evs[i].data.fd, flags, &running);
        }
        if (g.timer_deadline_ns >= 0 && now_ns() >= g.timer_deadline_ns) {
            g.timer_deadline_ns = -1;
            curl_multi_socket_action(g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }

        /* Collect finished transfers. */
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(g.multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            int64_t t = now_ns();
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode rc = m->data.result;
            long status = 0;
            curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
            status_hist[status >= 100 && status < 600 ? status / 100 : 0]++;
            bool good = bench_req_succeeded(&req, rc, status, &x->body);
            body_mismatch += !good && rc == CURLE_OK && status >= 200 && status <= 299;
            if (good) {
                lat[ok++] = t - x->sched_ns;
                if (first_done < 0)
                    first_done = t;
                last_done = t;
            } else {
                failed++;
                if (reported++ < 5)
                    fprintf(stderr, "openloop: request failed: %s, status %ld, body: %.200s\n",
                            curl_easy_strerror(rc), status,
                            x->body.len ? x->body.p : "");
            }
            curl_multi_remove_handle(g.multi, x->h);
            x->next_free = free_list;
            free_list = x;
            done++;
            in_flight--;
        }
    }

    sort_ns(lat, ok);
    sort_ns(lag, n_lag);
    double span_s = last_done > first_done ? (double)(last_done - first_done) / 1e9 : 0;
    double send_span_s = (double)(last_send - t0) / 1e9;
    printf("{\"offered_rps\":%.1f,\"duration_s\":%.1f,\"scheduled\":%zu,\"sent\":%zu,"
           "\"ok\":%zu,\"failed\":%zu,\"unfinished\":%zu,\"body_mismatch\":%ld,"
           "\"status_none\":%ld,\"status_2xx\":%ld,\"status_4xx\":%ld,\"status_5xx\":%ld,"
           "\"success_pct\":%.3f,\"sent_rps\":%.1f,\"achieved_rps\":%.1f,"
           "\"send_lag_p99_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
           rate, seconds, total, sent, ok, failed, in_flight, body_mismatch, status_hist[0],
           status_hist[2], status_hist[4], status_hist[5],
           total ? 100.0 * (double)ok / (double)total : 0,
           send_span_s > 0 ? (double)(sent - 1) / send_span_s : 0,
           span_s > 0 ? (double)(ok - 1) / span_s : 0, pct_ms(lag, n_lag, 0.99),
           pct_ms(lat, ok, 0.50), pct_ms(lat, ok, 0.90), pct_ms(lat, ok, 0.99),
           pct_ms(lat, ok, 0.999), ok ? (double)lat[ok - 1] / 1e6 : -1);

    while (free_list != NULL) {
        xfer *x = free_list;
        free_list = x->next_free;
        curl_easy_cleanup(x->h);
        free(x->body.p);
        free(x);
    }
    free(lat);
    free(lag);
    curl_multi_cleanup(g.multi);
    bench_req_free(&req);
    close(g.epfd);
    curl_global_cleanup();
    return ok == total ? 0 : 1;
}
