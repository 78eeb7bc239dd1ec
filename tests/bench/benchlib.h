/* What the benchmark's C tools (serial, openloop) share: the request they send and its
 * options, what counts as a success, the response buffer, the clock and nearest-rank
 * percentiles. */
#ifndef RR_BENCHLIB_H
#define RR_BENCHLIB_H

#include <curl/curl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

/* A CURLOPT_WRITEFUNCTION appending to the buf in ud, kept NUL-terminated. */
size_t buf_append(char *data, size_t size, size_t nmemb, void *ud);

/* The request every tool sends, from the options they share:
 *   -u URL  -d BODY | -D FILE  -H 'Name: value' (repeatable)  -e SUBSTRING  -T TIMEOUT_S */
typedef struct bench_req {
    const char *url;
    char *data;                /* the POST body; NULL: none */
    size_t data_len;
    struct curl_slist *hdrs;
    const char *expect;        /* a success's body contains it; NULL: any body */
    long timeout_s;            /* default 30 */
} bench_req;

#define BENCH_REQ_INIT {.timeout_s = 30}
#define BENCH_REQ_USAGE "-u URL [-d BODY | -D FILE] [-H 'Name: value']... [-e SUBSTRING] [-T TIMEOUT_S]"

/* Takes option opt with its value val when it is one of the shared options: 1 taken,
 * 0 not a shared option, -1 a bad value (printed). */
int bench_req_option(bench_req *r, const char *opt, const char *val);
/* After the options: false when a required one is missing; adds the body's headers. */
bool bench_req_ready(bench_req *r);
/* Sets h up to send r (keep-alive, TCP_NODELAY), the answer's body going to body. */
void bench_req_apply(const bench_req *r, CURL *h, buf *body);
/* A success: no transfer error, a 2xx, and the expected substring in the body. */
bool bench_req_succeeded(const bench_req *r, CURLcode rc, long status, const buf *body);
void bench_req_free(bench_req *r);

/* CLOCK_MONOTONIC in ns. */
int64_t now_ns(void);
/* Sorts a sample of durations in ns. */
void sort_ns(int64_t *v, size_t n);
/* Nearest rank on a sorted sample, in ms: the smallest value with at least p of the
 * sample at or below it; -1 for an empty sample. */
double pct_ms(const int64_t *sorted, size_t n, double p);

#endif
