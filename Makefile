# ReqRun: `make run` starts the whole stack on this machine, `make test` runs every test.
# Both install what is missing (Debian packages) first.

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRR_WERROR=ON

.PHONY: all deps deps-build build run test test-sanitize fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh test

deps-build:
	@scripts/install-deps.sh build

build: deps-build
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Starts nats-server, reqrun-mockllm (unless REQRUN_UPSTREAM_URL is set), reqrun-executor
# and reqrun-ingress on http://127.0.0.1:8080. Ctrl-C stops everything.
run: build
	@scripts/run.sh $(BUILD)

# Every ctest of the plain build: unit, integration, e2e, chaos, clients, k8s.
test: deps build
	@scripts/test.sh $(BUILD)

# ASan+UBSan and TSan builds of the suite, valgrind on the unit tests and the services.
test-sanitize: deps
	@scripts/test-sanitize.sh

# Each libFuzzer target for a while (FUZZ_SECONDS, default 30).
fuzz: deps
	@scripts/fuzz.sh

# Benchmarks (tests/bench): not part of `make test`.
bench: deps build
	@tests/bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz .reqrun
