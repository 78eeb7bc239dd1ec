/* Mock call counters: one process-wide table (the mock is a test tool with one job). */
#include "stats.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *calls;       /* id -> integer */
static json_t *disconnects; /* id -> integer */
static uint64_t total;

static long bump(json_t **table, const char *id)
{
    if (*table == NULL)
        *table = json_object();
    json_t *v = json_object_get(*table, id);
    long n = v != NULL ? (long)json_integer_value(v) + 1 : 1;
    json_object_set_new(*table, id, json_integer(n));
    return n;
}

long mock_stats_call(const char *request_id)
{
    pthread_mutex_lock(&stats_mu);
    total++;
    long n = 1;
    if (request_id != NULL && request_id[0] != '\0')
        n = bump(&calls, request_id);
    pthread_mutex_unlock(&stats_mu);
    return n;
}

void mock_stats_disconnect(const char *request_id)
{
    pthread_mutex_lock(&stats_mu);
    bump(&disconnects, request_id != NULL && request_id[0] ? request_id : "-");
    pthread_mutex_unlock(&stats_mu);
}

char *mock_stats_json(size_t *len)
{
    pthread_mutex_lock(&stats_mu);
    if (calls == NULL)
        calls = json_object();
    if (disconnects == NULL)
        disconnects = json_object();
    json_t *o = json_pack("{s:I, s:O, s:O}", "total", (json_int_t)total, "calls", calls,
                          "disconnects", disconnects);
    char *s = json_dumps(o, JSON_COMPACT);
    pthread_mutex_unlock(&stats_mu);
    json_decref(o);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

void mock_stats_reset(void)
{
    pthread_mutex_lock(&stats_mu);
    json_decref(calls);
    json_decref(disconnects);
    calls = disconnects = NULL;
    total = 0;
    pthread_mutex_unlock(&stats_mu);
}
