#!/usr/bin/env bash
# Benchmarks of ngx_mcig_module (loopback only, bounded in time).
#
#   util/bench/run.sh overhead   req/s and latency of nginx + mcig_pool vs
#                                nginx round robin and least_conn, same
#                                backends and keepalive, JSON bodies of 1 KB,
#                                64 KB and 1 MB (BENCH_BODIES="1k 256k")
#   util/bench/run.sh scanner    body scanner throughput on chat bodies
#   util/bench/run.sh prom       Prometheus parser throughput, 30 KB vLLM page
#   util/bench/run.sh region     region and member choice per request, 3
#                                regions x 64 members
#   util/bench/run.sh scrape     256 members scraped at the default interval:
#                                the scraping worker's CPU, scrapes/s, and
#                                request latency with scraping on vs off
#   util/bench/run.sh score      endpoint scoring per request: a 16 KB chat
#                                prompt hashed while scanned, matched against
#                                the prefix index of 64 members, scored
#   util/bench/run.sh routing    routing quality on the simulated vLLM fleet:
#                                round robin, least_conn and the mcig modes
#                                on six workloads at 30-120 % of capacity
#                                (util/bench/routing.sh; about 10 minutes)
#   util/bench/run.sh routing-seeds   one routing case (sharegpt at 120 %:
#                                the three mcig modes) for 3 seeds, 3 runs
#                                each: mean and spread of the headline
#                                figures (util/bench/routing_seeds.py;
#                                about 6 minutes)
#
# Environment: BENCH_DURATION (seconds per wrk run, default 10),
# BENCH_ROUNDS (alternations of the two configurations, default 2),
# BENCH_CONNECTIONS (default 32).  Results go to build/bench/<mode>/.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-}
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-2}
conns=${BENCH_CONNECTIONS:-32}
out="$root/build/bench/$mode"

case "$mode" in
    overhead|scanner|prom|region|scrape|score) ;;
    routing) exec bash "$root/util/bench/routing.sh" ;;
    routing-seeds) exec bash "$root/util/bench/routing.sh" seeds ;;
    *) echo "usage: $0 overhead|scanner|prom|region|scrape|score|routing|routing-seeds" >&2
       exit 2 ;;
esac

bash "$root/util/setup.sh"
bash "$root/util/build.sh" >/dev/null
mkdir -p "$out"

make_body() {   # make_body SIZE FILE: a chat request of about SIZE bytes
    python3 - "$1" "$2" <<'PY'
import json, sys
size, path = int(sys.argv[1]), sys.argv[2]
text = "What is the best pizza in the world? Neapolitan, many say. "
msgs, n = [], 0
body = {"model": "food-review-1", "messages": msgs, "max_tokens": 100}
while len(json.dumps(body)) < size - 80:
    msgs.append({"role": "user" if n % 2 == 0 else "assistant",
                 "content": text * 4})
    n += 1
extra = size - len(json.dumps(body)) - len(', "user": ""')
body["user"] = "x" * max(0, extra)
open(path, "w").write(json.dumps(body))
PY
}

if [ "$mode" = scanner ]; then
    gcc -O2 -I"$root/ngx_mcig_module" -o "$out/bench_body" \
        "$root/util/bench/bench_body.c" "$root/ngx_mcig_module/mcig_body.c" \
        "$root/ngx_mcig_module/mcig_prefix.c"
    {
        echo "| body | bytes | GB/s (one core) | µs per body |"
        echo "|---|---|---|---|"
        for size in 1024 262144 1048576; do
            line=$("$out/bench_body" "$size" "${BENCH_DURATION:-2}")
            echo "$line" >&2
            eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(body_bytes|GB_per_s|us_per_scan)=')"
            echo "| chat | $body_bytes | $GB_per_s | $us_per_scan |"
        done
    } | tee "$out/results.md"
    echo "RESULT scanner_1mb_gb_per_s=$(tail -1 "$out/results.md" | cut -d'|' -f4 | tr -d ' ')"
    exit 0
fi

if [ "$mode" = prom ]; then
    gcc -O2 -I"$root/ngx_mcig_module" -o "$out/bench_prom" \
        "$root/util/bench/bench_prom.c" "$root/ngx_mcig_module/mcig_prom.c" -lm
    line=$("$out/bench_prom" "${BENCH_DURATION:-5}")
    echo "$line" >&2
    eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(page_bytes|MB_per_s|us_per_page)=')"
    {
        echo "| page | bytes | MB/s (one core) | µs per page |"
        echo "|---|---|---|---|"
        echo "| vLLM V1, 2 engines, histograms | $page_bytes | $MB_per_s | $us_per_page |"
    } | tee "$out/results.md"
    echo "RESULT prom_mb_per_s=$MB_per_s"
    exit 0
fi

if [ "$mode" = region ]; then
    gcc -O2 -I"$root/ngx_mcig_module" -o "$out/bench_region" \
        "$root/util/bench/bench_region.c" "$root/ngx_mcig_module/mcig_pick.c" \
        "$root/ngx_mcig_module/mcig_region.c"
    {
        echo "| regions | members | ns per request (one core) | local share at 1.17x |"
        echo "|---|---|---|---|"
        for shape in "3 64" "3 8" "8 64"; do
            line=$("$out/bench_region" $shape "${BENCH_DURATION:-2}")
            echo "$line" >&2
            eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(regions|members|ns_per_request|local_share)=')"
            echo "| $regions | $members | $ns_per_request | $local_share |"
        done
    } | tee "$out/results.md"
    echo "RESULT region_ns_3x64=$(sed -n 3p "$out/results.md" | cut -d'|' -f4 | tr -d ' ')"
    exit 0
fi

if [ "$mode" = score ]; then
    gcc -O2 -I"$root/ngx_mcig_module" -o "$out/bench_score" \
        "$root/util/bench/bench_score.c" "$root/ngx_mcig_module/mcig_body.c" \
        "$root/ngx_mcig_module/mcig_prefix.c" \
        "$root/ngx_mcig_module/mcig_score.c" "$root/ngx_mcig_module/mcig_pick.c" \
        "$root/ngx_mcig_module/mcig_session.c"
    "$out/bench_score" 64 31250 "${BENCH_DURATION:-3}" | tee "$out/raw.txt" >&2
    {
        echo "| case | members | µs per request (one core) |"
        echo "|---|---|---|"
        awk '/^(request|all-hit) / {
                 for (i = 2; i <= NF; i++) if ($i ~ /^(members|us_per_request)=/) {
                     split($i, kv, "="); v[kv[1]] = kv[2] }
                 printf "| %s | %s | %s |\n", $1, v["members"], v["us_per_request"] }' \
            "$out/raw.txt"
        sed -n 's/^parts: *//p' "$out/raw.txt" | sed 's/ (sink.*//; s/^/| parts | | /; s/$/ |/'
    } | tee "$out/results.md"
    echo "RESULT score_us_per_request=$(awk -F'|' 'NR == 3 { gsub(/ /, "", $4); print $4 }' "$out/results.md")"
    exit 0
fi

if [ "$mode" = scrape ]; then
    exec bash "$root/util/bench/scrape.sh" "$out"
fi

# --- overhead ----------------------------------------------------------

port_rr=18180
port_mcig=18181
port_b1=18182
port_b2=18183
port_lc=18184
bodies=${BENCH_BODIES:-1k 64k 1m}
work="$out/nginx"
rm -rf "$work"
mkdir -p "$work/logs" "$work/tmp"

cat > "$work/backends.conf" <<EOC
daemon on;
worker_processes 1;
error_log $work/logs/backends.log warn;
pid $work/backends.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/tmp/b_body;
    client_max_body_size 4m;
    server {
        listen 127.0.0.1:$port_b1 backlog=4096;
        listen 127.0.0.1:$port_b2 backlog=4096;
        keepalive_requests 100000;
        location / {
            default_type application/json;
            return 200 '{"id":"cmpl-1","object":"text_completion","choices":[{"text":"Neapolitan.","index":0,"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":100,"total_tokens":110}}';
        }
    }
}
EOC

cat > "$work/gateway.conf" <<EOC
load_module $root/build/ngx_http_upstream_mcig_module.so;
daemon on;
worker_processes 1;
error_log $work/logs/gateway.log warn;
pid $work/gateway.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/tmp/g_body;
    proxy_temp_path $work/tmp/g_proxy;
    client_max_body_size 4m;

    upstream round_robin {
        server 127.0.0.1:$port_b1;
        server 127.0.0.1:$port_b2;
        keepalive 64;
    }

    upstream least_conn {
        least_conn;
        server 127.0.0.1:$port_b1;
        server 127.0.0.1:$port_b2;
        keepalive 64;
    }

    upstream mcig {
        server 127.0.0.1:$port_b1;
        server 127.0.0.1:$port_b2;
        mcig_pool;
        ${BENCH_MCIG_EXTRA:-}
        keepalive 64;
    }

    server {
        listen 127.0.0.1:$port_rr backlog=4096;
        keepalive_requests 100000;
        location / {
            proxy_pass http://round_robin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:$port_lc backlog=4096;
        keepalive_requests 100000;
        location / {
            proxy_pass http://least_conn;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:$port_mcig backlog=4096;
        keepalive_requests 100000;
        location / {
            proxy_pass http://mcig;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOC

cleanup() {
    for p in gateway backends; do
        [ -f "$work/$p.pid" ] && kill "$(cat "$work/$p.pid")" 2>/dev/null || true
    done
}
trap cleanup EXIT

/usr/sbin/nginx -c "$work/backends.conf" -p "$work"
/usr/sbin/nginx -c "$work/gateway.conf" -p "$work"
sleep 0.5

for body in $bodies; do
    case "$body" in
    *k) make_body $((${body%k} * 1024)) "$out/body-$body.json" ;;
    *m) make_body $((${body%m} * 1048576)) "$out/body-$body.json" ;;
    *)  echo "overhead: body sizes are like 1k or 1m, not $body" >&2; exit 2 ;;
    esac
done

# a request through each configuration must succeed before measuring
for port in $port_rr $port_lc $port_mcig; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
           --data-binary @"$out/body-1k.json" "http://127.0.0.1:$port/v1/chat/completions")
    [ "$code" = 200 ] || { echo "overhead: port $port answered $code" >&2; exit 1; }
done

run_wrk() {     # run_wrk PORT BODYFILE -> "rps p50_ms p99_ms"
    local res
    res=$(MCIG_BODY_FILE="$2" wrk -t1 -c"$conns" -d"${duration}s" --latency \
          -s "$root/util/bench/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1)
    echo "$res" >> "$out/wrk.log"
    if echo "$res" | grep -q 'Non-2xx'; then
        echo "overhead: non-2xx answers on port $1" >&2
        exit 1
    fi
    awk '
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        function ms(v) {
            if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
            if (v ~ /s$/) return v * 1000; return v }
        END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }' <<<"$res"
}

: > "$out/wrk.log"
results="$out/results.csv"
echo "body,config,round,rps,p50_ms,p99_ms" > "$results"

for body in $bodies; do
    for round in $(seq 1 "$rounds"); do
        for config in round_robin least_conn mcig; do
            case $config in
            round_robin) port=$port_rr ;;
            least_conn)  port=$port_lc ;;
            mcig)        port=$port_mcig ;;
            esac
            read -r rps p50 p99 <<<"$(run_wrk "$port" "$out/body-$body.json")"
            echo "$body,$config,$round,$rps,$p50,$p99" >> "$results"
            echo "overhead: $body $config round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2
        done
    done
done

if grep -qE '\[(alert|crit|emerg)\]' "$work/logs/gateway.log"; then
    echo "overhead: the gateway logged alerts:" >&2
    grep -E '\[(alert|crit|emerg)\]' "$work/logs/gateway.log" >&2
    exit 1
fi

python3 - "$results" "$out/results.md" $bodies <<'PY'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1])))
out = ["| body | config | req/s | p50 ms | p99 ms | req/s ratio mcig / this |",
       "|---|---|---|---|---|---|"]
result = []
for body in sys.argv[3:]:
    agg = {}
    for cfg in ("round_robin", "least_conn", "mcig"):
        rs = [r for r in rows if r["body"] == body and r["config"] == cfg]
        agg[cfg] = (st.mean(float(r["rps"]) for r in rs),
                    st.mean(float(r["p50_ms"]) for r in rs),
                    st.mean(float(r["p99_ms"]) for r in rs))
    for cfg in ("round_robin", "least_conn", "mcig"):
        rps, p50, p99 = agg[cfg]
        ratio = agg["mcig"][0] / rps
        out.append("| %s | %s | %.0f | %.3f | %.3f | %s |" % (
            body, cfg, rps, p50, p99, "%.3f" % ratio if cfg != "mcig" else ""))
    result.append("ratio_rr_%s=%.3f ratio_lc_%s=%.3f" % (
        body, agg["mcig"][0] / agg["round_robin"][0],
        body, agg["mcig"][0] / agg["least_conn"][0]))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
print("RESULT " + " ".join(result))
PY
