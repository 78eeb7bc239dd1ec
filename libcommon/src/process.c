/* Signals and start-up: the same few steps at the top of every main(). */
#include "reqrun/process.h"

#include "reqrun/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

void rr_process_block_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int rr_process_wait_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

bool rr_process_start(int argc, char **argv, const char *service, const char *summary,
                      rr_config *cfg, int *exit_code)
{
    *exit_code = 0;
    if (rr_config_wants_help(argc, argv)) {
        rr_config_print_help(stdout, service, summary);
        return false;
    }
    rr_log_init(service, RR_LOG_INFO);
    char err[512];
    if (rr_config_load(cfg, err, sizeof err) != RR_OK) {
        rr_error("configuration: %s", err);
        *exit_code = 2;
        return false;
    }
    rr_log_level level;
    if (!rr_log_level_parse(cfg->log_level, &level)) {
        rr_error("configuration: REQRUN_LOG_LEVEL=%s is not debug, info, warn or error",
                 cfg->log_level);
        rr_config_free(cfg);
        *exit_code = 2;
        return false;
    }
    rr_log_init(service, level);
    rr_config_log(cfg);
    return true;
}
