/* The mock's HTTP/1.1 server: epoll event loops (one per thread, SO_REUSEPORT), with
 * timers for latency, held connections for "hang" (noticing when the client leaves),
 * and TCP resets for "reset". It serves only what the mock needs: Content-Length bodies,
 * keep-alive, no pipelining. */
#ifndef RR_MOCK_SERVER_H
#define RR_MOCK_SERVER_H

#include "faults.h"

#include <stdbool.h>

typedef struct mock_server mock_server;

/* Binds host:port on n_loops threads. NULL when the address cannot be bound. */
mock_server *mock_server_start(const char *listen, int n_loops, const mock_defaults *def);
/* Stops the loops, closes every connection, frees. */
void mock_server_stop(mock_server *s);

#endif
