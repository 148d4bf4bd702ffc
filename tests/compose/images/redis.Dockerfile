# Stand-in for redis:7.2-bookworm, built by build.sh where no image registry is reachable.
# Differs from the official image: Debian's redis-server 7.0 instead of 7.2 built from source; no
# docker-entrypoint.sh (the server always runs as the redis user, with no config-file argument
# handling). Like the official image it listens on every interface without protected mode and keeps
# its data in /data.
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data && chown redis:redis /data

VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "-::*", "--protected-mode", "no", "--dir", "/data"]
