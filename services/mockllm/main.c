/* reqrun-mockllm: the fault-injecting OpenAI-compatible upstream (DESIGN §8). */
#include "faults.h"
#include "server.h"

#include "reqrun/config.h"
#include "reqrun/log.h"
#include "reqrun/process.h"

static const char summary[] =
    "ReqRun's mock upstream: POST /v1/chat/completions, GET /v1/models, GET /mock/stats,\n"
    "POST /mock/reset, POST /mock/config {\"fault\",\"latency_ms\"} (run-time defaults).\n"
    "Faults per request: body field \"mock\": {\"fault\": \"429:N|500:N|503:N|hang|reset|"
    "quota|400|flaky:P\", \"latency_ms\": n}.";

#define MOCK_LOOPS 2

int main(int argc, char **argv)
{
    rr_process_block_signals();
    rr_config cfg;
    int code = 0;
    if (!rr_process_start(argc, argv, "reqrun-mockllm", summary, &cfg, &code))
        return code;
    mock_defaults def = {.latency_ms = cfg.mock_latency_ms, .api_key = cfg.mock_api_key};
    if (!mock_fault_parse(cfg.mock_fault, &def.fault)) {
        rr_error("REQRUN_MOCK_FAULT=%s is not a fault spec", cfg.mock_fault);
        rr_config_free(&cfg);
        return 2;
    }
    mock_server *srv = mock_server_start(cfg.mock_listen, MOCK_LOOPS, &def);
    if (srv == NULL) {
        rr_config_free(&cfg);
        return 1;
    }
    rr_info("reqrun-mockllm ready on http://%s/v1", cfg.mock_listen);
    rr_process_wait_signal();
    mock_server_stop(srv);
    rr_config_free(&cfg);
    rr_info("reqrun-mockllm stopped");
    return 0;
}
