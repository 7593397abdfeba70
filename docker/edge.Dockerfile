# The edge: Debian's nginx with the edge-router module, built in the builder
# stage against the very nginx the runtime stage installs (same Debian
# release, same package version: the check below fails the build otherwise).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        nginx nginx-dev libclang-dev clang pkg-config libssl-dev libpcre2-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/nginx-tree.sh target/nginx \
    && NGINX_SOURCE_DIR=$PWD/target/nginx NGINX_BUILD_DIR=$PWD/target/nginx/objs \
       cargo build --release --locked -p ngx-edge-router \
    && dpkg-query -W -f='${Version}' nginx > /nginx-version

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx gettext-base \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /nginx-version /nginx-version
RUN test "$(dpkg-query -W -f='${Version}' nginx)" = "$(cat /nginx-version)"
COPY --from=build /src/target/release/libngx_edge_router.so /usr/lib/nginx/modules/
COPY nginx/ /etc/rtmp-live/
COPY scripts/render-conf.sh /usr/local/bin/
COPY docker/edge-entrypoint.sh /usr/local/bin/
ENV EDGE_PORT=8081 API_URL=http://api:9090 EDGE_WORKERS=auto EDGE_VIEWER_KEY=\$remote_addr \
    EDGE_ROUTE_VALID=5s EDGE_ROUTE_NEGATIVE=1s EDGE_ROUTE_STALE=15m
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/edge-entrypoint.sh"]
