/* Unit tests of metrics.c: the Prometheus text rendering (HELP/TYPE, labels, cumulative
 * histogram buckets, exact values), thread-safe counting, and `promtool check metrics`
 * on the output when promtool is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/metrics.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The value of the sample line that starts with exactly `series` followed by a space;
 * fails the test when there is none or more than one. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *found = NULL;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        assert_non_null(eol); /* every line ends with \n */
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            if (found != NULL)
                fail_msg("series %s appears twice", series);
            found = line + n + 1;
        }
        line = eol + 1;
    }
    if (found == NULL)
        fail_msg("series %s not found in:\n%s", series, text);
    char *end = NULL;
    double v = strtod(found, &end);
    assert_true(end != found && *end == '\n');
    return v;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

static double g_value(void *ctx)
{
    return *(const double *)ctx;
}

static const double BOUNDS[] = {0.005, 0.01, 0.1, 1, 10};

/* A registry like the services' (names follow Prometheus conventions). */
static rr_metrics *build(double *gauge_v, double *counter_v)
{
    rr_metrics *m = rr_metrics_new();
    assert_non_null(m);
    rr_counter *plain = rr_metrics_counter(m, "rr_test_plain_total", "A counter without labels",
                                           NULL);
    rr_counter *one =
        rr_metrics_counter(m, "rr_test_attempts_total", "Attempts by outcome", "outcome");
    rr_counter *two = rr_metrics_counter(m, "rr_test_http_requests_total",
                                         "HTTP requests by route and code", "route,code");
    rr_metrics_counter(m, "rr_test_untouched_total", "A labelled counter never added to",
                       "reason");
    rr_metrics_gauge_fn(m, "rr_test_in_flight", "Calls in flight now", g_value, gauge_v);
    rr_metrics_counter_fn(m, "rr_test_reconnects_total", "Reconnections", g_value, counter_v);
    rr_histogram *h = rr_metrics_histogram(m, "rr_test_duration_seconds", "Durations", BOUNDS,
                                           sizeof BOUNDS / sizeof BOUNDS[0]);
    rr_counter_add(plain, NULL, NULL, 3);
    rr_counter_add(one, "success", NULL, 1);
    rr_counter_add(one, "retryable", NULL, 2);
    rr_counter_add(one, "success", NULL, 4);
    rr_counter_add(two, "chat", "200", 7);
    rr_counter_add(two, "chat", "400", 1);
    rr_counter_add(two, "get", "200", 2);
    static const double obs[] = {0.001, 0.005, 0.007, 0.05, 0.5, 0.5, 5, 50, 0};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        rr_histogram_observe(h, obs[i]);
    return m;
}

static void test_render(void **state)
{
    (void)state;
    double gauge_v = 3, counter_v = 2;
    rr_metrics *m = build(&gauge_v, &counter_v);
    size_t len = 0;
    char *text = rr_metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);

    /* HELP and TYPE for every family */
    assert_true(has_line(text, "# HELP rr_test_plain_total A counter without labels"));
    assert_true(has_line(text, "# TYPE rr_test_plain_total counter"));
    assert_true(has_line(text, "# TYPE rr_test_attempts_total counter"));
    assert_true(has_line(text, "# TYPE rr_test_http_requests_total counter"));
    assert_true(has_line(text, "# TYPE rr_test_untouched_total counter"));
    assert_true(has_line(text, "# HELP rr_test_in_flight Calls in flight now"));
    assert_true(has_line(text, "# TYPE rr_test_in_flight gauge"));
    assert_true(has_line(text, "# TYPE rr_test_reconnects_total counter"));
    assert_true(has_line(text, "# TYPE rr_test_duration_seconds histogram"));
    /* TYPE comes right after its HELP, before the samples */
    const char *help = strstr(text, "# HELP rr_test_attempts_total ");
    const char *type = strstr(text, "# TYPE rr_test_attempts_total ");
    const char *first = strstr(text, "rr_test_attempts_total{");
    assert_true(help != NULL && type != NULL && first != NULL && help < type && type < first);

    /* counters */
    assert_true(sample(text, "rr_test_plain_total") == 3);
    assert_true(sample(text, "rr_test_attempts_total{outcome=\"success\"}") == 5);
    assert_true(sample(text, "rr_test_attempts_total{outcome=\"retryable\"}") == 2);
    assert_true(sample(text, "rr_test_http_requests_total{route=\"chat\",code=\"200\"}") == 7);
    assert_true(sample(text, "rr_test_http_requests_total{route=\"chat\",code=\"400\"}") == 1);
    assert_true(sample(text, "rr_test_http_requests_total{route=\"get\",code=\"200\"}") == 2);
    assert_null(strstr(text, "rr_test_untouched_total{"));
    assert_true(sample(text, "rr_test_in_flight") == 3);
    assert_true(sample(text, "rr_test_reconnects_total") == 2);

    /* histogram: cumulative, le inclusive, then +Inf, _sum and _count */
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"0.005\"}") == 3);
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"0.01\"}") == 4);
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"0.1\"}") == 5);
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"1\"}") == 7);
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"10\"}") == 8);
    assert_true(sample(text, "rr_test_duration_seconds_bucket{le=\"+Inf\"}") == 9);
    assert_true(sample(text, "rr_test_duration_seconds_count") == 9);
    double sum = sample(text, "rr_test_duration_seconds_sum");
    assert_true(sum > 56.063 - 1e-9 && sum < 56.063 + 1e-9);
    /* the buckets come in ascending order, +Inf last */
    const char *b1 = strstr(text, "le=\"0.005\"");
    const char *b2 = strstr(text, "le=\"10\"");
    const char *binf = strstr(text, "le=\"+Inf\"");
    assert_true(b1 != NULL && b2 != NULL && binf != NULL && b1 < b2 && b2 < binf);

    /* a later render sees later values (gauges are read at scrape time) */
    free(text);
    gauge_v = 11;
    text = rr_metrics_render(m, &len);
    assert_non_null(text);
    assert_true(sample(text, "rr_test_in_flight") == 11);
    free(text);
    rr_metrics_destroy(m);
    rr_metrics_destroy(NULL);
}

/* Values are rendered exactly: a gauge of 1234567 is not "1.23457e+06". */
static void test_exact_values(void **state)
{
    (void)state;
    double g = 1234567, c = 9007199254740992.0 /* 2^53 */, frac = 0.1;
    rr_metrics *m = rr_metrics_new();
    assert_non_null(m);
    rr_metrics_gauge_fn(m, "rr_test_pending", "Pending", g_value, &g);
    rr_metrics_counter_fn(m, "rr_test_big_total", "Big", g_value, &c);
    rr_metrics_gauge_fn(m, "rr_test_fraction", "Fraction", g_value, &frac);
    static const double bounds[] = {0.0025, 1234567};
    rr_histogram *h = rr_metrics_histogram(m, "rr_test_size_bytes", "Sizes", bounds, 2);
    rr_histogram_observe(h, 1e-7);
    rr_histogram_observe(h, 1234567);
    rr_counter *big = rr_metrics_counter(m, "rr_test_bytes_total", "Bytes", NULL);
    rr_counter_add(big, NULL, NULL, 123456789012ULL);
    size_t len;
    char *text = rr_metrics_render(m, &len);
    assert_non_null(text);
    assert_true(sample(text, "rr_test_pending") == 1234567);
    assert_true(sample(text, "rr_test_big_total") == 9007199254740992.0);
    assert_true(sample(text, "rr_test_fraction") == 0.1);
    assert_true(sample(text, "rr_test_size_bytes_bucket{le=\"0.0025\"}") == 1);
    assert_true(sample(text, "rr_test_size_bytes_bucket{le=\"1234567\"}") == 2);
    assert_true(sample(text, "rr_test_size_bytes_sum") == 1e-7 + 1234567);
    assert_true(sample(text, "rr_test_bytes_total") == 123456789012.0);
    free(text);
    rr_metrics_destroy(m);
}

/* Label values and HELP text are escaped as the exposition format requires. */
static void test_escaping(void **state)
{
    (void)state;
    rr_metrics *m = rr_metrics_new();
    assert_non_null(m);
    rr_counter *c = rr_metrics_counter(m, "rr_test_reasons_total", "Reasons: a\\b\nc", "reason");
    rr_counter_add(c, "say \"hi\"", NULL, 1);
    rr_counter_add(c, "back\\slash", NULL, 2);
    rr_counter_add(c, "two\nlines", NULL, 3);
    size_t len;
    char *text = rr_metrics_render(m, &len);
    assert_non_null(text);
    assert_true(has_line(text, "# HELP rr_test_reasons_total Reasons: a\\\\b\\nc"));
    assert_true(sample(text, "rr_test_reasons_total{reason=\"say \\\"hi\\\"\"}") == 1);
    assert_true(sample(text, "rr_test_reasons_total{reason=\"back\\\\slash\"}") == 2);
    assert_true(sample(text, "rr_test_reasons_total{reason=\"two\\nlines\"}") == 3);
    free(text);
    rr_metrics_destroy(m);
}

typedef struct adder {
    rr_counter *c;
    rr_histogram *h;
} adder;

static void *add_many(void *arg)
{
    adder *a = arg;
    for (int i = 0; i < 20000; i++) {
        rr_counter_add(a->c, i % 2 ? "odd" : "even", NULL, 1);
        rr_histogram_observe(a->h, (double)(i % 3));
    }
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    rr_metrics *m = rr_metrics_new();
    assert_non_null(m);
    static const double bounds[] = {0.5, 1.5};
    adder a = {rr_metrics_counter(m, "rr_test_adds_total", "Adds", "parity"),
               rr_metrics_histogram(m, "rr_test_values", "Values", bounds, 2)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, add_many, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    size_t len;
    char *text = rr_metrics_render(m, &len);
    assert_non_null(text);
    assert_true(sample(text, "rr_test_adds_total{parity=\"odd\"}") == 40000);
    assert_true(sample(text, "rr_test_adds_total{parity=\"even\"}") == 40000);
    assert_true(sample(text, "rr_test_values_count") == 80000);
    assert_true(sample(text, "rr_test_values_bucket{le=\"+Inf\"}") == 80000);
    free(text);
    rr_metrics_destroy(m);
}

static const char *promtool_path(void)
{
    static const char *const paths[] = {"/usr/bin/promtool", "/usr/local/bin/promtool"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    }
    return NULL;
}

/* Runs `promtool check metrics` with text on stdin; returns its exit status. quiet sends
 * its output to /dev/null (for texts expected to fail). */
static int promtool_check(const char *promtool, const char *text, size_t len, bool quiet)
{
    char path[] = "/tmp/rr_test_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open(path, O_RDONLY);
        if (in < 0 || dup2(in, STDIN_FILENO) < 0)
            _exit(126);
        int null = quiet ? open("/dev/null", O_WRONLY) : -1;
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execl(promtool, "promtool", "check", "metrics", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_promtool(void **state)
{
    (void)state;
    const char *promtool = promtool_path();
    if (promtool == NULL) {
        print_message("promtool not installed: skipping the promtool check\n");
        skip();
    }
    double gauge_v = 3, counter_v = 2;
    rr_metrics *m = build(&gauge_v, &counter_v);
    rr_counter *c = rr_metrics_counter(m, "rr_test_reasons_total", "Reasons \\ and\nnewline",
                                       "reason");
    rr_counter_add(c, "say \"hi\"\\\n", NULL, 1);
    double big = 1234567;
    rr_metrics_gauge_fn(m, "rr_test_pending", "Pending", g_value, &big);
    size_t len;
    char *text = rr_metrics_render(m, &len);
    assert_non_null(text);
    int rc = promtool_check(promtool, text, len, false);
    if (rc != 0)
        fail_msg("promtool check metrics exited %d on:\n%s", rc, text);
    free(text);
    rr_metrics_destroy(m);

    /* The check can fail: a text promtool must refuse (sanity of the harness). */
    const char *broken = "# TYPE x_total counter\nx_total{a=\"unterminated} 1\n";
    assert_int_not_equal(promtool_check(promtool, broken, strlen(broken), true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_exact_values),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
