/* Process plumbing shared by the binaries: signal handling and start-up boilerplate. */
#ifndef RR_PROCESS_H
#define RR_PROCESS_H

#include "reqrun/config.h"

#include <stdbool.h>

/* Blocks SIGINT, SIGTERM and SIGPIPE in this thread (and so in every thread started
 * after): call first in main. SIGPIPE stays ignored; the others are taken with
 * rr_process_wait_signal. */
void rr_process_block_signals(void);
/* Waits for SIGINT or SIGTERM; returns the signal number. */
int rr_process_wait_signal(void);
/* Handles --help, loads the config and initialises logging. Returns true to go on;
 * false with *exit_code set (0 after --help, 2 on a configuration error). */
bool rr_process_start(int argc, char **argv, const char *service, const char *summary,
                      rr_config *cfg, int *exit_code);

#endif
