/* The bus: ReqRun's only door to NATS (nats.c). Connection with reconnect, the
 * JetStream resources of DESIGN §5 (provisioned or verified), request publishing, KV
 * reads and compare-and-set writes, core subscriptions, and the pull consumer whose
 * deliveries are settled exactly once. */
#ifndef RR_BUS_H
#define RR_BUS_H

#include "reqrun/config.h"
#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_STREAM_REQUESTS "REQRUN_REQUESTS"
#define RR_STREAM_EVENTS "REQRUN_EVENTS"
#define RR_BUCKET_RECORDS "reqrun_records"
#define RR_BUCKET_NONCES "reqrun_nonces"
#define RR_CONSUMER_EXECUTORS "executors"
#define RR_CONSUMER_WEBHOOKS "webhooks"
#define RR_SUBJ_REQUESTS "reqrun.requests."  /* + <tenant> */
#define RR_SUBJ_RECORDS "reqrun.records."    /* + <tenant>.<id>: stored record writes */
#define RR_SUBJ_EVENTS "reqrun.events."      /* + <tenant>.<id>.<status> */
#define RR_SUBJ_WEBHOOKS "reqrun.webhooks."  /* + <tenant>.<id>: terminal events to deliver */
#define RR_SUBJ_SUBMIT "reqrun.submit."      /* + <tenant> */
#define RR_SUBJ_CANCEL "reqrun.cancel."      /* + <tenant>.<id> */
#define RR_NONCE_TTL_S 600
#define RR_PAYLOAD_HEADROOM (64 * 1024)

typedef struct rr_bus rr_bus;
typedef struct rr_bus_sub rr_bus_sub;
typedef struct rr_bus_msg rr_bus_msg;
typedef struct rr_bus_consumer rr_bus_consumer;
typedef struct rr_delivery rr_delivery;

typedef enum rr_kv_bucket { RR_KV_RECORDS, RR_KV_NONCES } rr_kv_bucket;

/* ---- connection and resources ---- */

/* Connects (retrying for up to 30 s at start), reconnects forever afterwards. Publishes
 * made while disconnected fail at once rather than being buffered: a 503 now is more
 * honest than a PubAck that may or may not come. */
rr_status rr_bus_connect(rr_bus **out, const rr_config *cfg, const char *client_name);
/* Creates or updates (cfg->provision) or verifies every stream, consumer and bucket of
 * DESIGN §5 and checks the server's max payload. On failure err says what differs. */
rr_status rr_bus_setup(rr_bus *bus, const rr_config *cfg, char *err, size_t errlen);
/* Unsubscribes, flushes pending writes (up to timeout_ms) and closes. */
void rr_bus_drain(rr_bus *bus, int64_t timeout_ms);
/* Closes and frees. NULL-safe. Subscriptions must be gone (drained or unsubscribed). */
void rr_bus_destroy(rr_bus *bus);
bool rr_bus_connected(rr_bus *bus);
/* Connected and stream REQRUN_REQUESTS answers (cached for a second). */
bool rr_bus_ready(rr_bus *bus);
uint64_t rr_bus_reconnects(rr_bus *bus);

/* ---- publishing ---- */

typedef struct rr_pub_ack {
    uint64_t seq;
    bool duplicate;
} rr_pub_ack;

/* Publishes a request on reqrun.requests.<tenant> with Nats-Msg-Id msg_id and waits for
 * the PubAck. RR_LIMIT: the tenant's pending cap; RR_FULL: the stream is full;
 * RR_TIMEOUT / RR_UNAVAILABLE: nothing can be promised. */
rr_status rr_bus_publish_request(rr_bus *bus, const char *tenant, const char *msg_id,
                                 const void *data, size_t len, int64_t timeout_ms,
                                 rr_pub_ack *ack);
/* Publishes to a JetStream subject with a message id; sync waits for the PubAck,
 * otherwise the ack is checked in the background (failures are logged). */
rr_status rr_bus_publish_js(rr_bus *bus, const char *subject, const char *msg_id,
                            const void *data, size_t len, bool sync);
/* Core NATS publish (no persistence). */
rr_status rr_bus_publish(rr_bus *bus, const char *subject, const void *data, size_t len);

/* ---- KV ---- */

/* Reads key. *data is malloc'd (caller frees). RR_NOT_FOUND when absent. */
rr_status rr_bus_kv_get(rr_bus *bus, rr_kv_bucket bucket, const char *key, uint8_t **data,
                        size_t *len, uint64_t *rev);
/* Writes key only if absent. RR_EXISTS otherwise. */
rr_status rr_bus_kv_create(rr_bus *bus, rr_kv_bucket bucket, const char *key,
                           const void *data, size_t len, uint64_t *rev);
/* Writes key only if its revision is still last_rev. RR_CONFLICT otherwise. */
rr_status rr_bus_kv_update(rr_bus *bus, rr_kv_bucket bucket, const char *key,
                           const void *data, size_t len, uint64_t last_rev, uint64_t *rev);

/* ---- core subscriptions ---- */

/* A message handed to a subscription callback: borrowed, valid during the call. */
const char *rr_bus_msg_subject(const rr_bus_msg *m);
const char *rr_bus_msg_reply(const rr_bus_msg *m);
const void *rr_bus_msg_data(const rr_bus_msg *m, size_t *len);
/* A header's first value, or NULL. */
const char *rr_bus_msg_header(const rr_bus_msg *m, const char *name);
/* Parses the Nats-Sequence header of a republished KV write (its revision); 0 if none. */
uint64_t rr_bus_msg_revision(const rr_bus_msg *m);

typedef void (*rr_bus_msg_fn)(const rr_bus_msg *m, void *ctx);

/* Subscribes (queue may be NULL). Callbacks of one subscription run serially on one
 * library thread: they must not block. No pending limit: a record wake-up is never
 * dropped as a slow consumer. */
rr_status rr_bus_subscribe(rr_bus *bus, const char *subject, const char *queue,
                           rr_bus_msg_fn fn, void *ctx, rr_bus_sub **out);
/* Unsubscribes and frees; waits for a running callback to return. NULL-safe. */
void rr_bus_unsubscribe(rr_bus_sub *sub);

typedef struct rr_bus_header {
    const char *name;
    const char *value;
} rr_bus_header;

/* Publishes a reply with headers. */
rr_status rr_bus_respond(rr_bus *bus, const char *reply, const rr_bus_header *headers,
                         size_t n_headers, const void *data, size_t len);

/* ---- pull consumer and deliveries ---- */

/* Binds to an existing durable pull consumer. */
rr_status rr_bus_consumer_open(rr_bus *bus, const char *stream, const char *durable,
                               rr_bus_consumer **out);
/* Up to max deliveries: what is pending at once, else waits up to timeout_ms for one.
 * RR_TIMEOUT when nothing came. out must hold max pointers; each delivery must be
 * settled with rr_delivery_settle. One fetcher per consumer handle. */
rr_status rr_bus_fetch(rr_bus_consumer *c, int max, int64_t timeout_ms, rr_delivery **out,
                       int *n);
void rr_bus_consumer_close(rr_bus_consumer *c);

/* Takes ownership of a delivery (settle it with rr_delivery_settle). Runs on the
 * subscription's thread: must not block. */
typedef void (*rr_delivery_fn)(rr_delivery *d, void *ctx);

/* Continuous pull: keeps one pull request outstanding on the durable consumer and hands
 * every delivery to fn as it arrives (no request per message). It asks for more only
 * while fewer than max_held deliveries are held: the caller reports each settled one
 * with rr_bus_consumer_released. A watchdog re-asks after a lost request (reconnect). */
rr_status rr_bus_consumer_start(rr_bus *bus, const char *stream, const char *durable,
                                int max_held, rr_delivery_fn fn, void *ctx,
                                rr_bus_consumer **out);
/* n deliveries handed out by a started consumer were settled. */
void rr_bus_consumer_released(rr_bus_consumer *c, int n);
/* Stops asking for messages; what still arrives for the outstanding request is NAKed
 * at once (left for the other executors). rr_bus_consumer_close then waits for that
 * request to end (at most a few seconds) before it unsubscribes. */
void rr_bus_consumer_stop(rr_bus_consumer *c);
/* How long until no pull request of this consumer can deliver again: a delivery handed
 * back with a NAK should wait this long, or it comes straight back to a stopping
 * consumer (and burns a delivery). 0 for a fetch-mode consumer. */
int64_t rr_bus_consumer_quiet_ms(rr_bus_consumer *c);

typedef struct rr_consumer_stats {
    uint64_t pending;      /* not yet delivered */
    uint64_t ack_pending;  /* delivered, not acked (in flight plus waiting retries) */
    uint64_t redelivered;
} rr_consumer_stats;

rr_status rr_bus_consumer_stats(rr_bus *bus, const char *stream, const char *durable,
                                rr_consumer_stats *out);

typedef struct rr_delivery_meta {
    uint64_t stream_seq;
    uint64_t consumer_seq;  /* grows with every delivery, redeliveries included */
    uint64_t num_delivered; /* 1 on the first delivery */
} rr_delivery_meta;

const void *rr_delivery_data(const rr_delivery *d, size_t *len);
const char *rr_delivery_subject(const rr_delivery *d);
rr_delivery_meta rr_delivery_meta_of(const rr_delivery *d);
/* Resets the consumer's AckWait for this message. Not thread-safe against settle. */
rr_status rr_delivery_in_progress(rr_delivery *d);

typedef enum rr_settle {
    RR_SETTLE_ACK,  /* done: AckSync, so the removal is confirmed */
    RR_SETTLE_NAK,  /* redeliver after the delay */
    RR_SETTLE_TERM, /* done for good, without success */
    RR_SETTLE_DROP, /* ownership lost: send nothing (DESIGN §4 step 6) */
} rr_settle;

/* Settles d once and frees it (whatever the result). */
rr_status rr_delivery_settle(rr_delivery *d, rr_settle how, int64_t nak_delay_ms);

#endif
