/* Call counting of the mock: calls per X-ReqRun-Request-Id, so tests count duplicate
 * upstream work exactly, and disconnects of held calls (the client went away). */
#ifndef RR_MOCK_STATS_H
#define RR_MOCK_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Counts a call; returns this id's call number (1 for the first). NULL/"" ids count
 * in the total only and return 1. */
long mock_stats_call(const char *request_id);
/* Counts a held call whose client closed the connection. */
void mock_stats_disconnect(const char *request_id);
/* {"total":N,"calls":{...},"disconnects":{...}}, malloc'd. */
char *mock_stats_json(size_t *len);
/* Forgets everything. */
void mock_stats_reset(void);

#endif
