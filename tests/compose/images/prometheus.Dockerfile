# Stand-in for prom/prometheus:v2.53.0, built by build.sh where no image registry is reachable.
# Differs from the official image: Debian's prometheus 2.42 (and promtool) on debian:bookworm-slim
# instead of the upstream 2.53 binary on busybox; GNU wget instead of busybox's. Like the official image
# it runs /bin/prometheus (/usr/bin, merged) as nobody, reads /etc/prometheus/prometheus.yml and keeps its data in /prometheus.
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && test -x /bin/prometheus \
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus

USER nobody
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
