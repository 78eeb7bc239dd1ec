/* Record persistence: protobuf records in bucket reqrun_records, events on
 * REQRUN_EVENTS. */
#include "reqrun/store.h"

#include "reqrun/clock.h"
#include "reqrun/log.h"

#include <stdio.h>
#include <stdlib.h>

rr_status rr_store_get(rr_bus *bus, const char *tenant, const char *id, rr_record *out,
                       uint64_t *rev)
{
    char key[RR_RECORD_KEY_BUF];
    rr_record_key(key, tenant, id);
    uint8_t *data = NULL;
    size_t len = 0;
    rr_status s = rr_bus_kv_get(bus, RR_KV_RECORDS, key, &data, &len, rev);
    if (s != RR_OK)
        return s;
    s = rr_record_decode(out, data, len);
    free(data);
    if (s != RR_OK)
        rr_log(RR_LOG_ERROR, RR_LOG_CTX(.request_id = id, .tenant = tenant),
               "record undecodable: %s", rr_status_str(s));
    return s;
}

rr_status rr_store_publish_event(rr_bus *bus, const rr_record *rec, uint64_t rev, bool sync)
{
    rr_event ev;
    rr_event_from_record(&ev, rec, rev, rr_now_ms());
    size_t len = 0;
    uint8_t *data = rr_event_encode(&ev, &len);
    if (data == NULL)
        return RR_NOMEM;
    char subject[192], msg_id[64];
    snprintf(subject, sizeof subject, RR_SUBJ_EVENTS "%s.%s.%s", rec->tenant, rec->id,
             rr_state_str(rec->state));
    snprintf(msg_id, sizeof msg_id, "%s.%llu", rec->id, (unsigned long long)rev);
    rr_status s = rr_bus_publish_js(bus, subject, msg_id, data, len, sync);
    if (s == RR_OK && rr_state_terminal(rec->state) && rec->webhook_url != NULL) {
        /* the dispatcher's copy: only requests with a webhook reach its consumer */
        snprintf(subject, sizeof subject, RR_SUBJ_WEBHOOKS "%s.%s", rec->tenant, rec->id);
        snprintf(msg_id, sizeof msg_id, "%s.%llu.webhook", rec->id, (unsigned long long)rev);
        s = rr_bus_publish_js(bus, subject, msg_id, data, len, sync);
    }
    free(data);
    return s;
}

rr_status rr_store_put_quiet(rr_bus *bus, const rr_record *rec, uint64_t expected_rev,
                             uint64_t *rev)
{
    size_t len = 0;
    uint8_t *data = rr_record_encode(rec, &len);
    if (data == NULL)
        return RR_NOMEM;
    char key[RR_RECORD_KEY_BUF];
    rr_record_key(key, rec->tenant, rec->id);
    uint64_t written = 0;
    rr_status s = expected_rev == 0
                      ? rr_bus_kv_create(bus, RR_KV_RECORDS, key, data, len, &written)
                      : rr_bus_kv_update(bus, RR_KV_RECORDS, key, data, len, expected_rev,
                                         &written);
    free(data);
    if (s == RR_OK && rev != NULL)
        *rev = written;
    return s;
}

rr_status rr_store_put(rr_bus *bus, const rr_record *rec, uint64_t expected_rev, uint64_t *rev,
                       rr_status *event_status)
{
    uint64_t written = 0;
    rr_status s = rr_store_put_quiet(bus, rec, expected_rev, &written);
    if (s != RR_OK)
        return s;
    if (rev != NULL)
        *rev = written;
    bool terminal = rr_state_terminal(rec->state);
    rr_status es = rr_store_publish_event(bus, rec, written, terminal);
    if (es != RR_OK)
        rr_log(RR_LOG_WARN, RR_LOG_CTX(.request_id = rec->id, .tenant = rec->tenant),
               "event %s not published: %s", rr_state_str(rec->state), rr_status_str(es));
    if (event_status != NULL)
        *event_status = es;
    return RR_OK;
}
