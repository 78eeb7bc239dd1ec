/* libcurl multi client for upstream calls: one thread, many transfers, connection reuse.
 * The thread drives libcurl with curl_multi_socket_action over epoll, so a wake-up
 * touches only the sockets that are ready, however many calls are held. Calls are handed
 * over through a locked queue and an eventfd. */
#include "reqrun/upstream.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct rr_call {
    uint64_t id;
    CURL *easy;
    struct curl_slist *headers;
    rr_call_done_fn done;
    void *ctx;
    int64_t timeout_ms;
    int64_t started_us;
    size_t max_body;
    bool too_large;
    bool aborted;
    rr_call_result result;
    size_t body_cap;
    char request_id[64];
    const void *req_body;
    size_t req_len;
    struct rr_call *next; /* submit queue, then active list */
    struct rr_call *prev;
};

typedef struct abort_req {
    uint64_t id;
    struct abort_req *next;
} abort_req;

struct rr_upstream {
    CURLM *multi;
    int epfd;
    int wake_fd;             /* eventfd: submissions, aborts, stop */
    int64_t timer_at_ms;     /* libcurl's next timeout (monotonic), -1 when none */
    pthread_t thread;
    pthread_mutex_t mu;
    rr_call *submitted;       /* guarded by mu */
    abort_req *aborts;        /* guarded by mu */
    bool stop;                /* guarded by mu */
    rr_call *active;          /* owned by the client thread */
    atomic_int in_flight;
    atomic_uint_fast64_t next_id;
    char url[2048];
    char auth[1024];
    size_t max_response_bytes;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    rr_call *c = userp;
    size_t n = size * nmemb;
    if (c->result.body_len + n > c->max_body) {
        c->too_large = true;
        return 0; /* aborts the transfer */
    }
    if (c->result.body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->result.body_len + n + 1)
            cap *= 2;
        char *grown = realloc(c->result.body, cap);
        if (grown == NULL)
            return 0;
        c->result.body = grown;
        c->body_cap = cap;
    }
    memcpy(c->result.body + c->result.body_len, data, n);
    c->result.body_len += n;
    c->result.body[c->result.body_len] = '\0';
    return n;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    rr_call *c = userp;
    size_t n = size * nmemb;
    static const char ra[] = "retry-after:";
    static const char ram[] = "retry-after-ms:";
    if (n > sizeof ram - 1 && strncasecmp(data, ram, sizeof ram - 1) == 0)
        copy_header_value(c->result.retry_after_ms, sizeof c->result.retry_after_ms,
                          data + sizeof ram - 1, n - (sizeof ram - 1));
    else if (n > sizeof ra - 1 && strncasecmp(data, ra, sizeof ra - 1) == 0)
        copy_header_value(c->result.retry_after, sizeof c->result.retry_after,
                          data + sizeof ra - 1, n - (sizeof ra - 1));
    return n;
}

static rr_status setup_easy(rr_upstream *u, rr_call *c)
{
    c->easy = curl_easy_init();
    if (c->easy == NULL)
        return RR_NOMEM;
    char idh[96];
    snprintf(idh, sizeof idh, "X-ReqRun-Request-Id: %s", c->request_id);
    struct curl_slist *h = NULL;
    const char *lines[] = {"Content-Type: application/json", "Expect:", idh,
                           u->auth[0] ? u->auth : NULL};
    for (size_t i = 0; i < 4; i++) {
        if (lines[i] == NULL)
            continue;
        struct curl_slist *n = curl_slist_append(h, lines[i]);
        if (n == NULL) {
            curl_slist_free_all(h);
            return RR_NOMEM;
        }
        h = n;
    }
    c->headers = h;
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, u->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->result.detail);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    return RR_OK;
}

static void active_remove(rr_upstream *u, rr_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        u->active = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static rr_call_kind kind_of(rr_call *c, CURLcode code)
{
    if (c->aborted)
        return RR_CALL_CANCELLED;
    if (c->too_large)
        return RR_CALL_TOO_LARGE;
    long sent = 0;
    curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent);
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return RR_CALL_NEVER_SENT;
    case CURLE_OPERATION_TIMEDOUT:
        return sent > 0 ? RR_CALL_TIMEOUT : RR_CALL_NEVER_SENT;
    default:
        return sent > 0 ? RR_CALL_LOST : RR_CALL_NEVER_SENT;
    }
}

/* Ends a call: fills its result, detaches curl, runs done. */
static void finish(rr_upstream *u, rr_call *c, CURLcode code)
{
    curl_multi_remove_handle(u->multi, c->easy);
    active_remove(u, c);
    rr_call_result *r = &c->result;
    r->duration_ms = (double)(rr_mono_us() - c->started_us) / 1000.0;
    if (code == CURLE_OK && !c->aborted) {
        long status = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        r->kind = RR_CALL_ANSWERED;
        r->http_status = (int)status;
        r->detail[0] = '\0';
    } else {
        r->kind = kind_of(c, code);
        if (r->detail[0] == '\0')
            snprintf(r->detail, sizeof r->detail, "%s",
                     c->aborted ? "aborted" : curl_easy_strerror(code));
    }
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    atomic_fetch_sub(&u->in_flight, 1);
    c->done(c, c->ctx);
}

/* Takes what other threads queued: new calls and aborts. Returns false on stop. */
static bool take_queued(rr_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    rr_call *sub = u->submitted;
    abort_req *ab = u->aborts;
    u->submitted = NULL;
    u->aborts = NULL;
    bool stop = u->stop;
    pthread_mutex_unlock(&u->mu);

    while (sub != NULL) {
        rr_call *c = sub;
        sub = sub->next;
        c->next = u->active;
        c->prev = NULL;
        if (u->active != NULL)
            u->active->prev = c;
        u->active = c;
        c->started_us = rr_mono_us();
        if (setup_easy(u, c) != RR_OK || curl_multi_add_handle(u->multi, c->easy) != CURLM_OK) {
            snprintf(c->result.detail, sizeof c->result.detail, "cannot start transfer");
            if (c->easy == NULL)
                c->easy = curl_easy_init(); /* finish() expects a handle to clean up */
            finish(u, c, CURLE_FAILED_INIT);
        }
    }
    while (ab != NULL) {
        abort_req *a = ab;
        ab = ab->next;
        for (rr_call *c = u->active; c != NULL; c = c->next) {
            if (c->id == a->id) {
                c->aborted = true;
                finish(u, c, CURLE_ABORTED_BY_CALLBACK);
                break;
            }
        }
        free(a);
    }
    return !stop;
}

/* libcurl tells which sockets to watch for what. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    rr_upstream *u = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(u->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(u->multi, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {
        .events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u),
        .data.fd = fd,
    };
    if (socketp == NULL) {
        epoll_ctl(u->epfd, EPOLL_CTL_ADD, fd, &ev);
        curl_multi_assign(u->multi, fd, u); /* any non-NULL: "registered" */
    } else {
        epoll_ctl(u->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    rr_upstream *u = userp;
    u->timer_at_ms = timeout_ms < 0 ? -1 : rr_mono_ms() + timeout_ms;
    return 0;
}

static void finish_done(rr_upstream *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        rr_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        finish(u, c, m->data.result);
    }
}

static void *client_thread(void *arg)
{
    rr_upstream *u = arg;
    int running = 0;
    struct epoll_event events[256];
    while (take_queued(u)) {
        int timeout = 1000;
        if (u->timer_at_ms >= 0) {
            int64_t d = u->timer_at_ms - rr_mono_ms();
            timeout = d <= 0 ? 0 : d < 1000 ? (int)d : 1000;
        }
        int n = epoll_wait(u->epfd, events, 256, timeout);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == u->wake_fd) {
                uint64_t v;
                ssize_t r = read(u->wake_fd, &v, sizeof v);
                (void)r;
                continue;
            }
            int flags = ((events[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                        ((events[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((events[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(u->multi, fd, flags, &running);
        }
        if (u->timer_at_ms >= 0 && rr_mono_ms() >= u->timer_at_ms) {
            u->timer_at_ms = -1;
            curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        finish_done(u);
    }
    while (u->active != NULL) {
        u->active->aborted = true;
        finish(u, u->active, CURLE_ABORTED_BY_CALLBACK);
    }
    return NULL;
}

static void wake(rr_upstream *u)
{
    uint64_t one = 1;
    ssize_t w = write(u->wake_fd, &one, sizeof one);
    (void)w;
}

rr_status rr_upstream_new(rr_upstream **out, const rr_upstream_options *opts)
{
    *out = NULL;
    rr_upstream *u = calloc(1, sizeof *u);
    if (u == NULL)
        return RR_NOMEM;
    size_t n = strlen(opts->base_url);
    while (n > 0 && opts->base_url[n - 1] == '/')
        n--;
    snprintf(u->url, sizeof u->url, "%.*s/chat/completions", (int)n, opts->base_url);
    if (opts->api_key != NULL && opts->api_key[0] != '\0')
        snprintf(u->auth, sizeof u->auth, "Authorization: Bearer %s", opts->api_key);
    u->max_response_bytes = opts->max_response_bytes;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    u->multi = curl_multi_init();
    if (u->multi == NULL) {
        free(u);
        return RR_NOMEM;
    }
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 4096L);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    u->timer_at_ms = -1;
    u->epfd = epoll_create1(EPOLL_CLOEXEC);
    u->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = u->wake_fd};
    pthread_mutex_init(&u->mu, NULL);
    if (u->epfd < 0 || u->wake_fd < 0 ||
        epoll_ctl(u->epfd, EPOLL_CTL_ADD, u->wake_fd, &ev) != 0 ||
        pthread_create(&u->thread, NULL, client_thread, u) != 0) {
        if (u->epfd >= 0)
            close(u->epfd);
        if (u->wake_fd >= 0)
            close(u->wake_fd);
        curl_multi_cleanup(u->multi);
        pthread_mutex_destroy(&u->mu);
        free(u);
        return RR_ERR;
    }
    *out = u;
    return RR_OK;
}

void rr_upstream_destroy(rr_upstream *u)
{
    if (u == NULL)
        return;
    pthread_mutex_lock(&u->mu);
    u->stop = true;
    pthread_mutex_unlock(&u->mu);
    wake(u);
    pthread_join(u->thread, NULL);
    /* Anything queued after the thread's last look was never started. */
    while (u->submitted != NULL) {
        rr_call *c = u->submitted;
        u->submitted = c->next;
        c->aborted = true;
        c->result.kind = RR_CALL_CANCELLED;
        snprintf(c->result.detail, sizeof c->result.detail, "client stopped");
        c->done(c, c->ctx);
    }
    while (u->aborts != NULL) {
        abort_req *a = u->aborts;
        u->aborts = a->next;
        free(a);
    }
    curl_multi_cleanup(u->multi);
    close(u->epfd);
    close(u->wake_fd);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

rr_status rr_upstream_start(rr_upstream *u, const char *request_id, const void *body,
                            size_t len, int64_t timeout_ms, rr_call_done_fn done, void *ctx,
                            uint64_t *call_id)
{
    rr_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return RR_NOMEM;
    c->id = atomic_fetch_add(&u->next_id, 1) + 1;
    c->done = done;
    c->ctx = ctx;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    c->max_body = u->max_response_bytes;
    c->req_body = body;
    c->req_len = len;
    snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
    *call_id = c->id;
    atomic_fetch_add(&u->in_flight, 1);
    pthread_mutex_lock(&u->mu);
    c->next = u->submitted;
    u->submitted = c;
    pthread_mutex_unlock(&u->mu);
    wake(u);
    return RR_OK;
}

void rr_upstream_abort(rr_upstream *u, uint64_t call_id)
{
    abort_req *a = calloc(1, sizeof *a);
    if (a == NULL)
        return;
    a->id = call_id;
    pthread_mutex_lock(&u->mu);
    a->next = u->aborts;
    u->aborts = a;
    pthread_mutex_unlock(&u->mu);
    wake(u);
}

int rr_upstream_in_flight(rr_upstream *u)
{
    return atomic_load(&u->in_flight);
}

const rr_call_result *rr_call_result_of(const rr_call *call)
{
    return &call->result;
}

void rr_call_destroy(rr_call *call)
{
    if (call == NULL)
        return;
    free(call->result.body);
    free(call);
}
