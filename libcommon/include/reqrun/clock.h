/* Wall-clock and monotonic time in milliseconds, RFC 3339 formatting, and the backoff
 * of internal retries. */
#ifndef RR_CLOCK_H
#define RR_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_RFC3339_BUF 64

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t rr_now_ms(void);
/* Monotonic milliseconds, for durations and deadlines inside one process. */
int64_t rr_mono_ms(void);
/* Monotonic microseconds. */
int64_t rr_mono_us(void);
/* Writes unix ms as "2026-11-24T06:00:00.123Z" into out (RR_RFC3339_BUF bytes). */
void rr_rfc3339(int64_t unix_ms, char out[RR_RFC3339_BUF]);

/* Capped exponential waits until a deadline: retrying a NATS call that did not go
 * through (a write, provisioning). Not for upstream calls (rr_retry_delay_ms). */
typedef struct rr_backoff {
    int64_t wait_ms;    /* the next wait */
    int64_t max_ms;
    int64_t give_up_ms; /* rr_mono_ms() past which no wait may end */
} rr_backoff;

/* Waits of first_ms, doubling up to max_ms, for at most for_ms from now. */
rr_backoff rr_backoff_start(int64_t first_ms, int64_t max_ms, int64_t for_ms);
/* Sleeps the next wait and doubles it; false, at once, when it would end past the
 * deadline. */
bool rr_backoff_wait(rr_backoff *b);

#endif
