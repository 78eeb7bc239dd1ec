/* Wall-clock and monotonic time in milliseconds, and RFC 3339 formatting. */
#ifndef RR_CLOCK_H
#define RR_CLOCK_H

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

#endif
