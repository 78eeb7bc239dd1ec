/* `make run` (scripts/run.sh) as a newcomer uses it: it prints the ready URL, serves the
 * curl example it prints from the mock, and Ctrl-C (SIGINT to its process group, as a
 * terminal sends it) stops every process it started; a service that dies stops the rest
 * and is named. Runs in a temp dir (run.sh keeps its state in ./.reqrun) on free ports. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RT_SOURCE_DIR
#error "RT_SOURCE_DIR must point at the repository"
#endif

#define MAX_CHILDREN 8

typedef struct run {
    char dir[512];
    char env[4][64];
    int http_port;
    rt_proc script;
    pid_t child[MAX_CHILDREN];
    char child_name[MAX_CHILDREN][32];
    int n_children;
} run;

/* The processes whose parent is the script, with their command names. */
static void find_children(run *r)
{
    r->n_children = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && r->n_children < MAX_CHILDREN) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        fclose(f);
        stat[n] = '\0';
        /* pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')' */
        char *open_paren = strchr(stat, '('), *close_paren = strrchr(stat, ')');
        int ppid = 0;
        char st;
        if (open_paren == NULL || close_paren == NULL ||
            sscanf(close_paren + 1, " %c %d", &st, &ppid) != 2 || ppid != r->script.pid)
            continue;
        int i = r->n_children++;
        r->child[i] = pid;
        snprintf(r->child_name[i], sizeof r->child_name[i], "%.*s",
                 (int)(close_paren - open_paren - 1), open_paren + 1);
    }
    if (d != NULL)
        closedir(d);
}

static pid_t child_named(run *r, const char *name)
{
    for (int i = 0; i < r->n_children; i++) {
        if (strcmp(r->child_name[i], name) == 0)
            return r->child[i];
    }
    return -1;
}

static bool children_gone(run *r)
{
    for (int i = 0; i < r->n_children; i++) {
        if (kill(r->child[i], 0) == 0 || errno != ESRCH)
            return false;
    }
    return true;
}

static void run_start(run *r)
{
    memset(r, 0, sizeof *r);
    rt_tmpdir(r->dir, sizeof r->dir, "reqrun-makerun");
    r->http_port = rt_free_port();
    snprintf(r->env[0], sizeof r->env[0], "REQRUN_NATS_PORT=%d", rt_free_port());
    snprintf(r->env[1], sizeof r->env[1], "REQRUN_LISTEN=127.0.0.1:%d", r->http_port);
    snprintf(r->env[2], sizeof r->env[2], "REQRUN_EXECUTOR_LISTEN=127.0.0.1:%d", rt_free_port());
    snprintf(r->env[3], sizeof r->env[3], "REQRUN_MOCK_LISTEN=127.0.0.1:%d", rt_free_port());
    char *env[] = {r->env[0], r->env[1], r->env[2], r->env[3], NULL};
    /* setsid: the script leads its own process group, as a shell's foreground job does */
    char *argv[] = {"setsid", "bash", RT_SOURCE_DIR "/scripts/run.sh", RT_BIN_DIR "/..", NULL};
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(r->dir), 0); /* run.sh keeps its state in ./.reqrun */
    assert_true(rt_proc_start(&r->script, "run", argv, env, r->dir, false));
    assert_int_equal(chdir(cwd), 0);

    char ready[96];
    snprintf(ready, sizeof ready, "ReqRun is ready on http://127.0.0.1:%d", r->http_port);
    bool ok;
    RT_POLL(ok, rt_proc_log_count(&r->script, ready) == 1 || !rt_proc_alive(&r->script), 60000);
    if (rt_proc_log_count(&r->script, ready) != 1) {
        rt_proc_dump_log(&r->script, 30);
        fail_msg("run.sh did not print \"%s\"", ready);
    }
    find_children(r);
    if (r->n_children != 4) {
        for (int i = 0; i < r->n_children; i++)
            fprintf(stderr, "child %d: %s\n", (int)r->child[i], r->child_name[i]);
        fail_msg("run.sh has %d child processes, not 4", r->n_children);
    }
    const char *names[] = {"nats-server", "reqrun-mockllm", "reqrun-executor", "reqrun-ingress"};
    for (int i = 0; i < 4; i++) {
        if (child_named(r, names[i]) < 0)
            fail_msg("run.sh did not start %s", names[i]);
    }
}

/* Per test, also after a failed assertion: nothing the test started outlives it. */
static run current;

static int teardown(void **state)
{
    (void)state;
    run *r = &current;
    if (r->script.pid > 0) {
        find_children(r);
        rt_proc_stop(&r->script, SIGKILL, 5000);
    }
    for (int i = 0; i < r->n_children; i++)
        kill(r->child[i], SIGKILL);
    if (r->dir[0] != '\0')
        rt_rmdir(r->dir);
    memset(r, 0, sizeof *r);
    return 0;
}

static void run_finish(run *r)
{
    if (!children_gone(r)) {
        for (int i = 0; i < r->n_children; i++)
            kill(r->child[i], SIGKILL);
        rt_proc_dump_log(&r->script, 30);
        fail_msg("a process run.sh started outlived it");
    }
}

static void test_serves_the_printed_example_and_ctrl_c_stops_everything(void **state)
{
    (void)state;
    run *r = &current;
    run_start(r);

    /* the example run.sh prints, as printed */
    assert_int_equal(rt_proc_log_count(&r->script, "\"content\":\"Hello\"}],\"wait\":true}'"), 1);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", r->http_port);
    const char *headers[] = {"Content-Type: application/json", NULL};
    rt_resp resp;
    assert_true(rt_http(&resp, "POST", url,
                        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"Hello\"}],\"wait\":true}",
                        headers, 30000));
    assert_int_equal(resp.status, 200);
    char id[64];
    assert_non_null(rt_resp_header(&resp, "X-ReqRun-Request-Id", id, sizeof id));
    json_t *body = rt_resp_json(&resp);
    assert_non_null(body);
    assert_string_equal(rt_json_str(body, "object"), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message");
    assert_string_equal(rt_json_str(msg, "content"), "mock reply to: Hello");
    json_decref(body);
    rt_resp_free(&resp);

    /* Ctrl-C: the terminal signals the foreground process group */
    int64_t t0 = rt_now_ms();
    assert_int_equal(kill(-r->script.pid, SIGINT), 0);
    int status = rt_proc_stop(&r->script, 0, 60000);
    fprintf(stderr, "run.sh stopped everything %lld ms after Ctrl-C\n",
            (long long)(rt_now_ms() - t0));
    assert_int_equal(status, 130);
    assert_int_equal(rt_proc_log_count(&r->script, "stopped"), 1);
    assert_int_equal(rt_proc_log_count(&r->script, "exited with status"), 0);
    /* in order: the ingress had stopped, NATS connection closed by itself, before
     * nats-server went (all at once, it logs the lost connection) */
    rt_proc ingress = {0};
    snprintf(ingress.log_path, sizeof ingress.log_path, "%.440s/.reqrun/logs/reqrun-ingress.log",
             r->dir);
    assert_int_equal(rt_proc_log_count(&ingress, "reqrun-ingress stopped"), 1);
    assert_int_equal(rt_proc_log_count(&ingress, "nats disconnected"), 0);
    run_finish(r);
}

static void test_a_service_that_dies_stops_the_rest(void **state)
{
    (void)state;
    run *r = &current;
    run_start(r);
    pid_t executor = child_named(r, "reqrun-executor");
    assert_int_equal(kill(executor, SIGKILL), 0);
    int status = rt_proc_stop(&r->script, 0, 60000);
    assert_int_equal(status, 1);
    assert_int_equal(rt_proc_log_count(&r->script, "reqrun-executor exited with status 137"), 1);
    run_finish(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_serves_the_printed_example_and_ctrl_c_stops_everything,
                                  teardown),
        cmocka_unit_test_teardown(test_a_service_that_dies_stops_the_rest, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
