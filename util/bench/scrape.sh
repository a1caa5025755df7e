#!/usr/bin/env bash
# The scrape benchmark (run through util/bench/run.sh scrape): one gateway
# worker in front of 256 members on loopback, each serving a ~30 KB vLLM
# /metrics page (a server that ignores the name[] filter), scraped at the
# default interval (BENCH_INTERVAL=50ms for another).  Alternating scraping
# on and off in one run, it measures the worker's CPU with no client
# traffic, the scrapes the members answered per second, and wrk's request
# latency through the gateway.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
members=${BENCH_MEMBERS:-256}
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-2}
idle=${BENCH_IDLE:-5}
interval=${BENCH_INTERVAL:-}
first_port=19000
gw_port=18191
status_port=18190
work="$out/nginx"

rm -rf "$work"
mkdir -p "$work/logs" "$work/tmp"

# a vLLM V1 page: histograms of two engines, counters, the gauges we read
# BENCH_PAGE=filtered: the ~1 KB page prometheus_client renders for the
# name[] filter, instead of the whole ~30 KB page
python3 - "$work/page.prom" "${BENCH_PAGE:-whole}" <<'PY'
import sys
out = []
whole = sys.argv[2] != "filtered"
hists = ("time_to_first_token_seconds", "e2e_request_latency_seconds",
         "request_prompt_tokens", "request_generation_tokens",
         "time_per_output_token_seconds") if whole else ()
counters = ("prompt_tokens", "generation_tokens",
            "request_success") if whole else ()
for eng in ("0", "1"):
    lab = 'engine="%s",model_name="meta-llama/Llama-3.1-8B-Instruct"' % eng
    for g, v in (("num_requests_running", 12), ("num_requests_waiting", 1),
                 ("kv_cache_usage_perc", 0.42)):
        out.append("# HELP vllm:%s gauge\n# TYPE vllm:%s gauge" % (g, g))
        out.append("vllm:%s{%s} %s" % (g, lab, v))
    for h in hists:
        out.append("# HELP vllm:%s histogram\n# TYPE vllm:%s histogram" % (h, h))
        for le in (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                   0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, "+Inf"):
            out.append('vllm:%s_bucket{%s,le="%s"} 1234.0' % (h, lab, le))
        out.append("vllm:%s_sum{%s} 5678.9" % (h, lab))
        out.append("vllm:%s_count{%s} 1234.0" % (h, lab))
    for c in counters:
        out.append("# TYPE vllm:%s_total counter" % c)
        out.append("vllm:%s_total{%s} 987654.0" % (c, lab))
        out.append("vllm:%s_created{%s} 1.7382173358407154e+09" % (c, lab))
page = "\n".join(out) + "\n"
while whole and len(page) < 30000:
    page += "# padding: vLLM pages carry process_ and python_gc_ series too\n"
open(sys.argv[1], "w").write(page)
PY

listens=""
servers=""
for i in $(seq 0 $((members - 1))); do
    listens+="        listen 127.0.0.1:$((first_port + i)) backlog=1024;"$'\n'
    servers+="        server 127.0.0.1:$((first_port + i));"$'\n'
done

cat > "$work/members.conf" <<EOC
daemon on;
worker_processes 1;
error_log $work/logs/members.log warn;
pid $work/members.pid;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $work/tmp/m_body;
    server {
$listens
        keepalive_requests 1000000;
        location = /metrics {
            default_type text/plain;
            alias $work/page.prom;
        }
        location / {
            default_type application/json;
            return 200 '{"choices":[{"text":"Neapolitan."}]}';
        }
    }
    server {
        listen 127.0.0.1:$status_port;
        location = /status { stub_status; }
    }
}
EOC

gateway_conf() {    # gateway_conf on|off
    local scrape=""
    if [ "$1" = on ]; then
        scrape="mcig_metrics ${interval:+interval=$interval}; mcig_balancing_mode custom_metrics;"
    fi
    cat > "$work/gateway-$1.conf" <<EOC
load_module $root/build/ngx_http_upstream_mcig_module.so;
daemon on;
worker_processes 1;
error_log $work/logs/gateway-$1.log info;
pid $work/gateway.pid;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $work/tmp/g_body;
    upstream fleet {
$servers
        mcig_pool;
        $scrape
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$gw_port backlog=4096;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOC
}

cleanup() {
    for p in gateway members; do
        [ -f "$work/$p.pid" ] && kill "$(cat "$work/$p.pid")" 2>/dev/null || true
    done
    sleep 0.5
}
trap cleanup EXIT

handled() {     # requests the members have answered so far
    curl -s "http://127.0.0.1:$status_port/status" | awk 'NR == 3 { print $3 }'
}

cpu_ticks() {   # utime + stime of a process, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

gateway_conf on
gateway_conf off
/usr/sbin/nginx -c "$work/members.conf" -p "$work"
sleep 0.5

printf '{"model":"food-review-1","messages":[{"role":"user","content":"%s"}]}' \
    "$(head -c 900 /dev/zero | tr '\0' 'a')" > "$work/body.json"

hz=$(getconf CLK_TCK)
results="$out/results.csv"
echo "scraping,round,worker_cpu_pct,scrapes_per_s,rps,p50_ms,p99_ms" > "$results"

for round in $(seq 1 "$rounds"); do
    for cfg in off on; do
        /usr/sbin/nginx -c "$work/gateway-$cfg.conf" -p "$work"
        sleep 2
        worker=$(pgrep -P "$(cat "$work/gateway.pid")" | head -1)

        # no client traffic: what scraping alone costs
        t0=$(cpu_ticks "$worker"); h0=$(handled)
        sleep "$idle"
        t1=$(cpu_ticks "$worker"); h1=$(handled)
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$idle" \
              'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')
        sps=$(awk -v a="$h0" -v b="$h1" -v s="$idle" \
              'BEGIN { printf "%.0f", (b - a - 2) / s }')

        res=$(MCIG_BODY_FILE="$work/body.json" wrk -t1 -c16 -d"${duration}s" \
              --latency -s "$root/util/bench/post.lua" \
              "http://127.0.0.1:$gw_port/v1/chat/completions" 2>&1)
        echo "$res" >> "$out/wrk.log"
        if echo "$res" | grep -q 'Non-2xx'; then
            echo "scrape: non-2xx answers with scraping $cfg" >&2
            exit 1
        fi
        read -r rps p50 p99 <<<"$(awk '
            /Requests\/sec/ { rps = $2 }
            /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
            function ms(v) {
                if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                if (v ~ /s$/) return v * 1000; return v }
            END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }' <<<"$res")"

        echo "$cfg,$round,$cpu,$sps,$rps,$p50,$p99" >> "$results"
        echo "scrape: scraping $cfg round $round: worker $cpu % CPU idle," \
             "$sps scrapes/s; $rps req/s, p50 $p50 ms, p99 $p99 ms" >&2

        kill "$(cat "$work/gateway.pid")"
        sleep 1

        if grep -qE '\[(alert|crit|emerg)\]' "$work/logs/gateway-$cfg.log"; then
            echo "scrape: the gateway logged alerts:" >&2
            grep -E '\[(alert|crit|emerg)\]' "$work/logs/gateway-$cfg.log" >&2
            exit 1
        fi
    done
done

python3 - "$results" "$out/results.md" "$members" "${interval:-100ms (default)}" <<'PY'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1])))
out = ["| scraping | members | interval | worker CPU, no traffic | scrapes/s | req/s | p50 ms | p99 ms |",
       "|---|---|---|---|---|---|---|---|"]
agg = {}
for cfg in ("off", "on"):
    rs = [r for r in rows if r["scraping"] == cfg]
    agg[cfg] = [st.mean(float(r[k]) for r in rs) for k in
                ("worker_cpu_pct", "scrapes_per_s", "rps", "p50_ms", "p99_ms")]
    out.append("| %s | %s | %s | %.1f %% | %.0f | %.0f | %.3f | %.3f |" % (
        cfg, sys.argv[3], sys.argv[4] if cfg == "on" else "", *agg[cfg]))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
print("RESULT scrape_worker_cpu_pct=%.1f scrapes_per_s=%.0f p99_ratio_on_off=%.3f"
      % (agg["on"][0], agg["on"][1], agg["on"][4] / agg["off"][4]))
PY
