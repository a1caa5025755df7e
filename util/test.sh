#!/usr/bin/env bash
# Runs every test of ngx_mcig_module: installs what is missing, builds the
# module, runs the core's unit tests (cmocka, under ASan+UBSan), the vLLM
# simulator's tests and the Test::Nginx suite against the installed nginx.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
#
#   util/test.sh              everything
#   util/test.sh t/003*.t     only these Test::Nginx files (after unit tests)
#
# Modes of the Test::Nginx suite (one at a time, with files or not):
#   --valgrind   nginx under valgrind's memcheck (installed by
#                util/setup.sh valgrind), util/valgrind.supp for nginx's
#                own memory; reports in build/valgrind/
#   --hup        one nginx per file, reloaded (SIGHUP) between blocks
#   --asan       nginx 1.22.1 and the module built with ASan+UBSan
#                (util/build-asan.sh), util/lsan.supp for nginx's own
#                memory; reports in build/asan/
#   --workers N  a master and N worker processes for the files that do not
#                choose their own
# With --valgrind and --asan, a report with a frame of the module in its
# stacks counts as a failure (util/memcheck-report.pl).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mode=""
workers=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --valgrind|--hup|--asan)
            if [ -n "$mode" ] && [ "$mode" != "${1#--}" ]; then
                echo "test: --$mode and $1 do not go together" >&2
                exit 2
            fi
            mode=${1#--} ;;
        --workers)
            workers=${2:-}; shift
            case "$workers" in
                [1-9]|[1-9][0-9]) ;;
                *) echo "test: --workers takes a number" >&2; exit 2 ;;
            esac ;;
        -*) echo "test: unknown option $1" >&2; exit 2 ;;
        *)  args+=("$1") ;;
    esac
    shift
done
set -- "${args[@]}"

setup_args=()
if [ "$mode" = valgrind ]; then
    setup_args+=(valgrind)
fi

bash util/setup.sh "${setup_args[@]}" || { echo "0 passed, 1 failed"; exit 1; }
bash util/build.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

# --- core unit tests ---------------------------------------------------

core_srcs=(ngx_mcig_module/mcig_*.c)
mkdir -p build/unit

for src in t/unit/test_*.c; do
    name=$(basename "$src" .c)
    bin="build/unit/$name"

    if ! gcc -std=gnu99 -g -O1 -Wall -Wextra -Werror \
            -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer -Ingx_mcig_module \
            -o "$bin" "$src" "${core_srcs[@]}" -lcmocka -lyaml -lcjson -lm; then
        echo "unit: $name does not compile"
        failed=$((failed + 1))
        continue
    fi

    out=$("$bin" 2>&1)
    rc=$?
    echo "$out" | grep -E '^\[  (PASSED|FAILED)|^\[  ERROR|ERROR:|runtime error' || true
    n_ok=$(echo "$out" | grep -c '^\[       OK \]')
    n_bad=$(echo "$out" | grep -c '^\[  FAILED  \] [a-z_]')
    passed=$((passed + n_ok))
    failed=$((failed + n_bad))

    if [ "$rc" != 0 ] && [ "$n_bad" = 0 ]; then
        echo "unit: $name exited with status $rc"
        failed=$((failed + 1))
    fi
done

# --- the simulator's tests (Python's unittest) --------------------------

out=$(/usr/bin/python3 -m unittest util/sim/test_sim.py 2>&1)
rc=$?
n_run=$(echo "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p')
# "FAILED (failures=1, errors=2)"
n_bad=$(echo "$out" | awk -F'[=,)]' '/^FAILED \(/ {
            for (i = 2; i <= NF; i += 2) n += $i } END { print n + 0 }')
n_run=${n_run:-0}
n_bad=${n_bad:-0}

if [ "$rc" != 0 ] && [ "$n_bad" = 0 ]; then
    echo "$out" | tail -20
    echo "sim: util/sim/test_sim.py exited with status $rc"
    n_bad=1
fi

echo "sim: $((n_run - n_bad)) passed, $n_bad failed"
passed=$((passed + n_run - n_bad))
failed=$((failed + n_bad))

# --- Test::Nginx suite -------------------------------------------------

# util/perl/McigMode.pm: --workers, and reports named after their block
export PERL5OPT="-I$root/util/perl -MMcigMode${PERL5OPT:+ $PERL5OPT}"
export MCIG_WORKERS=${workers:-1}
reports=""

case "$mode" in
    hup)
        export TEST_NGINX_USE_HUP=1
        ;;
    valgrind)
        reports="$root/build/valgrind"
        export TEST_NGINX_USE_VALGRIND="--tool=memcheck --leak-check=full \
--show-leak-kinds=definite --errors-for-leak-kinds=definite \
--num-callers=50 --keep-debuginfo=yes --gen-suppressions=all \
--suppressions=$root/util/valgrind.supp \
--log-file=$reports/%q{MCIG_BLOCK}.%p"
        ;;
    asan)
        bash util/build-asan.sh || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }
        reports="$root/build/asan"
        export TEST_NGINX_BINARY="$root/build/nginx-asan/objs/nginx"
        export TEST_NGINX_LOAD_MODULES="$root/build/nginx-asan/objs/ngx_http_upstream_mcig_module.so"
        # every nginx dynamic module defines ngx_module_names & co.: not an
        # ODR violation, the module is dlopen()ed.  Exits check for leaks;
        # reports, not exit statuses, decide ("nginx -t" in t/008 never
        # frees its cycle)
        export ASAN_OPTIONS="detect_leaks=1:detect_odr_violation=0"
        export LSAN_OPTIONS="suppressions=$root/util/lsan.supp:print_suppressions=0:exitcode=0"
        # in an ASan+UBSan binary UBSAN_OPTIONS' log_path holds for ASan
        # too: each block's own (util/perl/McigMode.pm), else no-block.<pid>
        export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/no-block"
        export MCIG_UBSAN_OPTIONS="print_stacktrace=1"
        export MCIG_REPORT_DIR="$reports"
        ;;
esac

if [ -n "$reports" ]; then
    rm -rf "$reports"
    mkdir -p "$reports"
    # what nginx writes to stderr before its error log takes over (the
    # first UBSan report of a process, whatever log_path says) is read too
    exec 2> >(tee "$reports/stderr" >&2)
fi

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
export TEST_NGINX_LOAD_MODULES=${TEST_NGINX_LOAD_MODULES:-$root/build/ngx_http_upstream_mcig_module.so}

files=("$@")
if [ "${#files[@]}" = 0 ]; then
    mapfile -t files < <(ls t/*.t)
fi

counts_file=$(mktemp)
MCIG_COUNTS="$counts_file" perl -MTAP::Harness -e '
    my $h = TAP::Harness->new({ verbosity => 0, lib => ["t/lib"] });
    my $agg = $h->runtests(@ARGV);
    open(my $f, ">", $ENV{MCIG_COUNTS}) or die;
    # a file that dies without a failed assertion still counts as a failure
    my $bad = scalar($agg->failed) + scalar($agg->parse_errors)
              + scalar(grep { ($agg->parsers($_))[0]->exit } $agg->descriptions);
    printf $f "%d %d\n", scalar($agg->passed), $bad;
' "${files[@]}"
read -r t_ok t_bad < "$counts_file" || true
rm -f "$counts_file"
passed=$((passed + ${t_ok:-0}))
failed=$((failed + ${t_bad:-1}))

if [ -n "$reports" ]; then
    perl util/memcheck-report.pl "$reports"
    failed=$((failed + $?))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
