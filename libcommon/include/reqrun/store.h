/* Records over the bus: read and decode, create and compare-and-set, and the lifecycle
 * event published after every successful write (DESIGN §4 step 7). The one place that
 * turns a record change into KV writes and events. */
#ifndef RR_STORE_H
#define RR_STORE_H

#include "reqrun/bus.h"
#include "reqrun/record.h"

/* Reads <tenant>.<id>. RR_NOT_FOUND when absent; RR_INVALID when undecodable. */
rr_status rr_store_get(rr_bus *bus, const char *tenant, const char *id, rr_record *out,
                       uint64_t *rev);
/* Writes rec: created when expected_rev is 0 (RR_EXISTS if present), else only over
 * expected_rev (RR_CONFLICT if it moved). Then publishes the event: synchronously for
 * terminal states, in the background otherwise. *event_status (may be NULL) says
 * whether a terminal event was stored; a record is settled only after it was. */
rr_status rr_store_put(rr_bus *bus, const rr_record *rec, uint64_t expected_rev, uint64_t *rev,
                       rr_status *event_status);
/* The same write without an event: for changes that are not a transition of the state
 * (a cancel request noted on a processing record, a webhook delivery log entry). */
rr_status rr_store_put_quiet(rr_bus *bus, const rr_record *rec, uint64_t expected_rev,
                             uint64_t *rev);
/* (Re)publishes the event of rec at rev; deduplicated by its message id <id>.<rev>.
 * A terminal event of a record with a webhook URL is also published on
 * reqrun.webhooks.<tenant>.<id> for the dispatcher. */
rr_status rr_store_publish_event(rr_bus *bus, const rr_record *rec, uint64_t rev, bool sync);

#endif
