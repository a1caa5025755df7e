# shellcheck shell=bash disable=SC2154,SC2016
# Sourced by util/compat.sh and util/build-asan.sh: fetches nginx from
# Debian's archive with a private apt configuration, and builds a whole nginx
# with ngx_mcig_module in its tree.  Expects $root (the repository).
#
# Other Debian suites never enter the system's apt sources: each suite gets
# its own sources list, lists and cache under build/apt/<suite>/, its archive
# URI taken from the bookworm entry of the system's sources (no host is
# written here), as util/setup.sh does for Test::Nginx.

# Debian's configure flags for its nginx packages (nginx-dev's conf_flags,
# the same from bookworm to sid but for HTTP/3, added below when the source
# knows it): paths, then modules.  With the same paths the binary behaves
# as /usr/sbin/nginx in the tests (nginx -t of conf.d included).
debian_nginx_flags=(
    --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf
    --http-log-path=/var/log/nginx/access.log --error-log-path=stderr
    --lock-path=/var/lock/nginx.lock --pid-path=/run/nginx.pid
    --modules-path=/usr/lib/nginx/modules
    --http-client-body-temp-path=/var/lib/nginx/body
    --http-fastcgi-temp-path=/var/lib/nginx/fastcgi
    --http-proxy-temp-path=/var/lib/nginx/proxy
    --http-scgi-temp-path=/var/lib/nginx/scgi
    --http-uwsgi-temp-path=/var/lib/nginx/uwsgi
    --with-compat --with-debug --with-pcre-jit --with-http_ssl_module
    --with-http_stub_status_module --with-http_realip_module
    --with-http_auth_request_module --with-http_v2_module
    --with-http_dav_module --with-http_slice_module --with-threads
)

# The URI of the archive behind the system's bookworm entry.
debian_archive_uri() {
    apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
        | awk -v rel="${1:-bookworm}" '$2 == rel { print $1; exit }'
}

# private_apt_setup NAME "deb-src SUITE" ["deb-src SUITE" ...]
#   writes build/apt/NAME/sources.list with the bookworm entry's archive
#   (bookworm-security's for *-security suites) and updates its lists when
#   they are missing or older than a day.
private_apt_setup() {
    local name=$1 line type suite uri dir
    shift
    dir="$root/build/apt/$name"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    : > "$dir/sources.list.new"

    for line in "$@"; do
        read -r type suite <<< "$line"
        case "$suite" in
            *-security) uri=$(debian_archive_uri bookworm-security) ;;
            *)          uri=$(debian_archive_uri bookworm) ;;
        esac
        if [ -z "$uri" ]; then
            echo "nginx-src: no bookworm archive in apt's sources" \
                 "(for $suite)" >&2
            [ "$suite" = "${suite%-security}" ] && return 1
            continue
        fi
        echo "$type $uri $suite main" >> "$dir/sources.list.new"
    done

    if ! cmp -s "$dir/sources.list.new" "$dir/sources.list" \
       || [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Sources' -mmin -1440; \
                  find "$dir/lists" -maxdepth 1 -name '*Packages' -mmin -1440)" ]
    then
        mv "$dir/sources.list.new" "$dir/sources.list"
        private_apt "$name" update >"$dir/update.log" 2>&1 || {
            echo "nginx-src: apt-get update for $name failed:" >&2
            tail -5 "$dir/update.log" >&2
            return 1
        }
    else
        rm -f "$dir/sources.list.new"
    fi
}

# private_apt NAME ARGS...: apt-get with that private configuration.
private_apt() {
    local dir="$root/build/apt/$1"
    shift
    apt-get -q -o Dir::Etc::SourceList="$dir/sources.list" \
        -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$dir/lists" \
        -o Dir::Cache="$dir/cache" \
        -o Acquire::Check-Valid-Until=false \
        -o APT::Sandbox::User=root \
        "$@"
}

# private_apt_cache NAME ARGS...: apt-cache with that private configuration.
private_apt_cache() {
    local dir="$root/build/apt/$1"
    shift
    apt-cache -o Dir::Etc::SourceList="$dir/sources.list" \
        -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$dir/lists" \
        -o Dir::Cache="$dir/cache" \
        "$@"
}

# fetch_nginx_source NAME DIR: the nginx source package of that private
# configuration, unpacked; prints the source tree's path.  Debian's source
# package (.dsc, upstream tarball, Debian's patches, applied) when the
# mirror has one for the newest upstream version: the newest revision it
# has whole (a security archive's mirror may lack the newest .dsc and
# patches, the main archive's then has an earlier revision).  The upstream
# tarball alone (checked against the Sources index) otherwise.  The tree's
# .mcig-origin says which: "debian <version>" or "upstream".
fetch_nginx_source() {
    local name=$1 dir=$2 uris orig sum dsc tree version v
    mkdir -p "$dir"

    uris=$(private_apt "$name" source --print-uris nginx 2>/dev/null) || return 1
    orig=$(echo "$uris" | awk -F"'" '/\.orig\.tar\.gz /{ print $3 }' \
           | awk '{ print $1; exit }')
    sum=$(echo "$uris" | awk '/\.orig\.tar\.gz /{ sub("SHA256:", "", $4);
                                                  print $4; exit }')
    if [ -z "$orig" ]; then
        echo "nginx-src: no nginx source package in $name" >&2
        return 1
    fi
    version=${orig#nginx_}
    version=${version%.orig.tar.gz}
    tree="$dir/nginx-$version"

    # a tree from Debian's source package is kept; one from the upstream
    # tarball only until Debian's can be had
    if [ -x "$tree/configure" ] \
       && [ "$(cut -d' ' -f1 "$tree/.mcig-origin" 2>/dev/null)" = debian ]; then
        echo "$tree"
        return 0
    fi

    if command -v dpkg-source >/dev/null; then
        for v in $(private_apt_cache "$name" showsrc --only-source nginx \
                       2>/dev/null | sed -n 's/^Version: //p' | sort -u -rV); do
            case "$v" in
                "$version"-*|*:"$version"-*) ;;
                *) continue ;;
            esac
            dsc=$(private_apt "$name" source --print-uris "nginx=$v" 2>/dev/null \
                  | awk -F"'" '/\.dsc /{ print $3 }' | awk '{ print $1; exit }')
            [ -n "$dsc" ] || continue
            # the .dsc and Debian's patches may be missing from the mirror
            if [ ! -f "$dir/$dsc" ]; then
                (cd "$dir" && private_apt "$name" source --download-only \
                     "nginx=$v" >"$dir/download.log" 2>&1) || continue
            fi
            rm -rf "$tree.new"
            if (cd "$dir" && dpkg-source -x "$dsc" "${tree##*/}.new" \
                    >"$dir/unpack.log" 2>&1) && [ -x "$tree.new/configure" ]
            then
                echo "debian $v" > "$tree.new/.mcig-origin"
                rm -rf "$tree"
                mv "$tree.new" "$tree"
                echo "$tree"
                return 0
            fi
            rm -rf "$tree.new"
        done
    fi

    if [ -x "$tree/configure" ]; then
        echo "$tree"
        return 0
    fi

    if [ ! -f "$dir/$orig" ]; then
        (cd "$dir" && private_apt "$name" source --download-only nginx \
             >"$dir/download.log" 2>&1) || true
    fi
    if [ ! -f "$dir/$orig" ] \
       || [ "$(sha256sum "$dir/$orig" | cut -d' ' -f1)" != "$sum" ]; then
        echo "nginx-src: could not fetch $orig from $name" >&2
        tail -5 "$dir/download.log" >&2 2>/dev/null
        return 1
    fi

    rm -rf "$tree"
    tar -C "$dir" -xzf "$dir/$orig"
    echo "upstream" > "$tree/.mcig-origin"
    echo "$tree"
}

# build_nginx SRC DEST CC_OPT LD_OPT: nginx from the source tree SRC with
# Debian's flags and this module (--add-dynamic-module), built in DEST (a
# copy of SRC, configured again when the flags change, rebuilt
# incrementally otherwise).  DEST/objs/nginx and
# DEST/objs/ngx_http_upstream_mcig_module.so; fails on any warning in the
# module's sources.
build_nginx() {
    local src=$1 dest=$2 cc_opt=$3 ld_opt=$4 stamp flags
    flags=("${debian_nginx_flags[@]}")
    if grep -q 'with-http_v3_module' "$src/auto/options"; then
        flags+=(--with-http_v3_module)
    fi

    stamp="$src|$(cat "$src/.mcig-origin" 2>/dev/null)|${flags[*]}|$cc_opt|$ld_opt|$(md5sum "$root/config" | cut -d' ' -f1)"
    if [ ! -f "$dest/objs/Makefile" ] \
       || [ "$(cat "$dest/.mcig-stamp" 2>/dev/null)" != "$stamp" ]; then
        if [ "$src" != "$dest" ]; then
            rm -rf "$dest"
            cp -a "$src" "$dest"
        fi
        (cd "$dest" && ./configure "${flags[@]}" \
            --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$root" >"$dest/configure.log" 2>&1) || {
            echo "nginx-src: configure failed in $dest:" >&2
            tail -20 "$dest/configure.log" >&2
            return 1
        }
        echo "$stamp" > "$dest/.mcig-stamp"
    fi

    (cd "$dest" && make -j"$(nproc)" -f objs/Makefile >"$dest/make.log" 2>&1) || {
        echo "nginx-src: build failed in $dest, see $dest/make.log:" >&2
        grep -E 'error|warning' "$dest/make.log" | head -40 >&2
        return 1
    }

    if grep -A3 "^$root/ngx_mcig_module/.*warning:" "$dest/make.log" >&2; then
        echo "nginx-src: the module compiles with warnings in $dest" >&2
        return 1
    fi
}
