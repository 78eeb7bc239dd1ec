/* The executor's operations endpoints (/healthz, /readyz, /metrics) and its metrics. */
#ifndef RR_OPS_H
#define RR_OPS_H

#include "executor.h"

#include "reqrun/httpd.h"

/* Registers the executor's metrics in ex->metrics (call before rr_executor_start). */
void rr_ops_register_metrics(rr_executor *ex);
/* Routes the endpoints on h. */
void rr_ops_register_routes(rr_executor *ex, rr_httpd *h);

#endif
