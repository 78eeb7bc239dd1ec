/* Who is calling: the tenant of a request's API key, with the signature and nonce checks
 * of signed keys (DESIGN §6). Dev mode (no keys file) answers tenant "default". */
#ifndef RR_AUTHN_H
#define RR_AUTHN_H

#include "ingress.h"
#include "reply.h"

#include "reqrun/ids.h"

#include <stdbool.h>
#include <stddef.h>

#define RR_TENANT_DEV "default"

typedef struct rr_authn_input {
    const char *method;
    const char *target;        /* as sent: path + "?query" */
    const char *authorization; /* Authorization header or NULL */
    const char *timestamp;     /* X-ReqRun-Timestamp */
    const char *nonce;         /* X-ReqRun-Nonce */
    const char *signature;     /* X-ReqRun-Signature */
    const void *body;
    size_t body_len;
} rr_authn_input;

/* Sets tenant and returns true; or fills out (401 with its code, 503 when the nonce
 * store is unreachable) and returns false. */
bool rr_authn(rr_ingress *ing, const rr_authn_input *in, char tenant[RR_TENANT_BUF],
              rr_reply *out);

#endif
