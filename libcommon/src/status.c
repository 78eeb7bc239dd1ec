/* Names of rr_status values. */
#include "reqrun/status.h"

const char *rr_status_str(rr_status s)
{
    switch (s) {
    case RR_OK: return "ok";
    case RR_ERR: return "error";
    case RR_NOMEM: return "out_of_memory";
    case RR_INVALID: return "invalid";
    case RR_NOT_FOUND: return "not_found";
    case RR_EXISTS: return "exists";
    case RR_CONFLICT: return "conflict";
    case RR_TIMEOUT: return "timeout";
    case RR_UNAVAILABLE: return "unavailable";
    case RR_LIMIT: return "limit";
    case RR_FULL: return "full";
    case RR_TOO_LARGE: return "too_large";
    case RR_IO: return "io";
    case RR_CANCELLED: return "cancelled";
    case RR_CONFIG: return "config";
    }
    return "unknown";
}
