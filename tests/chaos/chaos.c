/* The fault suite's load driver, verifier, figures and shared probes (see chaos.h). */
#include "chaos.h"

#include "reqrun/record.h"

#include <curl/curl.h>
#include <nats/nats.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the run ---- */

void chaos_run_init(chaos_run *r, rt_stack *s, const char *name, int n)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->s = s;
    r->n = n;
    r->reqs = calloc((size_t)n, sizeof *r->reqs);
    r->threads = 32;
    r->give_up_ms = 60000;
    r->retry_max_ms = 1000;
    for (int i = 0; i < n; i++) {
        chaos_req *q = &r->reqs[i];
        snprintf(q->key, sizeof q->key, "%s-%d", name, i);
        rr_id_derive(q->id, "default", q->key, strlen(q->key));
        q->want_status = "completed";
        q->sent_ms = q->first_2xx_ms = q->answered_ms = -1;
    }
}

void chaos_run_free(chaos_run *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->reqs[i].final_body);
        json_decref(r->reqs[i].record);
    }
    free(r->reqs);
    r->reqs = NULL;
}

void chaos_mock_latency(chaos_run *r, int latency_ms)
{
    for (int i = 0; i < r->n; i++)
        snprintf(r->reqs[i].mock, sizeof r->reqs[i].mock, "\"latency_ms\":%d", latency_ms);
}

int64_t chaos_elapsed_ms(const chaos_run *r)
{
    return rt_now_ms() - r->t0;
}

static bool header_is(const rt_resp *resp, const char *name, const char *want)
{
    char v[64];
    return rt_resp_header(resp, name, v, sizeof v) != NULL && strcasecmp(v, want) == 0;
}

/* Sends q until a definitive answer: retries with the same key on transport errors, 503,
 * and answers that say x-should-retry: true; gives up after r->give_up_ms. */
static void send_until_definitive(chaos_run *r, chaos_req *q)
{
    char body[512], wait[16], hkey[96], url[128];
    if (r->wait_s == 0)
        snprintf(wait, sizeof wait, "false");
    else if (r->wait_s < 0)
        snprintf(wait, sizeof wait, "true");
    else
        snprintf(wait, sizeof wait, "%d", r->wait_s);
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]%s%s%s,"
             "\"wait\":%s}",
             q->key, q->mock[0] ? ",\"mock\":{" : "", q->mock, q->mock[0] ? "}" : "", wait);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", q->key);
    snprintf(url, sizeof url, "%s/v1/chat/completions", r->s->base);
    const char *headers[] = {hkey, NULL};
    long timeout_ms = (r->wait_s > 0 ? r->wait_s : r->wait_s < 0 ? 120 : 0) * 1000L + 30000L;

    int64_t first = rt_now_ms();
    q->sent_ms = first - r->t0;
    atomic_fetch_add(&r->sent, 1);
    int64_t pause = 100;
    for (;;) {
        rt_resp resp;
        long st = rt_http(&resp, "POST", url, body, headers, timeout_ms) ? resp.status : 0;
        q->tries++;
        if (q->n_statuses < CHAOS_MAX_STATUSES)
            q->statuses[q->n_statuses++] = st;
        char idh[64];
        if (st != 0 && rt_resp_header(&resp, "X-ReqRun-Request-Id", idh, sizeof idh) != NULL &&
            strcmp(idh, q->id) != 0)
            q->id_mismatch = true;
        bool retry = st == 0 || st == 503 ||
                     ((st == 429 || st >= 500) && header_is(&resp, "x-should-retry", "true"));
        if (st == 0) {
            q->n_transport++;
            atomic_fetch_add(&r->n_transport, 1);
        } else if (st == 503) {
            q->n_503++;
            atomic_fetch_add(&r->n_503, 1);
        }
        if (!retry) {
            q->answered_ms = rt_now_ms() - r->t0;
            q->final_status = st;
            q->replayed = header_is(&resp, "Idempotent-Replayed", "true");
            q->final_body = strdup(resp.body);
            if (st >= 200 && st < 300) {
                q->first_2xx_ms = q->answered_ms;
                atomic_fetch_add(&r->acked, 1);
            }
            rt_resp_free(&resp);
            break;
        }
        rt_resp_free(&resp);
        if (rt_now_ms() - first > rt_ms(r->give_up_ms))
            break;
        rt_sleep_ms(pause);
        pause = pause * 2 > r->retry_max_ms ? r->retry_max_ms : pause * 2;
    }
    atomic_fetch_add(&r->done, 1);
}

static void *client_main(void *arg)
{
    chaos_run *r = arg;
    for (;;) {
        int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n)
            break;
        if (r->rate > 0) { /* the load's schedule: request i goes out at t0 + i/rate */
            int64_t due = r->t0 + (int64_t)i * 1000 / r->rate;
            int64_t now = rt_now_ms();
            if (due > now)
                rt_sleep_ms(due - now);
        }
        send_until_definitive(r, &r->reqs[i]);
    }
    return NULL;
}

void chaos_start(chaos_run *r)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (r->threads < 1)
        r->threads = 1;
    if (r->threads > CHAOS_MAX_THREADS)
        r->threads = CHAOS_MAX_THREADS;
    r->t0 = rt_now_ms();
    for (r->n_threads = 0; r->n_threads < r->threads; r->n_threads++) {
        if (pthread_create(&r->th[r->n_threads], NULL, client_main, r) != 0)
            break;
    }
}

void chaos_join(chaos_run *r)
{
    for (int i = 0; i < r->n_threads; i++)
        pthread_join(r->th[i], NULL);
    r->n_threads = 0;
}

/* ---- verification ---- */

int chaos_attempts_with(json_t *rec, const char *outcome, const char *executor_prefix)
{
    json_t *log = json_object_get(rec, "attempt_log");
    int n = 0;
    for (size_t i = 0; i < json_array_size(log); i++) {
        json_t *a = json_array_get(log, i);
        if (strcmp(rt_json_str(a, "outcome"), outcome) != 0)
            continue;
        if (executor_prefix != NULL &&
            strncmp(rt_json_str(a, "executor"), executor_prefix, strlen(executor_prefix)) != 0)
            continue;
        n++;
    }
    return n;
}

char *chaos_record_dump(json_t *rec)
{
    return rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : strdup("null");
}

static void print_statuses(const chaos_req *q)
{
    fprintf(stderr, "    client answers (%d tries):", q->tries);
    for (int i = 0; i < q->n_statuses; i++)
        fprintf(stderr, " %ld", q->statuses[i]);
    fprintf(stderr, "\n");
}

static void violation(chaos_figures *f, const chaos_req *q, const char *what)
{
    f->violations++;
    char *rec = chaos_record_dump(q->record);
    fprintf(stderr, "CHAOS violation: key %s id %s: %s (mock calls %ld)\n    record %s\n",
            q->key, q->id, what, q->calls, rec);
    print_statuses(q);
    free(rec);
}

/* RFC 3339 UTC with milliseconds ("2026-11-24T08:17:48.554Z") to unix ms; -1 if not. */
static int64_t parse_time_ms(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *v, int n, double p)
{
    if (n == 0)
        return 0;
    int rank = (int)ceil(p / 100.0 * n);
    return v[rank < 1 ? 0 : rank - 1];
}

void chaos_verify(chaos_run *r, int64_t timeout_ms, chaos_figures *f)
{
    memset(f, 0, sizeof *f);
    rt_stack *s = r->s;
    /* every acknowledged request must reach a terminal state */
    int64_t until = rt_now_ms() + rt_ms(timeout_ms);
    for (;;) {
        int pending = 0;
        for (int i = 0; i < r->n; i++) {
            chaos_req *q = &r->reqs[i];
            if (q->sent_ms < 0 ||
                (q->record != NULL && rt_status_terminal(rt_json_str(q->record, "status"))))
                continue;
            json_decref(q->record);
            q->record = rt_get_request(s, q->id, "include=attempts");
            if (q->first_2xx_ms >= 0 &&
                (q->record == NULL || !rt_status_terminal(rt_json_str(q->record, "status"))))
                pending++;
        }
        if (pending == 0 || rt_now_ms() > until)
            break;
        rt_sleep_ms(250);
    }

    json_t *stats = rt_mock_stats(s);
    json_t *calls = json_object_get(stats, "calls");
    if (stats == NULL) {
        fprintf(stderr, "CHAOS violation: the mock's call log is unreadable\n");
        f->violations++;
    }
    double *lat = calloc((size_t)r->n + 1, sizeof *lat);
    double *done = calloc((size_t)r->n + 1, sizeof *done);
    int n_lat = 0, n_done = 0;
    for (int i = 0; i < r->n; i++) {
        chaos_req *q = &r->reqs[i];
        if (q->sent_ms < 0)
            continue;
        f->submitted++;
        q->calls = (long)json_integer_value(json_object_get(calls, q->id));
        const char *st = rt_json_str(q->record, "status");
        bool terminal = q->record != NULL && rt_status_terminal(st);
        bool acked = q->first_2xx_ms >= 0;
        q->attempts = (int)json_integer_value(json_object_get(q->record, "attempts"));
        if (terminal) {
            int64_t c = parse_time_ms(rt_json_str(q->record, "created_at"));
            int64_t u = parse_time_ms(rt_json_str(q->record, "updated_at"));
            if (c > 0 && u >= c)
                done[n_done++] = (double)(u - c);
        }
        q->interrupted = chaos_attempts_with(q->record, "interrupted", NULL);
        if (q->interrupted > 0)
            f->interrupted_records++;
        char what[256];
        if (q->answered_ms < 0) {
            f->unknown++;
            fprintf(stderr, "CHAOS unknown: key %s id %s never got a definitive answer\n",
                    q->key, q->id);
            print_statuses(q);
        } else {
            lat[n_lat++] = (double)(q->answered_ms - q->sent_ms);
            if (!acked) {
                snprintf(what, sizeof what, "final answer %ld: %.120s", q->final_status,
                         q->final_body != NULL ? q->final_body : "");
                violation(f, q, what);
            }
        }
        if (acked && !terminal) {
            q->lost = true;
            f->lost++;
            violation(f, q, "LOST: acknowledged with a 2xx, not terminal");
        } else if (acked && strcmp(st, q->want_status) == 0) {
            f->ok++;
        } else if (terminal && strcmp(st, q->want_status) != 0) {
            snprintf(what, sizeof what, "terminal status %s, want %s", st, q->want_status);
            violation(f, q, what);
        }
        if (q->id_mismatch)
            violation(f, q, "an answer named another request id");
        if (q->record != NULL && q->calls > q->attempts)
            violation(f, q, "more upstream calls than attempts (a call without ownership)");
        if (strcmp(st, "completed") == 0 && q->calls == 0)
            violation(f, q, "completed without an upstream call");
        long expected = q->faulted ? q->attempts - q->interrupted : 1;
        q->duplicate = q->calls > expected && q->record != NULL ? q->calls - expected : 0;
        f->duplicate_upstream_calls += q->duplicate;
        if (q->duplicate > q->interrupted)
            violation(f, q, "duplicate upstream call without an interrupted attempt");
    }
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_double);
    f->p50_ms = percentile(lat, n_lat, 50);
    f->p99_ms = percentile(lat, n_lat, 99);
    qsort(done, (size_t)n_done, sizeof *done, cmp_double);
    f->done_p50_ms = percentile(done, n_done, 50);
    f->done_p99_ms = percentile(done, n_done, 99);
    free(lat);
    free(done);
    json_decref(stats);
}

void chaos_print(const chaos_run *r, const chaos_figures *f)
{
    char line[512], details[512];
    snprintf(line, sizeof line,
             "CHAOS %s submitted=%d ok=%d lost=%d duplicate_upstream_calls=%ld unknown=%d "
             "p50_ms=%.1f p99_ms=%.1f",
             r->name, f->submitted, f->ok, f->lost, f->duplicate_upstream_calls, f->unknown,
             f->p50_ms, f->p99_ms);
    snprintf(details, sizeof details,
             "CHAOS %s details: 503s=%d transport_errors=%d interrupted_records=%d "
             "violations=%d done_p50_ms=%.0f done_p99_ms=%.0f",
             r->name, atomic_load(&r->n_503), atomic_load(&r->n_transport),
             f->interrupted_records, f->violations, f->done_p50_ms, f->done_p99_ms);
    fprintf(stderr, "%s\n%s\n", line, details);
    const char *path = getenv("REQRUN_CHAOS_FIGURES");
    if (path != NULL && path[0] != '\0') {
        FILE *fp = fopen(path, "a");
        if (fp != NULL) {
            fprintf(fp, "%s\n%s\n", line, details);
            fclose(fp);
        }
    }
}

/* ---- probes ---- */

double chaos_executor_metric(rt_stack *s, int i, const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s->executor_port[i]);
    rt_resp resp;
    double sum = -1;
    if (rt_http(&resp, "GET", url, NULL, NULL, 5000) && resp.status == 200) {
        size_t nl = strlen(name);
        sum = 0;
        char *save = NULL;
        for (char *line = strtok_r(resp.body, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            bool labelled = strchr(name, '{') != NULL; /* one label set, written in full */
            if (strncmp(line, name, nl) != 0 ||
                (line[nl] != ' ' && (labelled || line[nl] != '{')))
                continue;
            const char *v = strrchr(line, ' ');
            if (v != NULL)
                sum += atof(v + 1);
        }
    }
    rt_resp_free(&resp);
    return sum;
}

int chaos_busiest_executor(rt_stack *s, double *in_flight)
{
    int best = -1;
    *in_flight = -1;
    for (int i = 0; i < s->n_executors; i++) {
        if (s->executor[i].pid <= 0)
            continue;
        double v = chaos_executor_metric(s, i, "reqrun_upstream_in_flight");
        if (v > *in_flight) {
            *in_flight = v;
            best = i;
        }
    }
    return best;
}

int chaos_await_victim(rt_stack *s, double min_in_flight, double *in_flight)
{
    int victim = -1;
    bool ok;
    RT_POLL(ok, (victim = chaos_busiest_executor(s, in_flight)) >= 0 && *in_flight >= min_in_flight,
            15000);
    return ok ? victim : -1;
}

void chaos_abandon(chaos_run *r)
{
    chaos_join(r);
    chaos_run_free(r);
    rt_stack_dump_logs(r->s);
}

bool chaos_mock_config(rt_stack *s, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "%s/mock/config", s->mock_base);
    rt_resp resp;
    bool ok = rt_http(&resp, "POST", url, json, NULL, 5000) && resp.status == 200;
    rt_resp_free(&resp);
    return ok;
}

/* natsOptions_SetURL takes one URL: a cluster's comma-separated list goes through
 * natsOptions_SetServers. */
static natsStatus set_servers(natsOptions *o, const char *urls)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", urls);
    const char *list[16];
    int n = 0;
    char *save = NULL;
    for (char *u = strtok_r(copy, ",", &save); u != NULL && n < 16; u = strtok_r(NULL, ",", &save))
        list[n++] = u;
    return natsOptions_SetServers(o, list, n);
}

static natsConnection *connect_quietly(rt_stack *s)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    bool ok = natsOptions_Create(&o) == NATS_OK && set_servers(o, s->nats_url) == NATS_OK &&
              natsOptions_SetTimeout(o, 2000) == NATS_OK &&
              natsOptions_SetMaxReconnect(o, 0) == NATS_OK &&
              natsConnection_Connect(&nc, o) == NATS_OK;
    natsOptions_Destroy(o);
    if (!ok) {
        natsConnection_Destroy(nc);
        nc = NULL;
    }
    return nc;
}

bool chaos_queue_settled(rt_stack *s)
{
    natsConnection *nc = connect_quietly(s);
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    bool ok = nc != NULL && natsConnection_JetStream(&js, nc, &jo) == NATS_OK &&
              js_GetConsumerInfo(&ci, js, "REQRUN_REQUESTS", "executors", NULL, NULL) ==
                  NATS_OK &&
              ci->NumAckPending == 0 && ci->NumPending == 0;
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return ok;
}

int chaos_queue_leftovers(chaos_run *r, int *violations)
{
    natsConnection *nc = connect_quietly(r->s);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    int left = 0;
    if (nc == NULL || natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
        js_GetStreamInfo(&si, js, "REQRUN_REQUESTS", NULL, NULL) != NATS_OK) {
        fprintf(stderr, "CHAOS violation: REQRUN_REQUESTS unreadable\n");
        (*violations)++;
        goto out;
    }
    for (uint64_t seq = si->State.FirstSeq; si->State.Msgs > 0 && seq <= si->State.LastSeq;
         seq++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, "REQRUN_REQUESTS", seq, NULL, NULL) != NATS_OK)
            continue; /* deleted */
        left++;
        const char *msg_id = NULL;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &msg_id);
        const chaos_req *q = NULL;
        for (int i = 0; msg_id != NULL && i < r->n; i++) {
            if (strncmp(msg_id, r->reqs[i].id, RR_ID_LEN) == 0)
                q = &r->reqs[i];
        }
        const char *st = q != NULL ? rt_json_str(q->record, "status") : "";
        bool bad = q == NULL || !rt_status_terminal(st);
        if (left <= 3 || bad)
            fprintf(stderr, "CHAOS leftover: REQRUN_REQUESTS seq %llu (%s) still stored; its "
                            "request is %s\n",
                    (unsigned long long)seq, msg_id != NULL ? msg_id : "no msg id",
                    st[0] ? st : "unknown");
        if (bad) {
            fprintf(stderr, "CHAOS violation: a stored request message whose request is not "
                            "terminal\n");
            (*violations)++;
        }
        natsMsg_Destroy(m);
    }
    if (left > 0)
        fprintf(stderr, "CHAOS leftover: %d message(s) still stored in REQRUN_REQUESTS "
                        "(sequences %llu..%llu)\n",
                left, (unsigned long long)si->State.FirstSeq,
                (unsigned long long)si->State.LastSeq);
out:
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return left;
}

bool chaos_stream_leader(rt_stack *s, const char *stream, char *out, size_t n)
{
    out[0] = '\0';
    natsConnection *nc = connect_quietly(s);
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    if (nc != NULL && natsConnection_JetStream(&js, nc, &jo) == NATS_OK &&
        js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK && si->Cluster != NULL &&
        si->Cluster->Leader != NULL)
        snprintf(out, n, "%s", si->Cluster->Leader);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return out[0] != '\0';
}

int chaos_cluster_node(rt_stack *s, const char *name)
{
    int port = 0;
    if (sscanf(name, "n%d", &port) != 1)
        return -1;
    for (int i = 0; i < RT_CLUSTER_NODES; i++) {
        if (s->cluster.node[i].port == port)
            return i;
    }
    return -1;
}

/* ---- events ---- */

typedef struct ev_track {
    int n_term;           /* distinct terminal events (by content: state, update, attempt) */
    int copies;           /* terminal events repeating the first one's content */
    int copies_other_rev; /* ...of which under another revision than the first */
    int after_term;       /* non-terminal events after the first terminal event */
    uint64_t term_rev;    /* the first terminal event */
    char term_state[16];
    int64_t term_updated_ms;
    uint32_t term_attempt;
} ev_track;

static int cmp_req_id(const void *a, const void *b)
{
    return strcmp((*(chaos_req *const *)a)->id, (*(chaos_req *const *)b)->id);
}

static int find_req(chaos_req **sorted, int n, const char *id)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(sorted[mid]->id, id);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Reads every event up to the stream's last sequence into tracks (indexed like sorted). */
static int read_events(jsCtx *js, chaos_req **sorted, int n, ev_track *tracks)
{
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, "REQRUN_EVENTS", NULL, NULL) != NATS_OK) {
        fprintf(stderr, "CHAOS violation: stream REQRUN_EVENTS unreadable\n");
        return 1;
    }
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    natsSubscription *sub = NULL;
    if (js_SubscribeSync(&sub, js, "reqrun.events.>", NULL, &so, NULL) != NATS_OK) {
        fprintf(stderr, "CHAOS violation: cannot subscribe to REQRUN_EVENTS\n");
        return 1;
    }
    uint64_t seen = 0, count = 0;
    int bad = 0;
    while (seen < last) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, (int64_t)rt_ms(5000)) != NATS_OK) {
            fprintf(stderr, "CHAOS violation: REQRUN_EVENTS read stopped at %llu of %llu\n",
                    (unsigned long long)seen, (unsigned long long)last);
            bad++;
            break;
        }
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            seen = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        count++;
        rr_event ev;
        memset(&ev, 0, sizeof ev);
        if (rr_event_decode(&ev, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m)) ==
            RR_OK) {
            int i = find_req(sorted, n, ev.id);
            if (i >= 0) {
                ev_track *t = &tracks[i];
                bool term = rr_state_terminal(ev.state);
                if (term && t->n_term == 0) {
                    t->n_term = 1;
                    t->term_rev = ev.revision;
                    snprintf(t->term_state, sizeof t->term_state, "%s", rr_state_str(ev.state));
                    t->term_updated_ms = ev.updated_ms;
                    t->term_attempt = ev.attempt;
                } else if (term && strcmp(rr_state_str(ev.state), t->term_state) == 0 &&
                           ev.updated_ms == t->term_updated_ms &&
                           ev.attempt == t->term_attempt) {
                    t->copies++; /* the same terminal write, published again */
                    t->copies_other_rev += ev.revision != t->term_rev;
                } else if (term) {
                    t->n_term++;
                } else if (t->n_term > 0 && ev.state != RR_STATE_QUEUED) {
                    /* (a "queued" event is the ingress's create, published on another
                     * connection: it may land late, but a create never follows a write) */
                    t->after_term++;
                }
            }
        } else {
            fprintf(stderr, "CHAOS violation: undecodable event on %s\n", natsMsg_GetSubject(m));
            bad++;
        }
        natsMsg_Destroy(m);
    }
    fprintf(stderr, "CHAOS events: %llu events read (last sequence %llu)\n",
            (unsigned long long)count, (unsigned long long)last);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return bad;
}

typedef struct kv_view {
    uint64_t rev;
    char state[16];
    int64_t updated_ms;
    uint32_t attempts;
} kv_view;

static void view_of(const void *data, size_t len, uint64_t rev, kv_view *v)
{
    rr_record rec;
    memset(&rec, 0, sizeof rec);
    v->rev = rev;
    if (rr_record_decode(&rec, data, len) == RR_OK) {
        snprintf(v->state, sizeof v->state, "%s", rr_state_str(rec.state));
        v->updated_ms = rec.updated_ms;
        v->attempts = rec.attempts;
    }
    rr_record_free(&rec);
}

/* The record as the KV stream's leader has it (a message get, not a direct get that any
 * replica may answer): the authoritative copy. A few tries through an election. */
static bool kv_leader_view(jsCtx *js, const chaos_req *q, kv_view *v)
{
    char subject[128];
    snprintf(subject, sizeof subject, "$KV.reqrun_records.default.%s", q->id);
    memset(v, 0, sizeof *v);
    for (int i = 0; i < 5 && v->rev == 0; i++) {
        natsMsg *m = NULL;
        if (js_GetLastMsg(&m, js, "KV_reqrun_records", subject, NULL, NULL) == NATS_OK) {
            view_of(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), natsMsg_GetSequence(m),
                    v);
            natsMsg_Destroy(m);
        } else {
            rt_sleep_ms(200);
        }
    }
    return v->rev > 0;
}

/* Direct gets (answered by any replica) that return the leader's content under another
 * revision: the replicas' sequences disagree. */
static bool kv_replicas_diverge(kvStore *kv, const chaos_req *q, const kv_view *leader,
                                kv_view *other)
{
    char key[96];
    snprintf(key, sizeof key, "default.%s", q->id);
    for (int i = 0; i < 6; i++) {
        kvEntry *e = NULL;
        if (kvStore_Get(&e, kv, key) == NATS_OK) {
            view_of(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), kvEntry_Revision(e), other);
            kvEntry_Destroy(e);
            if (other->rev != leader->rev && other->updated_ms == leader->updated_ms &&
                strcmp(other->state, leader->state) == 0)
                return true;
        }
    }
    return false;
}

int chaos_check_events(chaos_run *r, int *copies, int *diverged)
{
    *copies = 0;
    *diverged = 0;
    int violations = 0;
    chaos_req **sorted = calloc((size_t)r->n, sizeof *sorted);
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->reqs[i].first_2xx_ms >= 0)
            sorted[n++] = &r->reqs[i];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_req_id);
    ev_track *tracks = calloc((size_t)n + 1, sizeof *tracks);
    natsConnection *nc = connect_quietly(r->s);
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    if (nc == NULL || natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
        js_KeyValue(&kv, js, "reqrun_records") != NATS_OK) {
        fprintf(stderr, "CHAOS violation: NATS unreachable for the events check\n");
        violations++;
        goto out;
    }
    violations += read_events(js, sorted, n, tracks);
    for (int i = 0; i < n; i++) {
        chaos_req *q = sorted[i];
        ev_track *t = &tracks[i];
        *copies += t->copies;
        if (t->copies > 0)
            fprintf(stderr, "CHAOS events: %s: %d extra copies of its terminal event\n", q->id,
                    t->copies);
        if (t->n_term != 1) {
            kv_view v;
            kv_leader_view(js, q, &v);
            fprintf(stderr,
                    "CHAOS violation: %s (key %s) has %d distinct terminal events; its record "
                    "is %s (attempt %u, updated %lld) at revision %llu\n",
                    q->id, q->key, t->n_term, v.state, v.attempts, (long long)v.updated_ms,
                    (unsigned long long)v.rev);
            violations++;
            continue;
        }
        if (t->after_term > 0) {
            fprintf(stderr,
                    "CHAOS violation: %s (key %s) has %d event(s) after its terminal event "
                    "(%s, revision %llu)\n",
                    q->id, q->key, t->after_term, t->term_state, (unsigned long long)t->term_rev);
            violations++;
        }
        /* never written after turning terminal: the stored record is the one the terminal
         * event announced (same state, update time, attempt) */
        kv_view v, other;
        memset(&other, 0, sizeof other);
        kv_leader_view(js, q, &v);
        if (strcmp(v.state, t->term_state) != 0 || v.updated_ms != t->term_updated_ms ||
            v.attempts != t->term_attempt) {
            fprintf(stderr,
                    "CHAOS violation: %s (key %s): the record (%s, attempt %u, updated %lld, "
                    "revision %llu) is not the one its terminal event announced (%s, attempt "
                    "%u, updated %lld, revision %llu): written after turning terminal\n",
                    q->id, q->key, v.state, v.attempts, (long long)v.updated_ms,
                    (unsigned long long)v.rev, t->term_state, t->term_attempt,
                    (long long)t->term_updated_ms, (unsigned long long)t->term_rev);
            violations++;
        } else if (v.rev != t->term_rev || t->copies_other_rev > 0 ||
                   kv_replicas_diverge(kv, q, &v, &other)) {
            /* the same record under another revision: the replicas number differently */
            if (++*diverged <= 3)
                fprintf(stderr,
                        "CHAOS nats: %s: the KV leader has it %s at revision %llu; its terminal "
                        "event says revision %llu (%d copies under other revisions), a direct "
                        "get said %llu: replicas of KV_reqrun_records disagree on sequences "
                        "(nats-server fault)\n",
                        q->id, v.state, (unsigned long long)v.rev,
                        (unsigned long long)t->term_rev, t->copies_other_rev,
                        (unsigned long long)other.rev);
        }
    }
    if (*diverged > 0)
        fprintf(stderr, "CHAOS nats: %d record(s) read under another revision than the KV "
                        "leader's from some replica of KV_reqrun_records\n",
                *diverged);
out:
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(tracks);
    free(sorted);
    return violations;
}
