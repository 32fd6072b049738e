#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian 12 packages retryd needs to build, test
# and run its demo. The one package list of the project (README, CI, demo).
#
# Fast path: when dpkg says every package is installed, apt is not touched (no
# network, no root needed). Otherwise, as root (or through sudo), apt-get
# update + install without recommends. Services are kept from starting while
# packages are installed (policy-rc.d exits 101, as in Docker images), so
# mariadb-server's postinst neither starts a system MariaDB nor fails on a
# machine without systemd; tests start their own private MariaDB.
set -euo pipefail

PACKAGES=(
    cmake gcc make pkg-config           # build
    default-libmysqlclient-dev          # libmysqlclient (retryd store)
    libcurl4-openssl-dev                # libcurl (dispatcher, callbacks, client HTTP)
    libevent-dev                        # libevent evhttp (retryd API, http-peer)
    libjansson-dev                      # JSON
    librdkafka-dev                      # Kafka client and mock cluster
    libcmocka-dev                       # unit tests
    libinih-dev                         # INI config
    libssl-dev                          # libcrypto (digests)
    mariadb-server mariadb-client       # the MySQL of tests and the demo
    libsystemd-dev                      # sd_notify readiness/watchdog (optional at build time)
    kcat curl jq socat                  # integration tests and demo
)

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    echo "deps.sh: all ${#PACKAGES[@]} packages installed"
    exit 0
fi
echo "deps.sh: installing: ${missing[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "deps.sh: run as root or install sudo" >&2; exit 1; }
    SUDO=(sudo)
fi

# Keep services from starting during the install; remove our guard afterwards.
POLICY=/usr/sbin/policy-rc.d
guard=0
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts during package installs\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    guard=1
fi
remove_guard() { if ((guard)); then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap remove_guard EXIT

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
for try in 1 2 3; do
    if "${APT[@]}" update; then break; fi
    ((try < 3)) || { echo "deps.sh: apt-get update failed" >&2; exit 1; }
    sleep 5
done
if ! "${APT[@]}" install --no-install-recommends "${missing[@]}" </dev/null; then
    # A postinst that fails to start a service leaves the package
    # half-configured; finish configuring and judge by what we need below.
    echo "deps.sh: apt-get install reported an error; running dpkg --configure -a" >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a </dev/null || true
fi

# What the build and tests actually use must be there.
PATH=$PATH:/usr/sbin:/sbin
bad=0
for c in cmake cc make pkg-config mariadbd mariadb mariadb-install-db kcat curl jq; do
    command -v "$c" >/dev/null || { echo "deps.sh: '$c' missing after install" >&2; bad=1; }
done
for m in mysqlclient libcurl libevent libevent_pthreads jansson rdkafka cmocka inih libcrypto; do
    pkg-config --exists "$m" || { echo "deps.sh: pkg-config module '$m' missing" >&2; bad=1; }
done
exit $bad
