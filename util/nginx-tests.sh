#!/usr/bin/env bash
# Runs nginx's own functional tests (nginx-tests) against the module: is it a
# drop-in?  Not run in CI; nginx-tests is not part of this repository.
#
#   util/nginx-tests.sh [--tests DIR] [plain|pool|bare|all] [FILE.t ...]
#
# DIR (or NGINX_TESTS=DIR) is a checkout of nginx-tests:
#   git clone https://github.com/nginx/nginx-tests.git
# It is only read: the tests run from a private copy.
#
#   plain  the module loaded (load_module via TEST_NGINX_GLOBALS), nothing
#          else changed;
#   pool   also `mcig_pool;` first in every http upstream block where it is
#          allowed: no other balancing method, no backup server, no server
#          parameter of nginx Plus (the copy is rewritten; the list of
#          upstreams changed and left is in the pool log);
#   all    both (default);
#   bare   without the module: what fails here is not the module's doing.
#
# FILE.t default to the upstream, keepalive, max_conns, zone, next_upstream
# and non_idempotent tests.  Environment:
#   TEST_NGINX_BINARY    nginx to test (default /usr/sbin/nginx)
#   TEST_NGINX_MODULES   its dynamic modules (default: nginx's --modules-path)
#   MCIG_SO              the module (default build/ngx_http_upstream_mcig_module.so, built
#                        first by util/build.sh)
#   NGINX_TESTS_TIMEOUT  seconds per file before it is killed (default 180)
#   NGINX_TESTS_KEEP=1   keep the private copy and the tests' directories
# Logs: build/nginx-tests/<mode>.log (prove -v), pool-rewrites.txt.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tests=${NGINX_TESTS:-}
mode=all
files=()

usage() {
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --tests) tests=${2:-}; shift 2 ;;
        --tests=*) tests=${1#--tests=}; shift ;;
        bare|plain|pool|all) mode=$1; shift ;;
        -h|--help) usage ;;
        *.t) files+=("$(basename "$1")"); shift ;;
        *) echo "nginx-tests: unknown argument '$1'" >&2; usage ;;
    esac
done

if [ -z "$tests" ] || [ ! -f "$tests/lib/Test/Nginx.pm" ]; then
    echo "nginx-tests: no nginx-tests checkout${tests:+ in $tests}:" \
         "git clone https://github.com/nginx/nginx-tests.git, then" \
         "NGINX_TESTS=/path/to/nginx-tests $0 (or --tests /path)" >&2
    exit 2
fi
tests=$(cd "$tests" && pwd)

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
if [ ! -x "$TEST_NGINX_BINARY" ]; then
    echo "nginx-tests: no nginx binary $TEST_NGINX_BINARY" >&2
    exit 2
fi
if [ -z "${TEST_NGINX_MODULES:-}" ]; then
    TEST_NGINX_MODULES=$("$TEST_NGINX_BINARY" -V 2>&1 \
        | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')
    TEST_NGINX_MODULES=${TEST_NGINX_MODULES:-$(dirname "$TEST_NGINX_BINARY")}
fi
export TEST_NGINX_MODULES

so=${MCIG_SO:-}
if [ -z "$so" ]; then
    "$root/util/build.sh" >/dev/null
    so=$root/build/ngx_http_upstream_mcig_module.so
fi
so=$(cd "$(dirname "$so")" && pwd)/$(basename "$so")
[ -f "$so" ] || { echo "nginx-tests: no module $so" >&2; exit 2; }

timeout=${NGINX_TESTS_TIMEOUT:-180}
logs=$root/build/nginx-tests
mkdir -p "$logs"
rm -f "$logs"/*.summary

work=$(mktemp -d "${TMPDIR:-/tmp}/mcig-nginx-tests.XXXXXX")
cleanup() {
    if [ -n "${NGINX_TESTS_KEEP:-}" ]; then
        echo "nginx-tests: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

if [ ${#files[@]} -eq 0 ]; then
    (cd "$tests" && ls upstream*.t proxy_next_upstream*.t \
        proxy_non_idempotent.t proxy_*keepalive*.t) > "$work/files"
    mapfile -t files < "$work/files"
fi
for f in "${files[@]}"; do
    [ -f "$tests/$f" ] || { echo "nginx-tests: no $tests/$f" >&2; exit 2; }
done

chmod 755 "$work"

# Debian's nginx -V lists modules built =dynamic whose .so files come in
# other packages (libnginx-mod-*).  Test::Nginx would load_module each one,
# and nginx would not start: hide those that are not installed, so that the
# tests needing them skip, as on an nginx built without them.
mkdir -p "$work/shim"
cat > "$work/shim/McigNginxTests.pm" <<'EOF'
package McigNginxTests;

use strict;
use warnings;

use Test::Nginx ();

my %so = (
    http_geoip_module        => 'ngx_http_geoip_module',
    http_image_filter_module => 'ngx_http_image_filter_module',
    http_perl_module         => 'ngx_http_perl_module',
    http_xslt_module         => 'ngx_http_xslt_filter_module',
    mail                     => 'ngx_mail_module',
    stream                   => 'ngx_stream_module',
    stream_geoip_module      => 'ngx_stream_geoip_module',
);

my $dir = $ENV{TEST_NGINX_MODULES};
my $args = `$Test::Nginx::NGINX -V 2>&1`;
$args =~ s{(\s--with-(\S+?)=dynamic)}{
    my $f = $so{$2};
    (defined $f && -f "$dir/$f.so") ? $1 : '';
}ge;

no warnings 'redefine';
my $new = \&Test::Nginx::new;
*Test::Nginx::new = sub {
    my $t = $new->(@_);
    $t->{_configure_args} = $args;
    # Run as root, nginx's workers are nobody: they must read the test's
    # files (the directory is created 0700).
    chmod 0755, $t->{_testdir} if $> == 0;
    return $t;
};

1;
EOF

# Puts `mcig_pool;` first in each http upstream block that may have it and
# prints one line per upstream block: file, name, what was done and why.
cat > "$work/rewrite.pl" <<'EOF'
use strict;
use warnings;

for my $file (@ARGV) {
    open my $in, '<', $file or die "$file: $!\n";
    my @lines = <$in>;
    close $in;

    my ($ctx, @out) = ('');
    while (defined(my $line = shift @lines)) {
        $ctx = $1 if $line =~ /^\s*(http|stream|mail)\s*\{/;
        push @out, $line;

        next unless $line =~ /^(\s*)upstream\s+(\S+)\s*\{\s*$/;
        my ($indent, $name) = ($1, $2);

        my @body;
        while (@lines && $lines[0] !~ /^\s*\}/) {
            push @body, shift @lines;
        }
        my $body = join '', grep { !/^\s*#/ } @body;

        my $why;
        if ($ctx ne 'http') {
            $why = "$ctx context";
        } elsif ($body =~ /^\s*(hash|ip_hash|least_conn|least_time|random
                                |sticky|ntlm|mcig_pool)\b/mx) {
            $why = "has $1";
        } elsif ($body =~ /^\s*server\s[^;]*\s(backup)\b/m) {
            $why = "backup server (refused by mcig_pool)";
        } elsif ($body =~ /^\s*server\s[^;]*\s(resolve|service=|route=
                                              |slow_start=|drain)/mx
                 || $body =~ /^\s*(resolver|state)\b/m)
        {
            $why = "nginx Plus $1";
        }

        (my $base = $file) =~ s{.*/}{};
        if (defined $why) {
            print "$base\t$name\tleft\t$why\n";
        } else {
            print "$base\t$name\tmcig_pool\n";
            push @out, "$indent    mcig_pool;\n";
        }
        push @out, @body;
    }

    open my $o, '>', $file or die "$file: $!\n";
    print $o @out;
    close $o;
}
EOF

# Summarizes a prove -v log: per file, the subtests planned and passed, the
# failed ones by name, the skipped files.
cat > "$work/summary.pl" <<'EOF'
use strict;
use warnings;

my ($mode, $log, $rewrites) = @ARGV;
open my $in, '<', $log or die "$log: $!\n";

my (%r, @order, $cur);
while (<$in>) {
    if (/^(\S+\.t) \.+ ?(.*)$/) {
        $cur = $1;
        push @order, $cur;
        $r{$cur} = { plan => 0, ok => 0, todo => 0, skipped => 0, fail => [] };
        $_ = $2;
        $r{$cur}{skip} = $1 if /^skipped:\s*(.*)/;
        next if $_ eq '';
    }
    next unless defined $cur;
    my $t = $r{$cur};
    if (/^1\.\.(\d+)(?:\s*#\s*(?:skip|SKIP)\S*\s*(.*))?/) {
        $t->{plan} = $1;
        $t->{skip} = $2 // 'skipped' if $1 == 0;
    } elsif (/^(not )?ok (\d+)\s*(?:- )?(.*)$/) {
        my ($not, $n, $name) = ($1, $2, $3);
        if ($name =~ /#\s*TODO/i) {
            $t->{todo}++;
        } elsif ($name =~ /^#\s*skip/i) {
            $t->{skipped}++;
        } elsif ($not) {
            push @{$t->{fail}}, "$n $name";
        } else {
            $t->{ok}++;
        }
    } elsif (/^Dubious, test returned (\d+)/) {
        $t->{died} = $1 == 124 || $1 == 137 ? 'timed out' : "exit $1";
    }
}

my ($files, $ran, $planned, $ok, $todo, $sk, $failed, @bad, @skipped)
    = (0) x 7;
for my $f (@order) {
    my $t = $r{$f};
    $files++;
    if (defined $t->{skip}) {
        push @skipped, "$f ($t->{skip})";
        next;
    }
    $ran++;
    $planned += $t->{plan};
    $ok += $t->{ok};
    $todo += $t->{todo};
    $sk += $t->{skipped};
    my $seen = $t->{ok} + $t->{todo} + $t->{skipped} + @{$t->{fail}};
    $failed += @{$t->{fail}};
    my @why = @{$t->{fail}};
    if ($seen < $t->{plan}) {
        push @why, ($t->{plan} - $seen) . " not run ("
            . ($t->{died} // 'died') . ")";
        $failed += $t->{plan} - $seen;
    }
    push @bad, map { "  $f: $_" } @why;
}

printf "%s: %d files, %d run, %d skipped; %d subtests, %d passed, "
    . "%d skipped, %d TODO, %d failed\n",
    $mode, $files, $ran, scalar @skipped, $planned, $ok, $sk, $todo, $failed;
print "$mode: failed:\n", join("\n", @bad), "\n" if @bad;
print "$mode: skipped: ", join(', ', @skipped), "\n" if @skipped;

# pool: the same over the files that ran with mcig_pool in an upstream.
exit unless defined $rewrites;
open my $rw, '<', $rewrites or die "$rewrites: $!\n";
my %pools;
/^(\S+)\t\S+\tmcig_pool$/ and $pools{$1}++ while <$rw>;
my ($n, $u, $p, $fl) = (0) x 4;
for my $f (grep { $pools{$_} && !defined $r{$_}{skip} } @order) {
    my $t = $r{$f};
    $n++;
    $u += $pools{$f};
    $p += $t->{plan};
    $fl += @{$t->{fail}};
    my $seen = $t->{ok} + $t->{todo} + $t->{skipped} + @{$t->{fail}};
    $fl += $t->{plan} - $seen if $seen < $t->{plan};
}
print "$mode: with mcig_pool: $n files run ($u upstreams), $p subtests, "
    . "$fl failed\n";
EOF

run() {
    local m=$1 copy=$work/$1 globals="load_module $so;" rewrites=
    [ "$m" != bare ] || globals=
    mkdir -m 755 "$copy" "$work/tmp-$m"
    cp -a "$tests/lib" "$copy/"
    for f in "${files[@]}"; do cp -a "$tests/$f" "$copy/"; done

    if [ "$m" = pool ]; then
        (cd "$copy" && perl "$work/rewrite.pl" "${files[@]}") \
            > "$logs/pool-rewrites.txt"
        rewrites=$logs/pool-rewrites.txt
        echo "pool: mcig_pool put into" \
            "$(grep -c $'\tmcig_pool$' "$logs/pool-rewrites.txt" || true)" \
            "upstreams, $(grep -c $'\tleft\t' "$logs/pool-rewrites.txt" \
            || true) left ($logs/pool-rewrites.txt)"
    fi

    echo "$m: ${#files[@]} files, up to ${timeout}s each, log $logs/$m.log"
    # timeout signals its whole process group: the test, and the nginx and
    # backends it started.
    (cd "$copy" && \
        TMPDIR=$work/tmp-$m \
        TEST_NGINX_GLOBALS=$globals \
        prove -v --exec "timeout -k 10 $timeout perl -I$copy/lib \
            -I$work/shim -MMcigNginxTests" "${files[@]}") \
        > "$logs/$m.log" 2>&1 || true
    perl "$work/summary.pl" "$m" "$logs/$m.log" \
        ${rewrites:+"$rewrites"} | tee "$logs/$m.summary"
}

case $mode in
    all) run plain; run pool ;;
    *) run "$mode" ;;
esac

# Exit status: failed subtests in any mode run.
! grep -q ' failed:$' "$logs"/*.summary 2>/dev/null || exit 1
