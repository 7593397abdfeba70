# The API or discovery: one Rust binary on Debian slim.
#   docker build -f docker/rust-service.Dockerfile --build-arg BIN=rtmp-live-api .
FROM rust:1-bookworm AS build
ARG BIN
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p "$BIN" && cp "target/release/$BIN" /service

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /service /usr/local/bin/service
USER nobody
ENTRYPOINT ["/usr/local/bin/service"]
