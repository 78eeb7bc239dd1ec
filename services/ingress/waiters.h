/* Requests held open until their record turns terminal. One subscription per process
 * (to the bucket's republished writes, reqrun.records.>) wakes them; never a consumer
 * or watcher per request (DESIGN §5). */
#ifndef RR_WAITERS_H
#define RR_WAITERS_H

#include "reqrun/bus.h"
#include "reqrun/record.h"
#include "reqrun/status.h"

#include <stdint.h>

typedef struct rr_waiters rr_waiters;
typedef struct rr_waiter rr_waiter;

rr_status rr_waiters_new(rr_waiters **out, rr_bus *bus);
/* Unsubscribes and frees. No waiter may be registered. NULL-safe. */
void rr_waiters_destroy(rr_waiters *w);
/* Registers interest in <tenant>.<id>: call before the write that could finish it (or
 * before re-reading the record), so no wake-up is lost. */
rr_waiter *rr_waiters_register(rr_waiters *w, const char *tenant, const char *id);
/* Waits until a terminal record for the key arrives (RR_OK, out filled, *rev set),
 * timeout_ms passes (RR_TIMEOUT) or shutdown begins (RR_CANCELLED). While waiting it
 * re-reads the record every few seconds, so even a lost wake-up costs seconds, not the
 * whole wait. */
rr_status rr_waiter_wait(rr_waiters *w, rr_waiter *waiter, int64_t timeout_ms, rr_record *out,
                         uint64_t *rev);
/* Unregisters and frees the waiter. */
void rr_waiters_unregister(rr_waiters *w, rr_waiter *waiter);
/* Wakes every waiter with RR_CANCELLED, now and for later waits (shutdown). */
void rr_waiters_shutdown(rr_waiters *w);
/* Waiters registered now (for metrics). */
int rr_waiters_count(rr_waiters *w);

#endif
