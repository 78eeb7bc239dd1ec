/* Test harness implementation: processes, nats-server, the stack, HTTP over libcurl. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NATS_SERVER "/usr/sbin/nats-server"

/* ---- time ---- */

double rt_time_scale(void)
{
    const char *v = getenv("REQRUN_TEST_TIME_SCALE");
    double s = v != NULL ? atof(v) : 1.0;
    return s >= 1.0 ? s : 1.0;
}

int64_t rt_ms(int64_t ms)
{
    return (int64_t)((double)ms * rt_time_scale());
}

int64_t rt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rt_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- files and ports ---- */

int rt_free_port(void)
{
    /* Ports handed out by this process are not handed out twice. */
    static int used[256];
    static int n_used;
    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
            close(fd);
            continue;
        }
        close(fd);
        int port = ntohs(sa.sin_port);
        bool seen = false;
        for (int i = 0; i < n_used; i++)
            seen |= used[i] == port;
        if (seen)
            continue;
        if (n_used < 256)
            used[n_used++] = port;
        return port;
    }
    return -1;
}

void rt_tmpdir(char *out, size_t outlen, const char *prefix)
{
    snprintf(out, outlen, "/tmp/%s.XXXXXX", prefix);
    if (mkdtemp(out) == NULL)
        out[0] = '\0';
}

void rt_rmdir(const char *path)
{
    if (path[0] == '\0' || strncmp(path, "/tmp/", 5) != 0)
        return;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    int rc = system(cmd);
    (void)rc;
}

bool rt_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* ---- processes ---- */

static int env_name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq != NULL ? (int)(eq - kv) : (int)strlen(kv);
}

bool rt_proc_start(rt_proc *p, const char *name, char *const argv[], char *const env[],
                   const char *log_dir, bool wrap)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log_path, sizeof p->log_path, "%s/%s.log", log_dir, name);

    /* argv, possibly behind the wrapper command (split on spaces) */
    char *args[64];
    int n = 0;
    char wrapbuf[512] = "";
    const char *w = wrap ? getenv("REQRUN_TEST_SERVICE_WRAP") : NULL;
    if (w != NULL && w[0] != '\0') {
        snprintf(wrapbuf, sizeof wrapbuf, "%s", w);
        for (char *tok = strtok(wrapbuf, " "); tok != NULL && n < 40; tok = strtok(NULL, " "))
            args[n++] = tok;
    }
    for (int i = 0; argv[i] != NULL && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    /* environment: ours, overridden by env */
    char *envp[1024];
    int m = 0;
    for (char **e = environ; *e != NULL && m < 900; e++) {
        bool overridden = false;
        for (int i = 0; env != NULL && env[i] != NULL; i++) {
            int l = env_name_len(env[i]);
            if (env_name_len(*e) == l && strncmp(*e, env[i], (size_t)l) == 0)
                overridden = true;
        }
        if (!overridden)
            envp[m++] = *e;
    }
    for (int i = 0; env != NULL && env[i] != NULL && m < 1023; i++)
        envp[m++] = env[i];
    envp[m] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvpe(args[0], args, envp); /* PATH lookup: the wrapper may be "valgrind ..." */
        fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->exit_status = -1;
    return true;
}

bool rt_proc_alive(rt_proc *p)
{
    if (p->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        p->pid = 0;
        return false;
    }
    return true;
}

void rt_proc_signal(rt_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

int rt_proc_stop(rt_proc *p, int sig, int64_t timeout_ms)
{
    if (p->pid <= 0)
        return p->exit_status;
    if (sig != 0)
        kill(p->pid, sig);
    int64_t until = rt_now_ms() + rt_ms(timeout_ms);
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (rt_now_ms() > until) {
            fprintf(stderr, "harness: %s did not exit in time: SIGKILL\n", p->name);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->exit_status = 128 + SIGKILL;
            break;
        }
        rt_sleep_ms(10);
    }
    p->pid = 0;
    return p->exit_status;
}

void rt_proc_dump_log(const rt_proc *p, int lines)
{
    char cmd[700];
    fprintf(stderr, "---- %s (%s) ----\n", p->name, p->log_path);
    snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", lines, p->log_path);
    int rc = system(cmd);
    (void)rc;
}

int rt_proc_log_count(const rt_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    if (f == NULL)
        return 0;
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* ---- nats-server ---- */

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static bool nats_launch(rt_nats *n, const char *routes)
{
    char conf[600], text[2048];
    snprintf(conf, sizeof conf, "%s/nats.conf", n->dir);
    int len = snprintf(text, sizeof text,
                       "listen: 127.0.0.1:%d\nmax_payload: 8MB\nserver_name: n%d\n"
                       "jetstream { store_dir: \"%s/store\" }\n",
                       n->port, n->port, n->dir);
    if (routes != NULL)
        snprintf(text + len, sizeof text - (size_t)len,
                 "cluster { name: rrtest, listen: 127.0.0.1:%d, routes: [%s] }\n",
                 n->cluster_port, routes);
    if (!rt_write_file(conf, text))
        return false;
    char *argv[] = {NATS_SERVER, "-c", conf, NULL};
    if (!rt_proc_start(&n->proc, "nats", argv, NULL, n->dir, false))
        return false;
    bool ok;
    RT_POLL(ok, port_open(n->port), 10000);
    return ok;
}

bool rt_nats_start(rt_nats *n, const char *dir)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    mkdir(n->dir, 0755);
    n->port = rt_free_port();
    n->cluster_port = 0;
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    if (!nats_launch(n, NULL))
        return false;
    bool ok;
    RT_POLL(ok, rt_js_ready(n->url), 10000);
    return ok;
}

bool rt_nats_restart(rt_nats *n)
{
    /* same conf file: same port, store and (for a cluster node) routes */
    char conf[600];
    snprintf(conf, sizeof conf, "%s/nats.conf", n->dir);
    char *argv[] = {NATS_SERVER, "-c", conf, NULL};
    if (!rt_proc_start(&n->proc, "nats", argv, NULL, n->dir, false))
        return false;
    bool ok;
    RT_POLL(ok, port_open(n->port), 10000);
    return ok;
}

void rt_nats_stop(rt_nats *n, int sig)
{
    rt_proc_stop(&n->proc, sig, 10000);
}

/* JetStream answers an account info request: the meta group has a leader. */
bool rt_js_ready(const char *urls)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    /* the list is comma-separated: natsConnection_ConnectTo splits it, SetURL does not */
    bool ok = natsConnection_ConnectTo(&nc, urls) == NATS_OK &&
              natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
              js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return ok;
}

bool rt_cluster_start(rt_cluster *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    int cports[RT_CLUSTER_NODES];
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        rt_nats *n = &c->node[i];
        snprintf(n->dir, sizeof n->dir, "%s/node%d", dir, i);
        mkdir(n->dir, 0755);
        n->port = rt_free_port();
        cports[i] = n->cluster_port = rt_free_port();
        snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    }
    char cluster_routes[RT_CLUSTER_NODES][512];
    size_t used = 0;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        cluster_routes[i][0] = '\0';
        size_t l = 0;
        for (int j = 0; j < RT_CLUSTER_NODES; j++) {
            if (j != i)
                l += (size_t)snprintf(cluster_routes[i] + l, sizeof cluster_routes[i] - l,
                                      "%snats-route://127.0.0.1:%d", l ? ", " : "", cports[j]);
        }
        used += (size_t)snprintf(c->urls + used, sizeof c->urls - used, "%s%s", i ? "," : "",
                                 c->node[i].url);
    }
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        if (!nats_launch(&c->node[i], cluster_routes[i]))
            return false;
    }
    bool ok;
    RT_POLL(ok, rt_js_ready(c->urls), 30000);
    return ok;
}

bool rt_cluster_restart_node(rt_cluster *c, int i)
{
    return rt_nats_restart(&c->node[i]);
}

void rt_cluster_stop(rt_cluster *c)
{
    for (int i = 0; i < RT_CLUSTER_NODES; i++)
        rt_nats_stop(&c->node[i], SIGTERM);
}

/* ---- the stack ---- */

static char *env_kv(const char *k, const char *v)
{
    size_t n = strlen(k) + strlen(v) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s=%s", k, v);
    return s;
}

static char *env_kv_port(const char *k, int port)
{
    char v[32];
    snprintf(v, sizeof v, "127.0.0.1:%d", port);
    return env_kv(k, v);
}

/* The stack's env plus extra (extra wins). Returned array is malloc'd, strings borrowed. */
static char **merged_env(rt_stack *s, char *const extra[], char *own)
{
    char **out = calloc(RT_MAX_ENV * 2 + 8, sizeof *out);
    int n = 0;
    for (int i = 0; s->env[i] != NULL; i++)
        out[n++] = s->env[i];
    if (own != NULL)
        out[n++] = own;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        out[n++] = extra[i];
    /* later entries override earlier ones of the same name: drop the earlier */
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n && out[i] != NULL; j++) {
            int l = env_name_len(out[i]);
            if (out[j] != NULL && env_name_len(out[j]) == l &&
                strncmp(out[i], out[j], (size_t)l) == 0)
                out[i] = NULL;
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] != NULL)
            out[m++] = out[i];
    }
    out[m] = NULL;
    return out;
}

bool rt_stack_start_executor(rt_stack *s, int i, char *const extra[])
{
    char name[32];
    snprintf(name, sizeof name, "executor%d", i);
    if (s->executor_port[i] == 0)
        s->executor_port[i] = rt_free_port();
    char *own = env_kv_port("REQRUN_EXECUTOR_LISTEN", s->executor_port[i]);
    char inst[64];
    snprintf(inst, sizeof inst, "REQRUN_INSTANCE_ID=test-executor-%d-%ld", i, (long)rt_now_ms());
    char *extra2[RT_MAX_ENV + 2];
    int n = 0;
    extra2[n++] = inst;
    for (int k = 0; extra != NULL && extra[k] != NULL && n < RT_MAX_ENV; k++)
        extra2[n++] = extra[k];
    extra2[n] = NULL;
    char **env = merged_env(s, extra2, own);
    char *argv[] = {RT_BIN_DIR "/reqrun-executor", NULL};
    bool ok = rt_proc_start(&s->executor[i], name, argv, env, s->dir, s->wrap);
    free(env);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", s->executor_port[i]);
    ok = ok && rt_wait_http_ok(url, 30000);
    free(own);
    if (i >= s->n_executors)
        s->n_executors = i + 1;
    return ok;
}

bool rt_stack_start_ingress(rt_stack *s, char *const extra[])
{
    char **env = merged_env(s, extra, NULL);
    char *argv[] = {RT_BIN_DIR "/reqrun-ingress", NULL};
    bool ok = rt_proc_start(&s->ingress, "ingress", argv, env, s->dir, s->wrap);
    free(env);
    char url[96];
    snprintf(url, sizeof url, "%s/readyz", s->base);
    return ok && rt_wait_http_ok(url, 30000);
}

static bool stack_start(rt_stack *s, const rt_stack_opts *o)
{
    memset(s, 0, sizeof *s);
    rt_tmpdir(s->dir, sizeof s->dir, "reqrun-test");
    s->wrap = !o->no_wrap;
    s->is_cluster = o->cluster;
    char sub[600];
    if (o->cluster) {
        if (!rt_cluster_start(&s->cluster, s->dir))
            return false;
        snprintf(s->nats_url, sizeof s->nats_url, "%s", s->cluster.urls);
    } else {
        snprintf(sub, sizeof sub, "%s/nats", s->dir);
        if (!rt_nats_start(&s->nats, sub))
            return false;
        snprintf(s->nats_url, sizeof s->nats_url, "%s", s->nats.url);
    }
    s->ingress_port = rt_free_port();
    s->mock_port = rt_free_port();
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->ingress_port);
    snprintf(s->mock_base, sizeof s->mock_base, "http://127.0.0.1:%d", s->mock_port);

    int n = 0;
    s->env[n++] = env_kv("REQRUN_NATS_URL", s->nats_url);
    s->env[n++] = env_kv_port("REQRUN_LISTEN", s->ingress_port);
    s->env[n++] = env_kv_port("REQRUN_MOCK_LISTEN", s->mock_port);
    char up[96];
    snprintf(up, sizeof up, "%s/v1", s->mock_base);
    s->env[n++] = env_kv("REQRUN_UPSTREAM_URL", up);
    /* REQRUN_TEST_HTTP_THREADS: fewer workers where threads are dear (valgrind) */
    const char *threads = getenv("REQRUN_TEST_HTTP_THREADS");
    s->env[n++] = env_kv("REQRUN_HTTP_THREADS", threads != NULL ? threads : "256");
    s->env[n++] = env_kv("REQRUN_SHUTDOWN_DELAY_S", "0");
    if (o->cluster)
        s->env[n++] = env_kv("REQRUN_REPLICAS", "3");
    for (int i = 0; o->env[i] != NULL && n < RT_MAX_ENV + 8; i++)
        s->env[n++] = strdup(o->env[i]);
    s->env[n] = NULL;

    char **env = merged_env(s, NULL, NULL);
    char *margv[] = {RT_BIN_DIR "/reqrun-mockllm", NULL};
    bool ok = rt_proc_start(&s->mock, "mockllm", margv, env, s->dir, s->wrap);
    free(env);
    char url[96];
    snprintf(url, sizeof url, "%s/healthz", s->mock_base);
    if (!ok || !rt_wait_http_ok(url, 10000))
        return false;
    int execs = o->executors > 0 ? o->executors : 1;
    for (int i = 0; i < execs; i++) {
        if (!rt_stack_start_executor(s, i, NULL))
            return false;
    }
    return rt_stack_start_ingress(s, NULL);
}

bool rt_stack_start(rt_stack *s, const rt_stack_opts *o)
{
    if (stack_start(s, o))
        return true;
    rt_stack_dump_logs(s);
    return false;
}

bool rt_stack_stop(rt_stack *s)
{
    bool clean = true;
    int64_t t = 30000;
    int st = rt_proc_stop(&s->ingress, SIGTERM, t);
    if (st != 0 && st != -1) {
        fprintf(stderr, "harness: ingress exited with %d\n", st);
        clean = false;
    }
    for (int i = 0; i < s->n_executors; i++) {
        st = rt_proc_stop(&s->executor[i], SIGTERM, t);
        if (st != 0 && st != -1 && st != 128 + SIGKILL) {
            fprintf(stderr, "harness: executor%d exited with %d\n", i, st);
            clean = false;
        }
    }
    st = rt_proc_stop(&s->mock, SIGTERM, t);
    if (st != 0 && st != -1) {
        fprintf(stderr, "harness: mockllm exited with %d\n", st);
        clean = false;
    }
    if (s->is_cluster)
        rt_cluster_stop(&s->cluster);
    else
        rt_nats_stop(&s->nats, SIGTERM);
    if (!clean)
        rt_stack_dump_logs(s);
    for (int i = 0; s->env[i] != NULL; i++)
        free(s->env[i]);
    if (clean && getenv("REQRUN_TEST_KEEP") == NULL)
        rt_rmdir(s->dir);
    else
        fprintf(stderr, "harness: logs kept in %s\n", s->dir);
    return clean;
}

void rt_stack_dump_logs(rt_stack *s)
{
    rt_proc_dump_log(&s->ingress, 40);
    for (int i = 0; i < s->n_executors; i++)
        rt_proc_dump_log(&s->executor[i], 40);
    rt_proc_dump_log(&s->mock, 10);
}

/* ---- HTTP ---- */

typedef struct growbuf {
    char *data;
    size_t len;
} growbuf;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    growbuf *b = ud;
    size_t n = size * nmemb;
    char *g = realloc(b->data, b->len + n + 1);
    if (g == NULL)
        return 0;
    memcpy(g + b->len, p, n);
    b->len += n;
    g[b->len] = '\0';
    b->data = g;
    return n;
}

bool rt_http(rt_resp *r, const char *method, const char *url, const char *body,
             const char *const headers[], long timeout_ms)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return false;
    growbuf b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    for (int i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rt_ms(timeout_ms));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    double t = 0;
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
    r->total_ms = t * 1000.0;
    r->body = b.data != NULL ? b.data : strdup("");
    r->len = b.len;
    r->headers = h.data != NULL ? h.data : strdup("");
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK;
}

const char *rt_resp_header(const rt_resp *r, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line != NULL && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - line);
            snprintf(buf, n, "%.*s", (int)vl, v);
            return buf;
        }
        line = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

json_t *rt_resp_json(const rt_resp *r)
{
    return json_loadb(r->body, r->len, 0, NULL);
}

void rt_resp_free(rt_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

bool rt_wait_http_ok(const char *url, int64_t timeout_ms)
{
    int64_t until = rt_now_ms() + rt_ms(timeout_ms);
    while (rt_now_ms() < until) {
        rt_resp r;
        bool ok = rt_http(&r, "GET", url, NULL, NULL, 2000) && r.status == 200;
        rt_resp_free(&r);
        if (ok)
            return true;
        rt_sleep_ms(50);
    }
    return false;
}

bool rt_post_chat(rt_stack *s, rt_resp *r, const char *body, const char *const headers[])
{
    char url[128];
    snprintf(url, sizeof url, "%s/v1/chat/completions", s->base);
    return rt_http(r, "POST", url, body, headers, 150000);
}

json_t *rt_get_request(rt_stack *s, const char *id, const char *query)
{
    char url[256];
    snprintf(url, sizeof url, "%s/v1/requests/%s%s%s", s->base, id, query ? "?" : "",
             query ? query : "");
    rt_resp r;
    json_t *j = NULL;
    if (rt_http(&r, "GET", url, NULL, NULL, 150000) && r.status == 200)
        j = rt_resp_json(&r);
    rt_resp_free(&r);
    return j;
}

const char *rt_json_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v != NULL ? v : "";
}

const char *rt_request_status(rt_stack *s, const char *id, char *buf, size_t n)
{
    json_t *j = rt_get_request(s, id, NULL);
    snprintf(buf, n, "%s", rt_json_str(j, "status"));
    json_decref(j);
    return buf;
}

bool rt_status_terminal(const char *st)
{
    return strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
           strcmp(st, "cancelled") == 0 || strcmp(st, "expired") == 0;
}

json_t *rt_wait_terminal(rt_stack *s, const char *id, int64_t timeout_ms)
{
    int64_t until = rt_now_ms() + rt_ms(timeout_ms);
    json_t *j = NULL;
    while (rt_now_ms() < until) {
        json_decref(j);
        j = rt_get_request(s, id, "include=attempts");
        if (j != NULL && rt_status_terminal(rt_json_str(j, "status")))
            return j;
        rt_sleep_ms(50);
    }
    return j;
}

json_t *rt_mock_stats(rt_stack *s)
{
    char url[128];
    snprintf(url, sizeof url, "%s/mock/stats", s->mock_base);
    rt_resp r;
    json_t *j = NULL;
    if (rt_http(&r, "GET", url, NULL, NULL, 10000) && r.status == 200)
        j = rt_resp_json(&r);
    rt_resp_free(&r);
    return j;
}

long rt_mock_calls(rt_stack *s, const char *id)
{
    json_t *j = rt_mock_stats(s);
    if (j == NULL)
        return -1;
    long n = (long)json_integer_value(json_object_get(json_object_get(j, "calls"), id));
    json_decref(j);
    return n;
}

long rt_mock_total(rt_stack *s)
{
    json_t *j = rt_mock_stats(s);
    if (j == NULL)
        return -1;
    long n = (long)json_integer_value(json_object_get(j, "total"));
    json_decref(j);
    return n;
}

long rt_mock_disconnects(rt_stack *s, const char *id)
{
    json_t *j = rt_mock_stats(s);
    if (j == NULL)
        return -1;
    long n = (long)json_integer_value(json_object_get(json_object_get(j, "disconnects"), id));
    json_decref(j);
    return n;
}
