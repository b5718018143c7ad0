# shellcheck shell=bash
# Shared by deploy/run-demo.sh and tests/run.sh: install missing Debian packages, configure, build.
# Source it; it defines functions only. Everything is idempotent: a second run skips what is done.

CS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

cs_say() { printf '==> %s\n' "$*" >&2; }

# Installs the packages of deploy/packages.txt that are missing (apt-get; needs root or sudo).
cs_install_deps() {
    local missing=() p cmd
    while read -r p cmd; do
        case "$p" in ''|'#'*) continue ;; esac
        if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done < "$CS_ROOT/deploy/packages.txt"
    [ ${#missing[@]} -eq 0 ] && return 0
    cs_say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# cs_build DIR [meson setup options...]: configure DIR once, then build it.
cs_build() {
    local dir=$1; shift
    if [ ! -f "$CS_ROOT/$dir/build.ninja" ]; then
        cs_say "configuring $dir"
        local log
        log=$(mktemp)
        if ! meson setup "$CS_ROOT/$dir" "$CS_ROOT" "$@" >"$log" 2>&1; then
            tail -n 30 "$log" >&2; rm -f "$log"
            rm -rf "${CS_ROOT:?}/$dir"
            return 1
        fi
        rm -f "$log"
    fi
    cs_say "building $dir"
    # ninja prints only what failed (and warnings) when quiet is not possible; keep its errors.
    local rc=0
    ninja -C "$CS_ROOT/$dir" > >(grep -vE '^(\[[0-9]+/[0-9]+\] |ninja: (Entering|Leaving) directory|ninja: no work to do)' >&2 || true) || rc=$?
    return $rc
}
