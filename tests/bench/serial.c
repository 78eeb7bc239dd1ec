/* Serial latency probe for tests/bench/run.sh: one client, one reused libcurl easy handle
 * (so one keep-alive connection), N requests back to back, each timed with
 * CLOCK_MONOTONIC from just before curl_easy_perform to just after it returns; prints one
 * JSON line with the percentiles of the successful requests.
 *
 *   serial -u URL [-X METHOD] [-d BODY | -D FILE] [-H 'Name: value']... [-n N] [-w WARMUP]
 *          [-e SUBSTRING] [-T TIMEOUT_S]
 *
 * A request counts as successful when curl reports no error, the status is 2xx and, with
 * -e, the body contains SUBSTRING. Warm-up requests (default 50) open the connection and
 * warm the caches; they are not timed. Percentiles are nearest-rank on the sorted sample.
 * Exit status: 0 when every timed request succeeded, 1 otherwise, 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L

#include "benchlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: serial " BENCH_REQ_USAGE " [-X METHOD] [-n N] [-w WARMUP]\n");
}

/* One request; returns 1 when it succeeded. */
static int one(const bench_req *r, CURL *h, buf *body, long *status, char *err)
{
    body->len = 0;
    if (body->p != NULL)
        body->p[0] = '\0';
    err[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return bench_req_succeeded(r, rc, *status, body);
}

int main(int argc, char **argv)
{
    bench_req req = BENCH_REQ_INIT;
    const char *method = NULL;
    long n = 2000, warmup = 50;

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
        if (strcmp(a, "-X") == 0) {
            method = v;
        } else if (strcmp(a, "-n") == 0) {
            n = strtol(v, NULL, 10);
        } else if (strcmp(a, "-w") == 0) {
            warmup = strtol(v, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (!bench_req_ready(&req) || n < 1 || warmup < 0) {
        usage();
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    buf body = {0};
    char err[CURL_ERROR_SIZE];
    bench_req_apply(&req, h, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    if (method != NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    long status = 0, failures = 0;
    for (long i = 0; i < warmup; i++)
        (void)one(&req, h, &body, &status, err);

    int64_t *lat = calloc((size_t)n, sizeof *lat);
    size_t ok = 0;
    long connects = 0;
    int64_t t_start = now_ns();
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        int good = one(&req, h, &body, &status, err);
        int64_t t1 = now_ns();
        long nc = 0;
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc);
        connects += nc;
        if (good) {
            lat[ok++] = t1 - t0;
        } else if (failures++ < 3) {
            fprintf(stderr, "serial: request %ld failed: status %ld %s body: %.300s\n", i,
                    status, err, body.p != NULL ? body.p : "");
        }
    }
    double wall_s = (double)(now_ns() - t_start) / 1e9;

    sort_ns(lat, ok);
    double sum = 0;
    for (size_t i = 0; i < ok; i++)
        sum += (double)lat[i];
    printf("{\"n\":%ld,\"ok\":%zu,\"errors\":%ld,\"new_connections\":%ld,\"wall_s\":%.3f,"
           "\"min_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
           "\"max_ms\":%.4f,\"mean_ms\":%.4f}\n",
           n, ok, failures, connects, wall_s, ok ? (double)lat[0] / 1e6 : -1,
           pct_ms(lat, ok, 0.50), pct_ms(lat, ok, 0.90), pct_ms(lat, ok, 0.99),
           pct_ms(lat, ok, 0.999), ok ? (double)lat[ok - 1] / 1e6 : -1,
           ok ? sum / (double)ok / 1e6 : -1);

    free(lat);
    free(body.p);
    curl_easy_cleanup(h);
    bench_req_free(&req);
    curl_global_cleanup();
    return failures == 0 ? 0 : 1;
}
