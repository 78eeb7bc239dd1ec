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

#include <curl/curl.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double pct_ms(const int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return -1;
    size_t rank = (size_t)((p * (double)n) + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e6;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (on_body(chunk, 1, n, &b) != n)
            break;
    fclose(f);
    *len = b.len;
    return b.p != NULL ? b.p : strdup("");
}

static void usage(void)
{
    fprintf(stderr, "usage: serial -u URL [-X METHOD] [-d BODY | -D FILE] [-H 'Name: value']... "
                    "[-n N] [-w WARMUP] [-e SUBSTRING] [-T TIMEOUT_S]\n");
}

/* One request; returns 1 when it succeeded. */
static int one(CURL *h, buf *body, const char *expect, long *status, char *err)
{
    body->len = 0;
    if (body->p != NULL)
        body->p[0] = '\0';
    err[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK)
        return 0;
    if (*status < 200 || *status > 299)
        return 0;
    if (expect != NULL && (body->p == NULL || strstr(body->p, expect) == NULL))
        return 0;
    return 1;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *method = NULL, *expect = NULL;
    char *data = NULL;
    size_t data_len = 0;
    long n = 2000, warmup = 50, timeout_s = 30;
    struct curl_slist *hdrs = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "-u") == 0) {
            url = v;
        } else if (strcmp(a, "-X") == 0) {
            method = v;
        } else if (strcmp(a, "-d") == 0) {
            free(data);
            data = strdup(v);
            data_len = strlen(v);
        } else if (strcmp(a, "-D") == 0) {
            free(data);
            data = read_file(v, &data_len);
            if (data == NULL) {
                perror(v);
                return 2;
            }
        } else if (strcmp(a, "-H") == 0) {
            hdrs = curl_slist_append(hdrs, v);
        } else if (strcmp(a, "-n") == 0) {
            n = strtol(v, NULL, 10);
        } else if (strcmp(a, "-w") == 0) {
            warmup = strtol(v, NULL, 10);
        } else if (strcmp(a, "-e") == 0) {
            expect = v;
        } else if (strcmp(a, "-T") == 0) {
            timeout_s = strtol(v, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    if (url == NULL || n < 1 || warmup < 0) {
        usage();
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    buf body = {0};
    char err[CURL_ERROR_SIZE];
    if (data != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (data != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)data_len);
    }
    if (method != NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    long status = 0, failures = 0;
    for (long i = 0; i < warmup; i++)
        (void)one(h, &body, expect, &status, err);

    int64_t *lat = calloc((size_t)n, sizeof *lat);
    size_t ok = 0;
    long connects = 0;
    int64_t t_start = now_ns();
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        int good = one(h, &body, expect, &status, err);
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

    qsort(lat, ok, sizeof *lat, cmp_i64);
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
    free(data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return failures == 0 ? 0 : 1;
}
