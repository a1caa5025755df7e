#!/usr/bin/env bash
# Builds nginx from Debian bookworm's source package (1.22.1, as installed:
# the newest revision the mirror has whole, Debian's patches applied; the
# upstream tarball if it has none, which the last line says) with
# ngx_mcig_module in its tree, both with AddressSanitizer and
# UndefinedBehaviorSanitizer, into build/nginx-asan/:
#   build/nginx-asan/objs/nginx
#   build/nginx-asan/objs/ngx_http_upstream_mcig_module.so
# Used by util/test.sh --asan.  Bookworm's deb-src entries live in a private
# apt configuration (util/nginx-src.sh), never in the system's sources.
#
# NGX_DEBUG_PALLOC makes every ngx_palloc() a malloc() of its own, so ASan
# sees overflows and uses after free inside nginx's pools (the "no-pool"
# patch's effect, built into nginx).  Shared memory (ngx_slab) stays out of
# ASan's sight.  UBSan reports and goes on (no -fno-sanitize-recover):
# nginx's own code does unaligned loads on x86 on purpose; util/test.sh
# sorts the module's reports from nginx's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=util/nginx-src.sh
. "$root/util/nginx-src.sh"

sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer"

private_apt_setup bookworm "deb-src bookworm" "deb-src bookworm-security"
src=$(fetch_nginx_source bookworm "$root/build/src/bookworm")

# Modules stay mapped when nginx exits (RTLD_NODELETE), so that LeakSanitizer,
# which reports at exit, after nginx's dlclose(), can name their frames.
# Reloads are unchanged: nginx opens the new cycle's modules before it
# closes the old cycle's, so a module is never unmapped while nginx runs.
asan_src="$src-asan"
if [ ! -x "$asan_src/configure" ] \
   || ! cmp -s "$src/.mcig-origin" "$asan_src/.mcig-origin"; then
    rm -rf "$asan_src"
    cp -a "$src" "$asan_src"
    sed -i 's/dlopen((char \*) path, RTLD_NOW | RTLD_GLOBAL)/dlopen((char *) path, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE)/' \
        "$asan_src/src/os/unix/ngx_dlopen.h"
    grep -q RTLD_NODELETE "$asan_src/src/os/unix/ngx_dlopen.h" || {
        echo "build-asan: could not patch ngx_dlopen.h" >&2
        rm -rf "$asan_src"
        exit 1
    }
fi

build_nginx "$asan_src" "$root/build/nginx-asan" \
    "-g -O1 $sanitize -DNGX_DEBUG_PALLOC=1 -Wall -Wextra -Wno-unused-parameter" \
    "$sanitize"

echo "build-asan: $root/build/nginx-asan/objs/nginx" \
     "($(cat "$src/.mcig-origin") source of ${src##*/}, RTLD_NODELETE)"
