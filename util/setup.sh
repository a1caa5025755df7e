#!/usr/bin/env bash
# Installs every build and test dependency of ngx_mcig_module from Debian
# packages.  Idempotent: quiet and quick when everything is already there.
# Test::Nginx is packaged only in Debian sid (architecture all); it is fetched
# with a private apt configuration so sid never enters the system's sources.
#
#   util/setup.sh            what the build and the default tests need
#   util/setup.sh valgrind   that and valgrind (util/test.sh --valgrind)
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(
    nginx nginx-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev
    libcmocka-dev gcc make pkg-config curl wrk perl libipc-run-perl
    libtest-longstring-perl libtext-diff-perl liburi-perl libtest-base-perl
    libwww-perl libhttp-message-perl prometheus openssl procps python3
    ca-certificates iproute2 util-linux binutils
)

for extra in "$@"; do
    case "$extra" in
        valgrind) packages+=(valgrind) ;;
        *) echo "setup: unknown argument $extra" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing+=("$p")
    fi
done

apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        $SUDO apt-get update -qq
        apt_updated=1
    fi
}

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt_update
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian nginx and prometheus packages start servers at install time;
# the tests start their own nginx and only need promtool.
for service in nginx prometheus; do
    if systemctl is-active --quiet "$service" 2>/dev/null; then
        $SUDO systemctl stop "$service" >/dev/null 2>&1 || true
    fi
done

if ! perl -MTest::Nginx::Socket -e 1 2>/dev/null; then
    echo "setup: installing Test::Nginx (libtest-nginx-perl from Debian sid)"
    apt_update
    work=$(mktemp -d)
    chmod 755 "$work"
    trap 'rm -rf "$work"' EXIT
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
          | awk '$2 == "bookworm" { print $1; exit }')
    if [ -z "$uri" ]; then
        echo "setup: no bookworm archive in apt's sources; cannot locate sid" >&2
        exit 1
    fi
    echo "deb $uri sid main" > "$work/sid.list"
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    sid_apt=(apt-get -q -o Dir::Etc::SourceList="$work/sid.list"
             -o Dir::Etc::SourceParts=/nonexistent
             -o Dir::State::Lists="$work/lists"
             -o Dir::Cache="$work/cache"
             -o Acquire::Check-Valid-Until=false)
    $SUDO "${sid_apt[@]}" update >/dev/null
    (cd "$work" && $SUDO "${sid_apt[@]}" download libtest-nginx-perl >/dev/null)
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "$work"/libtest-nginx-perl_*.deb >/dev/null
fi
