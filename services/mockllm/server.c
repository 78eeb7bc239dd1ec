/* reqrun-mockllm's HTTP/1.1 server on epoll. Why not CivetWeb: the mock must reset
 * connections, hold a call without sending a byte while noticing the client leave, and
 * hold thousands of slow calls without a thread each; CivetWeb exposes no socket and
 * spends a thread per connection. */
#include "server.h"

#include "stats.h"

#include "reqrun/log.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER_BYTES 16384
#define MAX_BODY_BYTES (8 * 1024 * 1024)
#define MAX_EVENTS 256

typedef enum conn_state { C_READING, C_DELAYED, C_HANGING, C_WRITING } conn_state;

typedef struct loop loop;

typedef struct conn {
    int fd;
    loop *lp;
    conn_state state;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    size_t consumed;        /* bytes of the request being answered */
    bool keep_alive;
    bool closed;            /* fd closed; freed when it leaves the timer heap */
    bool in_heap;
    int64_t due_ms;
    char request_id[80];
    struct conn *prev, *next;
} conn;

struct loop {
    mock_server *srv;
    int epfd;
    int listen_fd;
    int wake_fd;
    pthread_t thread;
    conn **heap;
    size_t heap_len, heap_cap;
    conn *conns;
};

struct mock_server {
    loop *loops;
    int n_loops;
    pthread_mutex_t def_mu; /* POST /mock/config changes the defaults at run time */
    mock_defaults def;
    atomic_uint_fast64_t completions;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- timer heap (min by due_ms) ---- */

static void heap_swap(loop *lp, size_t a, size_t b)
{
    conn *t = lp->heap[a];
    lp->heap[a] = lp->heap[b];
    lp->heap[b] = t;
}

static bool heap_push(loop *lp, conn *c)
{
    if (lp->heap_len == lp->heap_cap) {
        size_t cap = lp->heap_cap ? lp->heap_cap * 2 : 256;
        conn **grown = realloc(lp->heap, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        lp->heap = grown;
        lp->heap_cap = cap;
    }
    size_t i = lp->heap_len++;
    lp->heap[i] = c;
    while (i > 0 && lp->heap[(i - 1) / 2]->due_ms > lp->heap[i]->due_ms) {
        heap_swap(lp, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    c->in_heap = true;
    return true;
}

static conn *heap_pop(loop *lp)
{
    conn *top = lp->heap[0];
    lp->heap[0] = lp->heap[--lp->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < lp->heap_len && lp->heap[l]->due_ms < lp->heap[m]->due_ms)
            m = l;
        if (r < lp->heap_len && lp->heap[r]->due_ms < lp->heap[m]->due_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(lp, i, m);
        i = m;
    }
    top->in_heap = false;
    return top;
}

/* ---- connections ---- */

static void conn_free(conn *c)
{
    loop *lp = c->lp;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        lp->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_close(conn *c, bool reset)
{
    if (c->closed)
        return;
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(c->lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->closed = true;
    if (!c->in_heap)
        conn_free(c);
}

static void watch(conn *c, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u),
                             .data.ptr = c};
    epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Prepares the answer in c->out (takes body). */
static void set_answer(conn *c, int status, char *body, size_t len, bool retry_after)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), len, retry_after ? "Retry-After: 1\r\n" : "",
                     c->keep_alive ? "" : "Connection: close\r\n");
    free(c->out);
    c->out = malloc((size_t)n + len);
    c->out_len = c->out != NULL ? (size_t)n + len : 0;
    c->out_off = 0;
    if (c->out != NULL) {
        memcpy(c->out, head, (size_t)n);
        if (len > 0)
            memcpy(c->out + n, body, len);
    }
    free(body);
}

static void set_error(conn *c, int status, const char *message)
{
    json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type",
                          "invalid_request_error", "param", "code", "mock_error");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    set_answer(c, status, s, s != NULL ? strlen(s) : 0, false);
}

static void process(conn *c);

/* Writes what is pending; when done, goes back to reading (or closes). */
static void flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->state = C_WRITING;
            watch(c, true);
            return;
        }
        conn_close(c, false);
        return;
    }
    if (c->state == C_WRITING)
        watch(c, false);
    if (!c->keep_alive) {
        conn_close(c, false);
        return;
    }
    memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
    c->in_len -= c->consumed;
    c->consumed = 0;
    c->state = C_READING;
    process(c);
}

static const char *find_header(const char *headers, const char *end, const char *name,
                               size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = headers;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

static void answer_chat(conn *c, const char *body, size_t len, const char *presented_key)
{
    mock_server *srv = c->lp->srv;
    long call = mock_stats_call(c->request_id);
    pthread_mutex_lock(&srv->def_mu);
    mock_defaults def = srv->def;
    pthread_mutex_unlock(&srv->def_mu);
    mock_plan plan;
    if (def.api_key != NULL && (presented_key == NULL || strcmp(presented_key, def.api_key) != 0))
        mock_plan_unauthorized(presented_key, &plan);
    else
        mock_plan_for(body, len, call, &def, atomic_fetch_add(&srv->completions, 1) + 1, &plan);
    switch (plan.action) {
    case MOCK_RESET:
        mock_plan_free(&plan);
        conn_close(c, true);
        return;
    case MOCK_HANG:
        mock_plan_free(&plan);
        c->state = C_HANGING;
        return;
    case MOCK_COMPLETE:
    case MOCK_ERROR:
        set_answer(c, plan.status, plan.body, plan.body_len, plan.retry_after);
        plan.body = NULL;
        break;
    }
    if (plan.latency_ms > 0) {
        c->state = C_DELAYED;
        c->due_ms = now_ms() + plan.latency_ms;
        if (heap_push(c->lp, c))
            return;
    }
    flush_out(c);
}

/* POST /mock/config {"fault": "<spec>"|"", "latency_ms": n}: new defaults for requests
 * without their own "mock" object (an upstream storm that starts and stops). */
static void configure(conn *c, const char *body, size_t len)
{
    mock_server *srv = c->lp->srv;
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *fault = json_object_get(j, "fault"), *lat = json_object_get(j, "latency_ms");
    mock_fault f;
    memset(&f, 0, sizeof f);
    bool ok = json_is_object(j) && (fault == NULL || (json_is_string(fault) &&
                                                      mock_fault_parse(json_string_value(fault), &f))) &&
              (lat == NULL || (json_is_integer(lat) && json_integer_value(lat) >= 0));
    if (ok) {
        pthread_mutex_lock(&srv->def_mu);
        if (fault != NULL)
            srv->def.fault = f;
        if (lat != NULL)
            srv->def.latency_ms = json_integer_value(lat);
        pthread_mutex_unlock(&srv->def_mu);
        set_answer(c, 200, strdup("{}"), 2, false);
    } else {
        set_error(c, 400, "expected {\"fault\": \"<spec>\", \"latency_ms\": n}");
    }
    json_decref(j);
    flush_out(c);
}

static void route(conn *c, const char *method, size_t mlen, const char *path, size_t plen,
                  const char *body, size_t len, const char *key)
{
#define IS(m, p) (mlen == strlen(m) && memcmp(method, m, mlen) == 0 && plen == strlen(p) && \
                  memcmp(path, p, plen) == 0)
    if (IS("POST", "/v1/chat/completions")) {
        answer_chat(c, body, len, key);
        return;
    }
    if (IS("GET", "/v1/models")) {
        static const char models[] = "{\"object\":\"list\",\"data\":[{\"id\":\"mock-model\","
                                     "\"object\":\"model\",\"created\":0,\"owned_by\":"
                                     "\"reqrun\"}]}";
        set_answer(c, 200, strdup(models), sizeof models - 1, false);
    } else if (IS("GET", "/mock/stats")) {
        size_t n = 0;
        char *s = mock_stats_json(&n);
        set_answer(c, 200, s, n, false);
    } else if (IS("POST", "/mock/config")) {
        configure(c, body, len);
        return;
    } else if (IS("POST", "/mock/reset")) {
        mock_stats_reset();
        set_answer(c, 200, strdup("{}"), 2, false);
    } else if (IS("GET", "/healthz")) {
        set_answer(c, 200, strdup("{\"status\":\"ok\"}"), 15, false);
    } else {
        set_error(c, 404, "no such route (mock)");
    }
#undef IS
    flush_out(c);
}

/* Parses one complete request from c->in, if there is one, and answers it. */
static void process(conn *c)
{
    if (c->state != C_READING || c->closed)
        return;
    const char *hend = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
    if (hend == NULL) {
        if (c->in_len > MAX_HEADER_BYTES) {
            c->keep_alive = false;
            set_error(c, 431, "headers too large");
            c->consumed = c->in_len;
            flush_out(c);
        }
        return;
    }
    size_t head_len = (size_t)(hend - c->in) + 4;
    const char *line_end = memmem(c->in, head_len, "\r\n", 2);
    const char *sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL) {
        c->keep_alive = false;
        set_error(c, 400, "bad request line");
        c->consumed = c->in_len;
        flush_out(c);
        return;
    }
    const char *headers = line_end + 2, *hdr_end = hend + 2;
    bool http11 = (size_t)(line_end - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0;
    size_t vlen = 0;
    const char *v = find_header(headers, hdr_end, "Connection", &vlen);
    c->keep_alive = v != NULL ? (vlen >= 10 && strncasecmp(v, "keep-alive", 10) == 0)
                              : http11;
    if (v != NULL && vlen == 5 && strncasecmp(v, "close", 5) == 0)
        c->keep_alive = false;
    if (find_header(headers, hdr_end, "Transfer-Encoding", &vlen) != NULL) {
        c->keep_alive = false;
        set_error(c, 411, "send Content-Length, not chunked bodies");
        c->consumed = c->in_len;
        flush_out(c);
        return;
    }
    size_t body_len = 0;
    v = find_header(headers, hdr_end, "Content-Length", &vlen);
    if (v != NULL) {
        char num[24];
        snprintf(num, sizeof num, "%.*s", (int)(vlen < 23 ? vlen : 23), v);
        body_len = strtoul(num, NULL, 10);
    }
    if (body_len > MAX_BODY_BYTES) {
        c->keep_alive = false;
        set_error(c, 413, "body too large");
        c->consumed = c->in_len;
        flush_out(c);
        return;
    }
    if (c->in_len < head_len + body_len)
        return; /* the body is still coming */
    c->request_id[0] = '\0';
    v = find_header(headers, hdr_end, "X-ReqRun-Request-Id", &vlen);
    if (v != NULL)
        snprintf(c->request_id, sizeof c->request_id, "%.*s",
                 (int)(vlen < sizeof c->request_id - 1 ? vlen : sizeof c->request_id - 1), v);
    char key[512] = "";
    v = find_header(headers, hdr_end, "Authorization", &vlen);
    if (v != NULL && vlen > 7 && strncasecmp(v, "Bearer ", 7) == 0)
        snprintf(key, sizeof key, "%.*s", (int)(vlen - 7 < sizeof key - 1 ? vlen - 7 : sizeof key - 1),
                 v + 7);
    c->consumed = head_len + body_len;
    route(c, c->in, (size_t)(sp1 - c->in), sp1 + 1, (size_t)(sp2 - sp1 - 1), c->in + head_len,
          body_len, key[0] != '\0' ? key : NULL);
}

static void on_readable(conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
            if (cap > MAX_HEADER_BYTES + MAX_BODY_BYTES + 8192) {
                conn_close(c, false);
                return;
            }
            char *grown = realloc(c->in, cap);
            if (grown == NULL) {
                conn_close(c, false);
                return;
            }
            c->in = grown;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EOF or error: the client is gone. A held call notes it for the tests. */
        if (c->state == C_HANGING || c->state == C_DELAYED)
            mock_stats_disconnect(c->request_id);
        conn_close(c, false);
        return;
    }
    process(c);
}

static void accept_all(loop *lp)
{
    for (;;) {
        int fd = accept4(lp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->lp = lp;
        c->next = lp->conns;
        if (lp->conns != NULL)
            lp->conns->prev = c;
        lp->conns = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void fire_timers(loop *lp)
{
    int64_t now = now_ms();
    while (lp->heap_len > 0 && lp->heap[0]->due_ms <= now) {
        conn *c = heap_pop(lp);
        if (c->closed) {
            conn_free(c);
            continue;
        }
        flush_out(c);
    }
}

static void *loop_main(void *arg)
{
    loop *lp = arg;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int timeout = 1000;
        if (lp->heap_len > 0) {
            int64_t d = lp->heap[0]->due_ms - now_ms();
            timeout = d < 0 ? 0 : (int)(d < 1000 ? d : 1000);
        }
        int n = epoll_wait(lp->epfd, events, MAX_EVENTS, timeout);
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &lp->listen_fd) {
                accept_all(lp);
            } else if (p == &lp->wake_fd) {
                return NULL;
            } else {
                conn *c = p;
                if (c->closed)
                    continue;
                if (events[i].events & EPOLLOUT)
                    flush_out(c);
                if (!c->closed && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    on_readable(c);
            }
        }
        fire_timers(lp);
    }
}

static int bind_listener_opts(const char *listen_addr, bool reuseport)
{
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(listen_addr, ':');
    int port = atoi(colon != NULL ? colon + 1 : listen_addr);
    if (colon != NULL)
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT would let the loops share a port with another process's listener: make
 * sure nobody listens there first. */
static bool port_taken(const char *listen_addr)
{
    int fd = bind_listener_opts(listen_addr, false);
    if (fd < 0)
        return true;
    close(fd);
    return false;
}

mock_server *mock_server_start(const char *listen_addr, int n_loops, const mock_defaults *def)
{
    if (port_taken(listen_addr)) {
        rr_error("mock: cannot listen on %s: address in use or invalid", listen_addr);
        return NULL;
    }
    mock_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->def = *def;
    pthread_mutex_init(&s->def_mu, NULL);
    s->n_loops = n_loops;
    s->loops = calloc((size_t)n_loops, sizeof *s->loops);
    if (s->loops == NULL) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < n_loops; i++) {
        loop *lp = &s->loops[i];
        lp->srv = s;
        lp->listen_fd = bind_listener_opts(listen_addr, true);
        lp->epfd = epoll_create1(EPOLL_CLOEXEC);
        lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (lp->listen_fd < 0 || lp->epfd < 0 || lp->wake_fd < 0) {
            rr_error("mock: cannot listen on %s: %s", listen_addr, strerror(errno));
            s->n_loops = i + 1;
            mock_server_stop(s);
            return NULL;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lp->listen_fd};
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->listen_fd, &ev);
        struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &lp->wake_fd};
        epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wake_fd, &wev);
    }
    for (int i = 0; i < n_loops; i++)
        pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]);
    return s;
}

void mock_server_stop(mock_server *s)
{
    for (int i = 0; i < s->n_loops; i++) {
        loop *lp = &s->loops[i];
        if (lp->thread != 0) {
            uint64_t one = 1;
            ssize_t w = write(lp->wake_fd, &one, sizeof one);
            (void)w;
            pthread_join(lp->thread, NULL);
        }
        while (lp->conns != NULL) {
            conn *c = lp->conns;
            if (!c->closed)
                close(c->fd);
            conn_free(c);
        }
        free(lp->heap);
        if (lp->listen_fd >= 0)
            close(lp->listen_fd);
        if (lp->epfd >= 0)
            close(lp->epfd);
        if (lp->wake_fd >= 0)
            close(lp->wake_fd);
    }
    free(s->loops);
    pthread_mutex_destroy(&s->def_mu);
    free(s);
}
