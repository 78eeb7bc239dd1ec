/* The ingress's HTTP routes (DESIGN §3) on CivetWeb. */
#ifndef RR_HTTP_API_H
#define RR_HTTP_API_H

#include "ingress.h"

#include "reqrun/httpd.h"

void rr_http_api_register(rr_ingress *ing, rr_httpd *h);

#endif
