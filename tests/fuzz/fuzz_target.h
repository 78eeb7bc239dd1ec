/* What every fuzz target shares: the libFuzzer entry point's prototype (the target
 * defines it; libFuzzer or replay_main.c calls it) and a check that aborts, so a broken
 * invariant is a crash to libFuzzer and a failure to the replay test. */
#ifndef RR_FUZZ_TARGET_H
#define RR_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input; always returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): RelWithDebInfo defines NDEBUG, and the checks are the point. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif
