#!/usr/bin/env bash
# A Docker engine with Compose v2 for the live compose tests (`make test`, `make test-compose-live`).
#
#   scripts/docker-engine.sh ensure   use the running engine; else start dockerd where this user can
#                                     (root, or passwordless sudo); else say the one command to run
#   scripts/docker-engine.sh stop     stop a dockerd that `ensure` started (nothing else)
#
# It never installs anything; .ci/run installs Debian's docker.io first on a fresh CI machine.
set -euo pipefail
state=${FSDL_DOCKERD_STATE:-/tmp/fsdl-dockerd}
pidfile=$state/dockerd.pid

engine_up() { docker info >/dev/null 2>&1; }

# shellcheck source=scripts/as-root.sh
. "$(dirname "$0")/as-root.sh"

ensure() {
    if ! engine_up; then
        if ! command -v dockerd >/dev/null; then
            echo "No Docker engine is running and dockerd is not installed. Install Docker Engine" >&2
            echo "(Debian/Ubuntu: sudo apt-get install docker.io), start it, and run make test again." >&2
            exit 1
        fi
        if ! as_root true; then
            echo "No Docker engine is running, and starting one needs root. Run:" >&2
            echo "    sudo systemctl start docker     (or, without systemd: sudo dockerd &)" >&2
            echo "and make sure your user may use it (sudo usermod -aG docker \$USER)." >&2
            exit 1
        fi
        mkdir -p "$state"
        echo "Starting dockerd (log: $state/dockerd.log); scripts/docker-engine.sh stop stops it."
        as_root sh -c "nohup dockerd --storage-driver=overlay2 --pidfile '$pidfile' >'$state/dockerd.log' 2>&1 &"
        for _ in $(seq 60); do
            engine_up && break
            sleep 1
        done
        engine_up || { tail -n 20 "$state/dockerd.log" >&2; echo "dockerd did not start" >&2; exit 1; }
    fi
    if ! docker compose version >/dev/null 2>&1; then
        echo "Docker Compose v2 (the 'docker compose' plugin) is missing: install Docker's" >&2
        echo "docker-compose-plugin package, or see .ci/run for a pinned standalone binary." >&2
        exit 1
    fi
}

stop() {
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    echo "Stopping the dockerd this script started (pid $pid)"
    as_root kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do
        as_root kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    as_root rm -f "$pidfile"
}

case "${1:-}" in
    ensure) ensure ;;
    stop) stop ;;
    *)
        echo "usage: $0 ensure|stop" >&2
        exit 2
        ;;
esac
