# syntax=docker/dockerfile:1
# The gateway binary, `tonic-msgpack-gateway`, in a small image. Build from the repository root:
#
#   docker build -f deploy/gateway.Dockerfile -t tonic-msgpack-gateway:dev .
#
# It reads /etc/tonic-msgpack/gateway.toml (mount a ConfigMap or a file there). SIGTERM (docker
# stop, Kubernetes) drains like Ctrl-C: no new connections, calls in flight finish for up to
# `grace_period`; SIGHUP re-reads the config (see "Running at scale" in docs/).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep crates and build output between builds; the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tonic-msgpack-gateway --bin tonic-msgpack-gateway \
    && cp target/release/tonic-msgpack-gateway /usr/local/bin/

FROM debian:bookworm-slim
# No CA bundle needed: https:// upstreams use the bundled Mozilla roots or their `ca_file`.
RUN useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /usr/local/bin/tonic-msgpack-gateway /usr/local/bin/
USER 10001
# 8080: gRPC, gRPC-Web and REST; 9901: admin (/healthz, /readyz, /metrics, /routes).
EXPOSE 8080 9901
STOPSIGNAL SIGTERM
# Exec form: the gateway is PID 1 and receives SIGTERM and SIGHUP itself.
ENTRYPOINT ["tonic-msgpack-gateway"]
CMD ["--config", "/etc/tonic-msgpack/gateway.toml", "--watch"]
