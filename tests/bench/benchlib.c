#define _POSIX_C_SOURCE 200809L

#include "benchlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t buf_append(char *data, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 2048;
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

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(chunk, 1, n, &b) != n)
            break;
    fclose(f);
    *len = b.len;
    return b.p != NULL ? b.p : strdup("");
}

int bench_req_option(bench_req *r, const char *opt, const char *val)
{
    if (strcmp(opt, "-u") == 0) {
        r->url = val;
    } else if (strcmp(opt, "-d") == 0) {
        free(r->data);
        r->data = strdup(val);
        r->data_len = strlen(val);
    } else if (strcmp(opt, "-D") == 0) {
        free(r->data);
        if ((r->data = read_file(val, &r->data_len)) == NULL) {
            perror(val);
            return -1;
        }
    } else if (strcmp(opt, "-H") == 0) {
        r->hdrs = curl_slist_append(r->hdrs, val);
    } else if (strcmp(opt, "-e") == 0) {
        r->expect = val;
    } else if (strcmp(opt, "-T") == 0) {
        r->timeout_s = strtol(val, NULL, 10);
    } else {
        return 0;
    }
    return 1;
}

bool bench_req_ready(bench_req *r)
{
    if (r->url == NULL || r->timeout_s < 1)
        return false;
    if (r->data != NULL) {
        r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
        r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    }
    return true;
}

void bench_req_apply(const bench_req *r, CURL *h, buf *body)
{
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, r->timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
    if (r->data != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->data_len);
    }
}

bool bench_req_succeeded(const bench_req *r, CURLcode rc, long status, const buf *body)
{
    if (rc != CURLE_OK || status < 200 || status > 299)
        return false;
    return r->expect == NULL || (body->p != NULL && strstr(body->p, r->expect) != NULL);
}

void bench_req_free(bench_req *r)
{
    free(r->data);
    curl_slist_free_all(r->hdrs);
}

int64_t now_ns(void)
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

void sort_ns(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
}

double pct_ms(const int64_t *sorted, size_t n, double p)
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
