#!/usr/bin/env bash
# Install the Debian packages the test suite needs, if they are missing.
#
#   postgresql  - tests start their own throwaway servers (tests/postgres_server.py)
#                 from the initdb/pg_ctl binaries; no system service is needed.
#   chromium    - headless browser used by the UI tests.
#
# Idempotent: does nothing (and never runs apt-get) when everything is present.
# Runs a single `apt-get update` only when something has to be installed.
# Never leaves a system-wide PostgreSQL service running that it started.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-test-deps: %s\n' "$*"; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
    fi
fi

have_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
        && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

have_chromium() {
    [[ -x /usr/bin/chromium ]]
}

need_postgres=0
need_chromium=0
if have_postgres; then
    log "postgresql: already installed ($(compgen -G '/usr/lib/postgresql/*/bin/initdb' | tr '\n' ' '))"
else
    need_postgres=1
fi
if have_chromium; then
    log "chromium: already installed (/usr/bin/chromium)"
else
    need_chromium=1
fi

if ((need_postgres == 0 && need_chromium == 0)); then
    log "nothing to do"
    exit 0
fi

if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    log "error: missing packages and not root (and no sudo) - cannot install" >&2
    exit 1
fi

log "running apt-get update"
"${SUDO[@]}" apt-get update

if ((need_postgres)); then
    # Keep the postgresql package from starting its "main" cluster: a
    # policy-rc.d that exits 101 tells invoke-rc.d/deb-systemd-invoke not to
    # start services. Only install one temporarily if none exists already.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 0755 "$policy"
        created_policy=1
        # shellcheck disable=SC2064  # expand now: remove exactly this file later
        trap "${SUDO[*]} rm -f '$policy'" EXIT
        log "temporarily installed $policy to keep services from starting"
    fi

    log "installing postgresql"
    "${SUDO[@]}" apt-get install -y postgresql

    if ((created_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi

    # Belt and braces: stop any cluster that came up anyway (e.g. systemd
    # ignoring policy-rc.d). The tests start their own servers.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        while read -r version cluster _port status _rest; do
            if [[ $status == online* ]]; then
                log "stopping system cluster $version/$cluster started by the install"
                "${SUDO[@]}" pg_ctlcluster "$version" "$cluster" stop || true
            fi
        done < <(pg_lsclusters --no-header 2>/dev/null || true)
    fi
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        "${SUDO[@]}" systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi

    if have_postgres; then
        log "postgresql: installed ($(compgen -G '/usr/lib/postgresql/*/bin/initdb' | tr '\n' ' '))"
    else
        log "error: postgresql installed but no /usr/lib/postgresql/*/bin/initdb found" >&2
        exit 1
    fi
fi

if ((need_chromium)); then
    log "installing chromium"
    "${SUDO[@]}" apt-get install -y --no-install-recommends chromium
    if have_chromium; then
        log "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
    else
        log "error: chromium installed but /usr/bin/chromium not found" >&2
        exit 1
    fi
fi

log "done"
