# The origin: Debian's nginx + nginx-rtmp, the same nginx/ templates as the
# native path, and the ABR ladder script (ffmpeg).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        nginx libnginx-mod-rtmp ffmpeg gettext-base ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY nginx/ /etc/rtmp-live/
COPY scripts/render-conf.sh scripts/abr-ladder.sh /usr/local/bin/
COPY docker/origin-entrypoint.sh /usr/local/bin/
ENV RTMP_PORT=1935 ORIGIN_HTTP_PORT=8080 RTMP_STAT_PORT=8088 \
    API_URL=http://api:9090 HLS_PATH=/var/lib/rtmp-live/hls ABR=1
EXPOSE 1935 8080 8088
ENTRYPOINT ["/usr/local/bin/origin-entrypoint.sh"]
