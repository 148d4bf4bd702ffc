# Stand-in for python:3.11-slim-bookworm, built by build.sh where no image registry is reachable.
# Differs from the official image:
# - Python is Debian's python3 3.11.2 (/usr/bin/python3, linked as /usr/local/bin/python), not
#   CPython built from source into /usr/local; pip is upgraded from PyPI into /usr/local and the
#   EXTERNALLY-MANAGED marker is removed, so `pip install` behaves as in the official image.
# - It carries this machine's extra CA certificates and points pip at the system bundle
#   (PIP_CERT), because package registries are reached through a re-signing HTTPS proxy.
FROM debian:bookworm-slim

ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

COPY certs/ /usr/local/share/ca-certificates/
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates netbase tzdata \
        python3 python3-pip python3-venv \
    && update-ca-certificates \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && python3 -m pip install --no-cache-dir --upgrade pip \
    && ln -sf /usr/bin/python3 /usr/local/bin/python \
    && ln -sf /usr/bin/python3 /usr/local/bin/python3 \
    && rm -rf /var/lib/apt/lists/*

CMD ["python3"]
