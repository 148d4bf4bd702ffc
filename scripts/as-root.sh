# shellcheck shell=bash
# Sourced by the scripts that install or start system software for the tests: run "$@" as root,
# directly or through passwordless sudo; fail (status 1, no prompt) where neither is possible.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}
