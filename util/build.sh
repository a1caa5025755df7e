#!/usr/bin/env bash
# Builds ngx_mcig_module as a dynamic module for the installed nginx, with
# nginx-dev's configure script and the flags Debian built nginx with, into
# build/ngx_http_upstream_mcig_module.so.
#
#   NGINX_SRC=/path/to/nginx-source util/build.sh   builds against another
#   nginx source tree instead (configured with --with-compat).
#   MCIG_CFLAGS="..." adds compiler flags (sanitizers, -O0, ...).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=${NGINX_SRC:-/usr/share/nginx/src}
out="$root/build"
tree="$out/nginx"

if [ ! -x "$src/configure" ]; then
    echo "build: no nginx configure script in $src (run util/setup.sh)" >&2
    exit 1
fi

mkdir -p "$out"

# nginx's configure writes into its tree: work on a copy, configured once
# per source tree and compiler flags.
stamp="$src|${MCIG_CFLAGS:-}|$(md5sum "$root/config" | cut -d" " -f1)"
if [ ! -f "$tree/objs/Makefile" ] || [ "$(cat "$tree/.mcig-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$tree"
    cp -a "$src" "$tree"
    flags=()
    if [ -f "$tree/conf_flags" ]; then
        # shellcheck disable=SC1091
        . "$tree/conf_flags"
        flags=("${NGX_CONF_FLAGS[@]}")
    else
        flags=(--with-compat --with-http_v2_module --with-http_ssl_module)
    fi
    (cd "$tree" && ./configure "${flags[@]}" \
        --with-cc-opt="-g -O2 -Wall -Wextra -Wno-unused-parameter ${MCIG_CFLAGS:-}" \
        --with-ld-opt="${MCIG_CFLAGS:-}" \
        --add-dynamic-module="$root" >"$out/configure.log" 2>&1) || {
        echo "build: nginx configure failed, see $out/configure.log" >&2
        tail -20 "$out/configure.log" >&2
        exit 1
    }
    echo "$stamp" > "$tree/.mcig-stamp"
fi

(cd "$tree" && make -f objs/Makefile modules >"$out/make.log" 2>&1) || {
    echo "build: compilation failed, see $out/make.log" >&2
    grep -E 'error|warning' "$out/make.log" | head -40 >&2
    exit 1
}

if grep -q 'warning:' "$out/make.log"; then
    echo "build: the module compiles with warnings:" >&2
    grep -A3 'warning:' "$out/make.log" | head -40 >&2
    exit 1
fi

# nginx names a dynamic module after its first module; the file keeps that
# name, so that what nginx's own ./configure builds is what the docs load.
# Copy, then rename into place: overwriting the file in place would crash an
# nginx that has it loaded.
so=ngx_http_upstream_mcig_module.so
cp "$tree/objs/$so" "$out/$so.new"
mv -f "$out/$so.new" "$out/$so"
echo "build: $out/$so"
