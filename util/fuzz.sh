#!/usr/bin/env bash
# Fuzzes the pure core of ngx_mcig_module with libFuzzer (clang, ASan and
# UBSan): the body scanner (with prompt hashing), the Prometheus parser, the
# error JSON writer, the region choice, the prefix index, the manifest
# loader and the status writers (JSON and Prometheus text).  Each target
# runs FUZZ_SECONDS (default 60) from a fresh copy of its seed corpus in
# t/fuzz/corpus/<target>/; the corpus grown stays in
# build/fuzz/corpus-<target>/, crashing inputs go to build/fuzz/artifacts/
# and the whole output of a run to build/fuzz/<target>.log.  Prints one line
# per target, ends with "N passed, N failed"; exits non-zero if any target
# crashed, leaked or timed out.
#
#   util/fuzz.sh                  every target
#   util/fuzz.sh body prom        only these
#   FUZZ_SECONDS=600 util/fuzz.sh
#
# A crash is replayed with: build/fuzz/fuzz_<target> build/fuzz/artifacts/<file>
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-60}
all=(body prom json region prefix manifest status)

if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: FUZZ_SECONDS must be a positive number of seconds" >&2
    exit 2
fi

targets=("$@")
if [ "${#targets[@]}" = 0 ]; then
    targets=("${all[@]}")
fi

for t in "${targets[@]}"; do
    case " ${all[*]} " in
    *" $t "*) ;;
    *) echo "fuzz: unknown target \"$t\" (targets: ${all[*]})" >&2; exit 2 ;;
    esac
done

bash util/setup.sh || { echo "0 passed, ${#targets[@]} failed"; exit 1; }

# --- clang and libFuzzer -----------------------------------------------

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# clang and libFuzzer's runtime (compiler-rt, packaged apart from clang)
if ! command -v clang >/dev/null 2>&1 \
   || ! dpkg-query -W -f='${Status}' "libclang-rt-$(clang -dumpversion 2>/dev/null | cut -d. -f1)-dev" 2>/dev/null \
        | grep -q '^install ok installed'
then
    echo "fuzz: installing clang and libclang-rt-14-dev"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi

# libFuzzer's runtime comes with compiler-rt, packaged apart from clang
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' \
    '#include <stddef.h>' \
    '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void) d; (void) n; return 0; }' > "$probe/probe.c"

if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/probe" \
        "$probe/probe.c" > "$probe/log" 2>&1; then
    major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    cat "$probe/log" >&2
    echo "fuzz: clang cannot link libFuzzer: install the Debian package" \
         "libclang-rt-${major:-14}-dev" >&2
    exit 1
fi

# --- build and run -----------------------------------------------------

sources() {
    case "$1" in
    body)   echo ngx_mcig_module/mcig_body.c ngx_mcig_module/mcig_prefix.c \
                 ngx_mcig_module/mcig_pick.c ;;
    prefix) echo ngx_mcig_module/mcig_prefix.c ;;
    manifest) echo ngx_mcig_module/mcig_manifest.c ngx_mcig_module/mcig_prom.c ;;
    prom)   echo ngx_mcig_module/mcig_prom.c ngx_mcig_module/mcig_pick.c ;;
    json)   echo ngx_mcig_module/mcig_json.c ;;
    region) echo ngx_mcig_module/mcig_region.c ngx_mcig_module/mcig_pick.c ;;
    status) echo ngx_mcig_module/mcig_status.c ngx_mcig_module/mcig_prom.c ;;
    esac
}

max_len() {
    case "$1" in
    body|prom) echo 65536 ;;
    manifest)  echo 8192 ;;
    *)         echo 4096 ;;
    esac
}

passed=0
failed=0

# the binaries go there before the per-target directories are made
mkdir -p build/fuzz

for t in "${targets[@]}"; do
    bin="build/fuzz/fuzz_$t"
    log="build/fuzz/$t.log"
    corpus="build/fuzz/corpus-$t"

    # shellcheck disable=SC2046  # sources() gives a list of files
    if ! clang -g -O1 -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wextra \
            -Ingx_mcig_module -o "$bin" "t/fuzz/fuzz_$t.c" $(sources "$t") \
            -lyaml -lcjson -lm; then
        echo "fuzz $t: does not compile"
        failed=$((failed + 1))
        continue
    fi

    # a fresh working copy: libFuzzer adds to the corpus it is given
    rm -rf "$corpus"
    mkdir -p "$corpus" build/fuzz/artifacts
    cp t/fuzz/corpus/"$t"/* "$corpus"/

    start=$(date +%s)
    "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/artifacts/$t-" \
        "$corpus" > "$log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))

    # "Done N runs in S second(s)" ends a run that was not cut short; a crash
    # leaves only the final stats, and the wall clock
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" \
           | tail -n 1)
    secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" \
           | tail -n 1)

    if [ -z "$runs" ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
               "$log" | tail -n 1)
        runs=${runs:-0}
        secs=$elapsed
    fi

    crashes=$(grep -c 'Test unit written to' "$log")

    if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then
        crashes=1                   # died without writing its input
    fi

    echo "fuzz $t: $runs execs in $secs s, $crashes crashes"

    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))

    else
        failed=$((failed + 1))
        grep -E 'ERROR: |SUMMARY: |check failed|runtime error|Test unit written' \
            "$log" | sed "s/^/fuzz $t: /"
        echo "fuzz $t: exit status $rc, whole output in $log"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
