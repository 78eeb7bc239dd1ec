/* Request lookup, long-poll and cancel. */
#include "requests.h"

#include "submit.h"

#include "reqrun/clock.h"
#include "reqrun/ids.h"
#include "reqrun/log.h"
#include "reqrun/store.h"

#include <stdio.h>

#define CANCEL_CAS_TRIES 8

static void not_found(rr_reply *out, const char *id)
{
    rr_reply_error(out, RR_E_REQUEST_NOT_FOUND, "no request with id %.40s", id);
}

/* Reads the record; on failure fills out and returns false. */
static bool read_record(rr_ingress *ing, const char *tenant, const char *id, rr_record *rec,
                        uint64_t *rev, rr_reply *out)
{
    if (!rr_id_valid(id)) {
        not_found(out, id);
        return false;
    }
    rr_status s = rr_store_get(ing->bus, tenant, id, rec, rev);
    if (s == RR_OK)
        return true;
    if (s == RR_NOT_FOUND)
        not_found(out, id);
    else {
        rr_reply_error(out, RR_E_UNAVAILABLE, "the record store is unavailable (%s)",
                       rr_status_str(s));
        out->retry_after_s = 1;
        out->should_retry = 1;
    }
    return false;
}

void rr_requests_get(rr_ingress *ing, const char *tenant, const char *id, bool with_attempts,
                     int64_t wait_ms, rr_reply *out)
{
    rr_record rec;
    uint64_t rev = 0;
    if (!read_record(ing, tenant, id, &rec, &rev, out))
        return;
    rr_submit_wait_existing(ing, tenant, id, wait_ms, &rec, &rev);
    rr_reply_record_view(out, &rec, with_attempts);
    rr_record_free(&rec);
}

static void publish_cancel(rr_ingress *ing, const char *tenant, const char *id)
{
    char subject[160];
    snprintf(subject, sizeof subject, RR_SUBJ_CANCEL "%s.%s", tenant, id);
    rr_status s = rr_bus_publish(ing->bus, subject, id, RR_ID_LEN);
    if (s != RR_OK)
        rr_log(RR_LOG_WARN, RR_LOG_CTX(.request_id = id, .tenant = tenant),
               "cancel message not sent (%s); the executor sees cancel_requested when it "
               "writes",
               rr_status_str(s));
}

void rr_requests_cancel(rr_ingress *ing, const char *tenant, const char *id, rr_reply *out)
{
    for (int i = 0; i < CANCEL_CAS_TRIES; i++) {
        rr_record rec;
        uint64_t rev = 0;
        if (!read_record(ing, tenant, id, &rec, &rev, out))
            return;
        rr_status s = RR_OK;
        bool notify = false;
        if (rec.state == RR_STATE_QUEUED || rec.state == RR_STATE_RETRYING) {
            rec.state = RR_STATE_CANCELLED;
            rec.updated_ms = rr_now_ms();
            rec.next_attempt_ms = 0;
            rr_record_set_error(&rec, "request_cancelled", "cancelled by the client", 0, false);
            s = rr_store_put(ing->bus, &rec, rev, &rev, NULL);
        } else if (rec.state == RR_STATE_PROCESSING) {
            notify = true;
            if (!rec.cancel_requested) {
                rec.cancel_requested = true;
                rec.updated_ms = rr_now_ms();
                s = rr_store_put_quiet(ing->bus, &rec, rev, &rev);
            }
        }
        if (s == RR_CONFLICT) {
            rr_record_free(&rec);
            continue;
        }
        if (s != RR_OK) {
            rr_record_free(&rec);
            rr_reply_error(out, RR_E_UNAVAILABLE, "the cancel could not be stored (%s)",
                           rr_status_str(s));
            out->retry_after_s = 1;
            out->should_retry = 1;
            return;
        }
        if (notify)
            publish_cancel(ing, tenant, id);
        rr_reply_record_view(out, &rec, false);
        rr_record_free(&rec);
        return;
    }
    rr_reply_error(out, RR_E_UNAVAILABLE, "the record kept changing; retry the cancel");
    out->retry_after_s = 1;
    out->should_retry = 1;
}
