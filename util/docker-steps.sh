#!/usr/bin/env bash
# The steps of the Dockerfile, in one place, so that CI runs what the image
# runs without a Docker engine.  Each RUN of the Dockerfile is one command
# of this script; "ci" replays them all on this machine, in a temporary
# directory, without touching the system:
#
#   util/docker-steps.sh build DEST      build stage: util/setup.sh and
#                                         util/build.sh (as CI), then the
#                                         final stage's files into DEST
#   util/docker-steps.sh runtime PREFIX  final stage: Debian's nginx and
#                                         the module's runtime libraries, the
#                                         non-root user, its directories
#   util/docker-steps.sh healthcheck     the image's HEALTHCHECK
#   util/docker-steps.sh ci              all of it here (what CI runs):
#                                         copies the tree as "COPY . ." does
#                                         (.dockerignore), runs "build" into
#                                         a staging root, checks the staged
#                                         files, that the runtime packages
#                                         below are installed and give every
#                                         library the module links, that
#                                         nginx is the version the module was
#                                         built for, then runs the final
#                                         stage's nginx as a non-root user in
#                                         a network namespace of its own and
#                                         its HEALTHCHECK against it
#
# The final stage runs nginx as user "mcig" (master and workers, port 8080)
# with -p PREFIX -c conf.d/nginx.conf: the module in PREFIX/build, the logs
# and temporary files in PREFIX/build/run, as in the repository.
set -euo pipefail

# what the final stage installs: nginx, the libraries the module links
# (libcurl4, libcjson1, libyaml-0-2, libssl3), curl for the HEALTHCHECK,
# CA certificates for scraping members over HTTPS
runtime_packages=(nginx libcurl4 libcjson1 libyaml-0-2 libssl3 curl ca-certificates)

user=mcig
port=8080
health_url="http://127.0.0.1:$port/mcig/status"

root=$(cd "$(dirname "$0")/.." && pwd)

# the final stage's files under DEST/PREFIX
stage_files() {
    local dest=$1 prefix=${2:-/opt/ngx_mcig_module}
    local d="$dest$prefix"
    install -d "$d/build/run" "$d/conf.d" "$d/util"
    install -m 644 "$root/build/ngx_http_upstream_mcig_module.so" "$d/build/ngx_http_upstream_mcig_module.so"
    install -m 644 "$root"/conf.d/* "$d/conf.d/"
    # the repository's conf.d listens on loopback; in the image it listens
    # on every address of the container, so that "docker run -p" reaches it
    sed -i "s/^\( *listen \)127\.0\.0\.1:$port;/\1$port;/" "$d/conf.d/nginx.conf"
    grep -q "^ *listen $port;" "$d/conf.d/nginx.conf" || {
        echo "docker-steps: conf.d/nginx.conf has no \"listen 127.0.0.1:$port;\"" >&2
        return 1; }
    install -m 755 "$root/util/docker-steps.sh" "$d/util/docker-steps.sh"
    install -m 644 "$root/LICENSE" "$d/LICENSE"
}

step_build() {
    local dest=${1:?build: destination directory}
    cd "$root"
    bash util/setup.sh
    bash util/build.sh
    stage_files "$dest"
}

step_runtime() {
    local prefix=${1:-/opt/ngx_mcig_module}
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${runtime_packages[@]}" >/dev/null
    rm -rf /var/lib/apt/lists/*
    useradd --system --user-group --home-dir "$prefix" --shell /usr/sbin/nologin "$user"
    # nginx creates its temporary directories at start; as a non-root
    # master it can only find them
    install -d -o "$user" -g "$user" "$prefix/build/run" \
        /var/lib/nginx/body /var/lib/nginx/proxy /var/lib/nginx/fastcgi \
        /var/lib/nginx/uwsgi /var/lib/nginx/scgi
    setpriv --reuid="$user" --regid="$user" --init-groups \
        nginx -t -q -p "$prefix" -e stderr -c conf.d/nginx.conf
}

step_healthcheck() {
    curl -fsS -m 3 -o /dev/null "$health_url"
}

# --- ci ------------------------------------------------------------------

ci_fail() { echo "docker-steps: $*" >&2; exit 1; }

# the package of a library file, by its path or its real path, with or
# without /usr (merged /usr: dpkg knows the path the package ships)
lib_package() {
    local f real c
    real=$(readlink -f "$1")
    for c in "$1" "$real" "${real#/usr}" "/usr$1"; do
        f=$(dpkg -S "$c" 2>/dev/null | awk -F: 'NR == 1 { print $1 }') || true
        if [ -n "$f" ]; then echo "$f"; return 0; fi
    done
    echo unknown
}

step_ci() {
    local tmp excludes=() line p lib pkg so nginx_v dev_v

    tmp=$(mktemp -d /tmp/mcig-docker.XXXXXX)
    chmod 755 "$tmp"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT

    # COPY . . (without what .dockerignore leaves out)
    while IFS= read -r line; do
        line=${line%%#*}
        line=${line%/}
        [ -n "${line// }" ] && excludes+=("--exclude=./$line")
    done < "$root/.dockerignore"
    mkdir "$tmp/src"
    tar -C "$root" "${excludes[@]}" -cf - . | tar -C "$tmp/src" -xf -

    # RUN bash util/docker-steps.sh build /stage
    echo "docker-steps: build stage in $tmp/src"
    bash "$tmp/src/util/docker-steps.sh" build "$tmp/stage" \
        || ci_fail "the build stage failed"

    # COPY --from=build /stage/ /  ...the final stage's tree
    p="$tmp/stage/opt/ngx_mcig_module"
    for f in build/ngx_http_upstream_mcig_module.so conf.d/nginx.conf util/docker-steps.sh; do
        [ -s "$p/$f" ] || ci_fail "the final stage lacks $f"
    done
    [ -d "$p/build/run" ] || ci_fail "the final stage lacks build/run"

    # RUN util/docker-steps.sh runtime: the packages, checked rather than
    # installed (this machine's system is not ours to change)
    for pkg in "${runtime_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || ci_fail "runtime package $pkg is not installed here (util/setup.sh installs its -dev)"
    done
    so="$p/build/ngx_http_upstream_mcig_module.so"
    for lib in $(objdump -p "$so" | awk '$1 == "NEEDED" { print $2 }'); do
        line=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found { print $NF; found = 1 }')
        [ -n "$line" ] || ci_fail "$lib, needed by the module, is not installed"
        pkg=$(lib_package "$line")
        case " ${runtime_packages[*]} libc6 " in
            *" $pkg "*) ;;
            *) ci_fail "$lib comes from $pkg, which the final stage does not install" ;;
        esac
    done
    nginx_v=$(dpkg-query -W -f='${Version}' nginx)
    dev_v=$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || echo none)
    [ "$nginx_v" = "$dev_v" ] \
        || ci_fail "nginx $nginx_v at run time, the module built with nginx-dev $dev_v"

    # the non-root user: nobody here, mcig in the image; /var/lib/nginx as
    # the runtime step makes it, on a tmpfs of a mount namespace of our own
    # (the image's conf.d listens on port 8080 of every address, which the
    # demo may hold here: a network namespace of our own too)
    chown -R 65534:65534 "$p/build/run"
    if ! unshare --net --mount true 2>/dev/null; then
        echo "docker-steps: no namespaces here (not root?): nginx -t as $(id -un) only"
        nginx -t -q -p "$p" -e stderr -c conf.d/nginx.conf \
            || ci_fail "nginx -t fails with the final stage's configuration"
        echo "docker-steps: ok (partly)"
        return 0
    fi
    PREFIX_DIR="$p" STEPS="$p/util/docker-steps.sh" unshare --net --mount bash -c '
        set -u
        mount -t tmpfs tmpfs /var/lib/nginx
        install -d -o 65534 -g 65534 /var/lib/nginx/body /var/lib/nginx/proxy \
            /var/lib/nginx/fastcgi /var/lib/nginx/uwsgi /var/lib/nginx/scgi
        ip link set lo up
        run() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
        run nginx -t -q -p "$PREFIX_DIR" -e stderr -c conf.d/nginx.conf || {
            echo "docker-steps: nginx -t fails as a non-root user" >&2; exit 1; }
        # CMD, daemonized here
        run nginx -p "$PREFIX_DIR" -e stderr -c conf.d/nginx.conf || exit 1
        ok=1
        for i in $(seq 1 30); do
            if bash "$STEPS" healthcheck 2>/dev/null; then ok=0; break; fi
            sleep 0.2
        done
        master=$(cat "$PREFIX_DIR/build/run/nginx.pid")
        procs=$(ps -o uid= --ppid "$master" -p "$master")
        kill -QUIT "$master"
        for i in $(seq 1 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
        if echo "$procs" | awk "\$1 == 0 { found = 1 } END { exit !found }"; then
            echo "docker-steps: nginx processes run as root" >&2; exit 1
        fi
        [ "$(echo "$procs" | wc -l)" -ge 2 ] || {
            echo "docker-steps: no worker process" >&2; exit 1; }
        [ "$ok" = 0 ] || { echo "docker-steps: the HEALTHCHECK failed" >&2;
                           cat "$PREFIX_DIR/build/run/error.log" >&2; exit 1; }
    ' || ci_fail "the final stage does not start or is not healthy"
    echo "docker-steps: the final stage's nginx ran as a non-root user; HEALTHCHECK passed"

    if grep -E '\[(alert|crit|emerg)\]' "$p/build/run/error.log" 2>/dev/null; then
        ci_fail "the final stage's error log has the lines above"
    fi
    echo "docker-steps: ok"
}

cmd=${1:-ci}
shift || true
case "$cmd" in
    build) step_build "$@" ;;
    runtime) step_runtime "$@" ;;
    healthcheck) step_healthcheck ;;
    ci) step_ci ;;
    *) echo "usage: $0 build DEST | runtime [PREFIX] | healthcheck | ci" >&2; exit 2 ;;
esac
