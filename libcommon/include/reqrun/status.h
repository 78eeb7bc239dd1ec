/* The one status enum every libcommon function returns. */
#ifndef RR_STATUS_H
#define RR_STATUS_H

typedef enum rr_status {
    RR_OK = 0,
    RR_ERR,          /* unexpected failure; the log line says more */
    RR_NOMEM,
    RR_INVALID,      /* bad input from a caller or a client */
    RR_NOT_FOUND,
    RR_EXISTS,       /* create-only write found the key */
    RR_CONFLICT,     /* compare-and-set lost: the revision moved */
    RR_TIMEOUT,
    RR_UNAVAILABLE,  /* NATS not connected, or a resource not reachable */
    RR_LIMIT,        /* a per-tenant limit refused the write */
    RR_FULL,         /* a store limit (bytes, messages) refused the write */
    RR_TOO_LARGE,
    RR_IO,
    RR_CANCELLED,
    RR_CONFIG,       /* configuration missing, out of bounds or inconsistent */
} rr_status;

/* Stable lower-case name of a status, for logs ("ok", "conflict", ...). */
const char *rr_status_str(rr_status s);

#endif
