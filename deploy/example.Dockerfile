# syntax=docker/dockerfile:1
# The example services (demo.v1.Greeter, demo.v1.Calculator) without the gateway: the upstreams
# of the compose file and the Kubernetes manifests. Build from the repository root:
#
#   docker build -f deploy/example.Dockerfile -t tonic-msgpack-example:dev .
#
# `example-app services --only greeter` serves one service; SIGTERM stops accepting and lets
# calls in flight finish for up to `--grace-seconds`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p example-app --bin example-app \
    && cp target/release/example-app /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home example
COPY --from=build /usr/local/bin/example-app /usr/local/bin/
USER 10001
EXPOSE 50060
STOPSIGNAL SIGTERM
ENTRYPOINT ["example-app"]
CMD ["services", "--listen", "0.0.0.0:50060"]
