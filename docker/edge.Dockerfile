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

# The player page's hls.js: the version pinned in player/package-lock.json,
# from the npm registry (what `make player` does natively).
FROM node:20-bookworm-slim AS player
WORKDIR /player
COPY player/package.json player/package-lock.json ./
RUN npm ci --no-audit --no-fund && cp node_modules/hls.js/dist/hls.min.js /hls.min.js

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx gettext-base \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /nginx-version /nginx-version
RUN test "$(dpkg-query -W -f='${Version}' nginx)" = "$(cat /nginx-version)"
COPY --from=build /src/target/release/libngx_edge_router.so /usr/lib/nginx/modules/
COPY nginx/ /etc/rtmp-live/
COPY player/index.html player/player.js /usr/share/rtmp-live/player/
COPY --from=player /hls.min.js /usr/share/rtmp-live/player/
COPY scripts/render-conf.sh /usr/local/bin/
COPY docker/edge-entrypoint.sh /usr/local/bin/
ENV EDGE_PORT=8081 API_URL=http://api:9090 EDGE_WORKERS=auto EDGE_VIEWER_KEY=\$remote_addr \
    EDGE_ROUTE_VALID=5s EDGE_ROUTE_NEGATIVE=1s EDGE_ROUTE_STALE=15m
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/edge-entrypoint.sh"]
