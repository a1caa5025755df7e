#!/usr/bin/env bash
# Checks ngx_mcig_module against newer nginx releases than bookworm's 1.22.1:
#
#  - nginx 1.26.x, from the upstream tarball of Debian trixie's source
#    package: nginx itself with Debian's configure flags and this module
#    (--add-dynamic-module), built in build/nginx-<version>/, then the
#    Test::Nginx suite with 1 and with 4 worker processes;
#  - nginx 1.30.x, from Debian sid's nginx-dev (headers and configure, no
#    sources of nginx itself): the module compiled against it with Debian's
#    flags, warnings as errors, in build/nginx-<version>-dev/.
#
# Prints a summary and exits non-zero on any failure.  Debian's other suites
# are reached with private apt configurations (util/nginx-src.sh): they never
# enter the system's sources.
#
#   util/compat.sh                     everything
#   util/compat.sh t/004*.t            the suite with these files only
#   util/compat.sh --no-suite          builds only
#   util/compat.sh --workers "1 2"     other worker counts (default "1 4")
#   util/compat.sh --nginx-src DIR     also build and test the nginx source
#                                      tree DIR (e.g. a checkout of a
#                                      release); repeatable
#
# The suite listens on TEST_NGINX_SERVER_PORT (Test::Nginx's default 1984);
# set it to run next to another suite.  Logs: build/compat/<label>.log.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=util/nginx-src.sh
. "$root/util/nginx-src.sh"

suite=1
workers="1 4"
extra_srcs=()
files=()

while [ $# -gt 0 ]; do
    case "$1" in
        --no-suite)  suite=0 ;;
        --workers)   workers=$2; shift ;;
        --nginx-src) extra_srcs+=("$(cd "$2" && pwd)"); shift ;;
        -h|--help)   sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*)          echo "compat: unknown option $1" >&2; exit 2 ;;
        *)           files+=("$1") ;;
    esac
    shift
done

if [ "${#files[@]}" = 0 ]; then
    mapfile -t files < <(cd "$root" && ls t/*.t)
fi

bash util/setup.sh || exit 1
mkdir -p build/compat

summary=()
failed=0

note() {
    summary+=("$(printf '%-34s %s' "$1" "$2")")
    echo "compat: $1: $2"
}

# run_suite LABEL NGINX MODULE WORKERS: the Test::Nginx suite with that nginx
# binary and module, from a directory of its own (build/compat/run-LABEL:
# t/ and conf.d/ linked, build/ngx_http_upstream_mcig_module.so being MODULE, for
# t/008-conf-d.t) with its own server root.
run_suite() {
    local label=$1 binary=$2 module=$3 n=$4 dir counts t0 ok bad
    dir="$root/build/compat/run-$label"
    mkdir -p "$dir/build"
    ln -sfn "$root/t" "$dir/t"
    ln -sfn "$root/conf.d" "$dir/conf.d"
    ln -sfn "$module" "$dir/build/ngx_http_upstream_mcig_module.so"
    counts="$dir/counts"
    rm -f "$counts"

    t0=$SECONDS
    (cd "$dir" && env TEST_NGINX_BINARY="$binary" \
         TEST_NGINX_LOAD_MODULES="$module" \
         TEST_NGINX_SERVROOT="$dir/servroot" \
         MCIG_WORKERS="$n" PERL5OPT="-I$root/util/perl -MMcigMode" \
         MCIG_COUNTS="$counts" \
         timeout 3600 perl -MTAP::Harness -e '
        my $h = TAP::Harness->new({ verbosity => 0, lib => ["t/lib"] });
        my $agg = $h->runtests(@ARGV);
        open(my $f, ">", $ENV{MCIG_COUNTS}) or die;
        # failed assertions, and files that died without one
        my ($bad, @files) = (0);
        for my $d ($agg->descriptions) {
            my ($p) = $agg->parsers($d);
            my $n = scalar($p->failed);
            $n ||= 1 if $p->exit || $p->parse_errors;
            $bad += $n;
            push @files, $d if $n;
        }
        printf $f "%d %d %s\n", scalar($agg->passed), $bad, join(",", @files);
    ' "${files[@]}") >"build/compat/$label.log" 2>&1
    read -r ok bad where < "$counts" 2>/dev/null || { ok=0; bad=1; where=""; }

    grep -E '^#   Failed test|Bailout called' "build/compat/$label.log" \
        | cut -c1-220 | head -20
    note "$label" "$ok passed, $bad failed${where:+ in $where} ($((SECONDS - t0)) s)"
    failed=$((failed + bad))
}

# --- nginx 1.26 (trixie): whole nginx, then the suite --------------------

t0=$SECONDS
if private_apt_setup trixie "deb-src trixie" \
   && src=$(fetch_nginx_source trixie "$root/build/src/trixie"); then
    version=${src##*/nginx-}
    dest="$root/build/nginx-$version"
    if build_nginx "$src" "$dest" "-g -O2 -Wall -Wextra -Wno-unused-parameter" ""; then
        note "nginx $version build" "ok ($(cat "$src/.mcig-origin") source, $((SECONDS - t0)) s)"
        if [ "$suite" = 1 ]; then
            for n in $workers; do
                run_suite "$version-w$n" "$dest/objs/nginx" \
                    "$dest/objs/ngx_http_upstream_mcig_module.so" "$n"
            done
        fi
    else
        note "nginx $version build" "FAILED (see $dest/make.log)"
        failed=$((failed + 1))
    fi
else
    note "nginx (trixie) source" "FAILED to fetch"
    failed=$((failed + 1))
fi

# --- nginx 1.30 (sid's nginx-dev): the module compiled against it ---------

t0=$SECONDS
debdir="$root/build/apt/sid/debs"
mkdir -p "$debdir"
if private_apt_setup sid "deb sid" \
   && (cd "$debdir" && rm -f nginx-dev_*.deb \
       && private_apt sid download nginx-dev >"$debdir/download.log" 2>&1); then
    deb=$(ls "$debdir"/nginx-dev_*.deb)
    version=$(dpkg-deb -f "$deb" Version)
    version=${version%%-*}
    dev="$root/build/nginx-$version-dev"
    stamp="$(md5sum "$deb" | cut -d' ' -f1)|$(md5sum "$root/config" | cut -d' ' -f1)"
    if [ "$(cat "$dev/.mcig-stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$dev"
        mkdir -p "$dev"
        dpkg -x "$deb" "$dev/root"
        cp -a "$dev/root/usr/share/nginx/src" "$dev/tree"
        # Debian's flags (conf_flags evaluates dpkg-architecture and
        # dpkg-buildflags), with warnings as errors added to its CFLAGS
        # shellcheck disable=SC1091
        . "$dev/tree/conf_flags"
        flags=()
        for f in "${NGX_CONF_FLAGS[@]}"; do
            case "$f" in --with-cc-opt=*|--with-ld-opt=*) ;; *) flags+=("$f") ;; esac
        done
        cc_opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)"
        cc_opt="$cc_opt -Wall -Wextra -Wno-unused-parameter -Werror"
        ld_opt="$(dpkg-buildflags --get LDFLAGS) -fPIC"
        if (cd "$dev/tree" && ./configure "${flags[@]}" --with-cc-opt="$cc_opt" \
                --with-ld-opt="$ld_opt" --add-dynamic-module="$root" \
                >"$dev/configure.log" 2>&1); then
            echo "$stamp" > "$dev/.mcig-stamp"
        fi
    fi
    if [ ! -f "$dev/.mcig-stamp" ]; then
        tail -20 "$dev/configure.log" >&2
        note "nginx $version-dev compile" "FAILED (configure, see $dev/configure.log)"
        failed=$((failed + 1))
    elif (cd "$dev/tree" && make -f objs/Makefile modules >"$dev/make.log" 2>&1); then
        note "nginx $version-dev compile" "ok, no warnings ($((SECONDS - t0)) s)"
    else
        grep -E -A3 'error|warning' "$dev/make.log" | head -60 >&2
        note "nginx $version-dev compile" "FAILED (see $dev/make.log)"
        failed=$((failed + 1))
    fi
else
    note "nginx-dev (sid)" "FAILED to fetch (see $debdir/download.log)"
    failed=$((failed + 1))
fi

# --- other nginx source trees, given with --nginx-src ------------------------

for src in "${extra_srcs[@]}"; do
    t0=$SECONDS
    version=$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$src/src/core/nginx.h")
    if [ ! -x "$src/configure" ] && [ -x "$src/auto/configure" ]; then
        cfg_src="$root/build/src/tree-$version"     # a git checkout
        rm -rf "$cfg_src"
        cp -a "$src" "$cfg_src"
        cp "$cfg_src/auto/configure" "$cfg_src/configure"
        src=$cfg_src
    fi
    dest="$root/build/nginx-$version"
    if build_nginx "$src" "$dest" "-g -O2 -Wall -Wextra -Wno-unused-parameter" ""; then
        note "nginx $version build" "ok ($((SECONDS - t0)) s)"
        if [ "$suite" = 1 ]; then
            for n in $workers; do
                run_suite "$version-w$n" "$dest/objs/nginx" \
                    "$dest/objs/ngx_http_upstream_mcig_module.so" "$n"
            done
        fi
    else
        note "nginx $version build" "FAILED (see $dest/make.log)"
        failed=$((failed + 1))
    fi
done

echo
echo "compat summary:"
printf '  %s\n' "${summary[@]}"
if [ "$failed" = 0 ]; then
    echo "compat: all passed"
else
    echo "compat: $failed failed"
fi
[ "$failed" = 0 ]
