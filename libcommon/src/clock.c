/* Time helpers: one place that calls clock_gettime. */
#include "reqrun/clock.h"

#include <stdio.h>
#include <time.h>

rr_backoff rr_backoff_start(int64_t first_ms, int64_t max_ms, int64_t for_ms)
{
    return (rr_backoff){.wait_ms = first_ms, .max_ms = max_ms, .give_up_ms = rr_mono_ms() + for_ms};
}

bool rr_backoff_wait(rr_backoff *b)
{
    if (rr_mono_ms() + b->wait_ms > b->give_up_ms)
        return false;
    struct timespec ts = {(time_t)(b->wait_ms / 1000), (long)(b->wait_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    b->wait_ms = b->wait_ms * 2 > b->max_ms ? b->max_ms : b->wait_ms * 2;
    return true;
}

int64_t rr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rr_mono_ms(void)
{
    return rr_mono_us() / 1000;
}

int64_t rr_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void rr_rfc3339(int64_t unix_ms, char out[RR_RFC3339_BUF])
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, RR_RFC3339_BUF, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(unix_ms % 1000));
}
