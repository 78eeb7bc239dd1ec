/* Test harness: real processes on loopback. Free ports, temp dirs, process control, a
 * real nats-server (alone or as a 3-node cluster), the whole ReqRun stack, an HTTP client
 * (libcurl) with JSON helpers, and polling with deadlines (never a bare sleep).
 *
 * Environment read by the harness:
 *   REQRUN_TEST_TIME_SCALE     multiplies every timeout (sanitizer builds are slower)
 *   REQRUN_TEST_SERVICE_WRAP   command prefix for the services, e.g. "valgrind -q ..."
 *   REQRUN_TEST_KEEP           keep temp dirs (logs) after the test
 *   REQRUN_TEST_HTTP_THREADS   the ingress's REQRUN_HTTP_THREADS (default 256)
 */
#ifndef RT_HARNESS_H
#define RT_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef RT_BIN_DIR
#error "RT_BIN_DIR must point at build/bin"
#endif

#define RT_MAX_ENV 48
#define RT_MAX_EXECUTORS 4
#define RT_CLUSTER_NODES 3

/* ---- time ---- */

double rt_time_scale(void);
/* ms scaled by REQRUN_TEST_TIME_SCALE */
int64_t rt_ms(int64_t ms);
int64_t rt_now_ms(void);
void rt_sleep_ms(int64_t ms);
/* Polls cond every 20 ms until true or timeout_ms (scaled); ok gets the final value. */
#define RT_POLL(ok, cond, timeout_ms)                                                        \
    do {                                                                                     \
        int64_t rt_until_ = rt_now_ms() + rt_ms(timeout_ms);                                 \
        while (!((ok) = (cond)) && rt_now_ms() < rt_until_)                                  \
            rt_sleep_ms(20);                                                                 \
    } while (0)

/* ---- files and ports ---- */

/* A fresh port on 127.0.0.1 that nothing listens on now. */
int rt_free_port(void);
/* mkdtemp under /tmp; the path is static storage per call (copy it). */
void rt_tmpdir(char *out, size_t outlen, const char *prefix);
void rt_rmdir(const char *path);
bool rt_write_file(const char *path, const char *text);

/* ---- processes ---- */

typedef struct rt_proc {
    pid_t pid;
    char name[48];
    char log_path[512];
    int exit_status; /* after stop: exit code, 128+signal, or -1 */
} rt_proc;

/* Starts argv with the current environment plus env ("K=V", NULL-terminated, may be
 * NULL); stdout and stderr go to <log_dir>/<name>.log (appended). wrap: prefix the
 * REQRUN_TEST_SERVICE_WRAP command. */
bool rt_proc_start(rt_proc *p, const char *name, char *const argv[], char *const env[],
                   const char *log_dir, bool wrap);
bool rt_proc_alive(rt_proc *p);
void rt_proc_signal(rt_proc *p, int sig);
/* Sends sig (0: none) and waits up to timeout_ms (scaled) for the exit, then SIGKILL.
 * Returns the exit status (also kept in p->exit_status). */
int rt_proc_stop(rt_proc *p, int sig, int64_t timeout_ms);
/* Prints the last lines of the process's log to stderr. */
void rt_proc_dump_log(const rt_proc *p, int lines);
/* Counts lines of the log containing needle. */
int rt_proc_log_count(const rt_proc *p, const char *needle);

/* ---- nats-server ---- */

typedef struct rt_nats {
    rt_proc proc;
    int port;
    int cluster_port;
    char url[64];
    char dir[512];
} rt_nats;

/* A single JetStream server on a free port with store under dir, max_payload 8MB. */
bool rt_nats_start(rt_nats *n, const char *dir);
/* Starts it again on the same port and store (after a stop or a kill -9). */
bool rt_nats_restart(rt_nats *n);
void rt_nats_stop(rt_nats *n, int sig);

/* JetStream answers at urls (a meta leader exists). */
bool rt_js_ready(const char *urls);

typedef struct rt_cluster {
    rt_nats node[RT_CLUSTER_NODES];
    char urls[256]; /* comma-separated client URLs */
} rt_cluster;

/* Three JetStream nodes in one cluster on loopback; waits for a meta leader. */
bool rt_cluster_start(rt_cluster *c, const char *dir);
bool rt_cluster_restart_node(rt_cluster *c, int i);
void rt_cluster_stop(rt_cluster *c);

/* ---- the ReqRun stack ---- */

typedef struct rt_stack_opts {
    const char *env[RT_MAX_ENV]; /* extra "K=V" for every service, NULL-terminated */
    int executors;               /* default 1 */
    bool cluster;                /* 3-node NATS cluster instead of one server */
    bool no_wrap;                /* never wrap services (e.g. for kill -9 tests) */
} rt_stack_opts;

typedef struct rt_stack {
    char dir[512];
    rt_nats nats;
    rt_cluster cluster;
    bool is_cluster;
    rt_proc mock;
    rt_proc ingress;
    rt_proc executor[RT_MAX_EXECUTORS];
    int n_executors;
    int ingress_port, mock_port;
    int executor_port[RT_MAX_EXECUTORS];
    char base[64];      /* http://127.0.0.1:<ingress> */
    char mock_base[64]; /* http://127.0.0.1:<mock> */
    char nats_url[256];
    char *env[RT_MAX_ENV + 16];
    bool wrap;
} rt_stack;

/* nats-server (or a cluster), reqrun-mockllm, executors and the ingress on free ports,
 * each ready (readyz) before this returns. On failure, prints the tail of every service
 * log started so far. */
bool rt_stack_start(rt_stack *s, const rt_stack_opts *o);
/* Stops everything (SIGTERM, then SIGKILL); false when a service exited non-zero (a
 * sanitizer or valgrind report, a crash). Removes the temp dir unless REQRUN_TEST_KEEP. */
bool rt_stack_stop(rt_stack *s);
/* (Re)starts executor i / the ingress with the stack's environment plus extra (may be
 * NULL), waiting for readyz. */
bool rt_stack_start_executor(rt_stack *s, int i, char *const extra[]);
bool rt_stack_start_ingress(rt_stack *s, char *const extra[]);
/* Prints the tail of every service log (call on failure). */
void rt_stack_dump_logs(rt_stack *s);

/* ---- HTTP ---- */

typedef struct rt_resp {
    long status;       /* 0 when the request failed at the transport */
    char *body;
    size_t len;
    char *headers;     /* raw response headers */
    double total_ms;
} rt_resp;

/* One HTTP exchange on a fresh connection. headers: "Name: value", NULL-terminated. */
bool rt_http(rt_resp *r, const char *method, const char *url, const char *body,
             const char *const headers[], long timeout_ms);
/* The value of a response header (case-insensitive) into buf; NULL when absent. */
const char *rt_resp_header(const rt_resp *r, const char *name, char *buf, size_t n);
/* The body parsed as JSON (NULL if it is not). Caller decrefs. */
json_t *rt_resp_json(const rt_resp *r);
void rt_resp_free(rt_resp *r);
/* GET url until 200 or timeout (scaled). */
bool rt_wait_http_ok(const char *url, int64_t timeout_ms);

/* POST /v1/chat/completions with body; convenience over rt_http. */
bool rt_post_chat(rt_stack *s, rt_resp *r, const char *body, const char *const headers[]);
/* GET /v1/requests/<id>[?query] parsed; NULL on failure. */
json_t *rt_get_request(rt_stack *s, const char *id, const char *query);
/* The record's status string ("completed"...), "" when unreadable. */
const char *rt_request_status(rt_stack *s, const char *id, char *buf, size_t n);
/* A record status string that no transition leaves ("completed", "failed", ...). */
bool rt_status_terminal(const char *status);
/* Polls GET until the status is terminal or timeout; returns the final JSON. */
json_t *rt_wait_terminal(rt_stack *s, const char *id, int64_t timeout_ms);
/* GET <mock>/mock/stats parsed; NULL on failure; caller decrefs. */
json_t *rt_mock_stats(rt_stack *s);
/* The mock's call count for a request id, and its total. -1 on error. */
long rt_mock_calls(rt_stack *s, const char *id);
long rt_mock_total(rt_stack *s);
/* Client disconnects the mock saw for held calls of this id. */
long rt_mock_disconnects(rt_stack *s, const char *id);

/* A JSON string field of obj, or "" */
const char *rt_json_str(json_t *obj, const char *key);

#endif
