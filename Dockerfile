# syntax=docker/dockerfile:1
# ReqRun image: reqrun-ingress, reqrun-executor and reqrun-mockllm on Debian 12 slim, run as
# uid 10001. k8s/ depends on the binary paths, ports and uid below; tests/k8s/validate.sh
# checks that they agree.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev \
      libnats-dev libcivetweb-dev libcurl4-openssl-dev libssl-dev libjansson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY proto/ proto/
COPY libcommon/ libcommon/
COPY services/ services/
# The image carries no tests: an empty tests/CMakeLists.txt satisfies the top-level
# add_subdirectory(tests) without the test tree and its dependencies (cmocka).
RUN mkdir -p tests && : > tests/CMakeLists.txt \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j"$(nproc)" --target reqrun-ingress reqrun-executor reqrun-mockllm \
 && strip --strip-debug build/bin/reqrun-ingress build/bin/reqrun-executor build/bin/reqrun-mockllm

FROM debian:12-slim
# Only the shared libraries the binaries link (tests/k8s/validate.sh compares this list
# with readelf of a fresh build), plus CA certificates for the HTTPS upstream.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libnats3.4 libcivetweb1 libprotobuf-c1 libcurl4 libjansson4 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 reqrun \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin reqrun
COPY --from=build /src/build/bin/reqrun-ingress /src/build/bin/reqrun-executor /src/build/bin/reqrun-mockllm /usr/local/bin/
LABEL org.opencontainers.image.title="reqrun" \
      org.opencontainers.image.description="ReqRun: durable, retried OpenAI-compatible requests"
# Numeric, so the kubelet can enforce runAsNonRoot without a passwd lookup.
USER 10001:10001
# 8080 reqrun-ingress, 8081 reqrun-executor (ops), 8090 reqrun-mockllm
EXPOSE 8080 8081 8090
CMD ["/usr/local/bin/reqrun-ingress"]
