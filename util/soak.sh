#!/usr/bin/env bash
# Soak: SOAK_SECONDS (default 600) of open-loop load at fleet saturation
# through the gateway, with the fleet and gateway of util/fleet-lib.sh
# (2 workers, two regions, custom_metrics, health checks every second) on
# ports of their own: gateway 127.0.0.1:18481, simulator admin
# 127.0.0.1:18502, members 127.0.5.1-3:8001 and 127.0.6.1-3:8001.
#
# Saturation: each member runs at most 8 requests at once (the simulator's
# max_num_seqs, the gateway's mcig_max_in_flight) and the offered rate
# (SOAK_RATE, default 17/s) is about 1.3 times what the six complete, so
# the pool is saturated (every member full) most of the time: the 30 % of
# requests that are sheddable ("batch", priority -1) get 429 then, the rest
# wait in the gateway's queue (mcig_queue, on by default) for a member with
# room; that alone keeps the members at about 90 %.
#
# SOAK_BALANCING (default "custom_metrics": balancing and the region
# choice go by the members' scraped KV usage and queues, scraped at the
# default 100 ms; "custom_metrics dry_run" scrapes and reports them but
# balances by in-flight counts).
#
# Every 10 s: each worker's RSS (/proc), the shared zone's resident pages
# (the mcig zone's mapping in /proc/PID/smaps: pages the slab allocator
# has touched), the status JSON's counters, the load average.  Checks:
#   - every request answered: 200, or a documented refusal (429
#     pool_saturated or queue_full, 503 queue_timeout); no cut stream, no
#     timeout, no connection error
#   - worker RSS flat: within +-5 % of its value after the warm-up minute
#   - shared zone bounded: its resident size does not grow after warm-up
#   - no [alert], [crit] or [emerg] in the error log
#   - throughput steady: each whole minute after the first within +-10 %
#     of their median
# Writes build/soak/results.md (figures per minute) and ends with one line
# "RESULT: PASS ..." or "RESULT: FAIL ..."; exit status 0 or 1.
# SOAK_ANALYZE_ONLY=1 only reads the figures of the last run again (give it
# the same SOAK_SECONDS).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_RATE=${SOAK_RATE:-17}
SOAK_BALANCING=${SOAK_BALANCING:-custom_metrics}
SOAK_SAMPLE=${SOAK_SAMPLE:-10}

FLEET_DIR="$root/build/soak"
FLEET_GATEWAY=127.0.0.1:18481
FLEET_ADMIN=127.0.0.1:18502
FLEET_PORT=8001
FLEET_ERROR_LEVEL=notice
FLEET_ACCESS_LOG_OPTS=" buffer=64k flush=1s"
FLEET_SIM_TIME_SCALE=16
FLEET_SIM_KV_BLOCKS=128
FLEET_SIM_MAX_NUM_SEQS=8
FLEET_MAX_IN_FLIGHT=8
FLEET_BALANCING=$SOAK_BALANCING
export FLEET_DIR FLEET_GATEWAY FLEET_ADMIN FLEET_PORT FLEET_ERROR_LEVEL \
    FLEET_ACCESS_LOG_OPTS FLEET_SIM_TIME_SCALE FLEET_SIM_KV_BLOCKS \
    FLEET_SIM_MAX_NUM_SEQS FLEET_MAX_IN_FLIGHT FLEET_BALANCING
# shellcheck source=util/fleet-lib.sh
. "$root/util/fleet-lib.sh"

LOAD_PID=""
cleanup() {
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null
        wait "$LOAD_PID" 2>/dev/null
    fi
    fleet_stop
}

# the mcig zone: its mapping is the shared one of "mcig_zone"'s size (1 MB)
zone_kb() {
    awk '/^[0-9a-f]+-[0-9a-f]+ /{m=$0} /^Size:/{s=$2} /^Rss:/{ if (m ~ /\/dev\/zero|SYSV/ && s == 1024) print $2 }' \
        "/proc/$1/smaps" 2>/dev/null | head -1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

soak_run() {
    if [ ! -f build/ngx_http_upstream_mcig_module.so ]; then
        bash util/build.sh || { echo "RESULT: FAIL (build)"; exit 1; }
    fi

    rm -rf "$FLEET_DIR"
    mkdir -p "$FLEET_DIR"

    trap cleanup EXIT
    trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

    if ! fleet_setup; then
        echo "RESULT: FAIL (the fleet or the gateway did not start, see $FLEET_DIR/logs)"
        exit 1
    fi
    sleep 2

    fleet_log "soak: ${SOAK_SECONDS}s at ${SOAK_RATE} req/s, $SOAK_BALANCING, samples every ${SOAK_SAMPLE}s in $FLEET_DIR"

    timeout -k 5 $((SOAK_SECONDS + 120)) "$FLEET_PY" util/loadcheck.py run "$FLEET_DIR/t0" -- \
        --url "http://$FLEET_GATEWAY" --rate "$SOAK_RATE" --duration "$SOAK_SECONDS" \
        --requests 10000000 --timeout 60 --seed 11 \
        --in-median 100 --in-sigma 0.5 --out-median 32 --out-sigma 0.5 \
        --objective batch=0.3 \
        --csv "$FLEET_DIR/run.csv" --json "$FLEET_DIR/run.json" \
        > "$FLEET_DIR/loadgen.out" 2>&1 &
    LOAD_PID=$!
    while [ ! -s "$FLEET_DIR/t0" ] && kill -0 "$LOAD_PID" 2>/dev/null; do sleep 0.05; done

    # samples: time (s from t0), per worker pid:rss_kb:cpu_ticks, zone kB,
    # status counters, load average
    samples="$FLEET_DIR/samples.jsonl"
    t0=$(cat "$FLEET_DIR/t0")
    sim_pid=$FLEET_SIM_PID
    gen_pid=$(pgrep -P "$LOAD_PID" | head -1)     # the python under timeout
    next=0
    while kill -0 "$LOAD_PID" 2>/dev/null; do
        now=$(fleet_now)
        rel=$("$FLEET_PY" -c "print(round($now - $t0, 1))")
        workers=""
        zone=""
        for w in $(fleet_workers); do
            rss=$(awk '/^VmRSS:/{print $2}' "/proc/$w/status" 2>/dev/null)
            workers+="{\"pid\": $w, \"rss_kb\": ${rss:-0}, \"cpu_ticks\": $(cpu_ticks "$w" || echo 0)},"
            [ -z "$zone" ] && zone=$(zone_kb "$w")
        done
        status=$(fleet_status 2>/dev/null || echo null)
        echo "{\"t\": $rel, \"workers\": [${workers%,}], \"zone_kb\": ${zone:-null}, \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"sim_cpu_ticks\": $(cpu_ticks "$sim_pid" || echo 0), \"loadgen_cpu_ticks\": $(cpu_ticks "${gen_pid:-$LOAD_PID}" || echo 0), \"status\": $status}" >> "$samples"
        next=$((next + SOAK_SAMPLE))
        "$FLEET_PY" -c "import time; time.sleep(max(0.0, $t0 + $next - time.time()))"
        if [ $((next % 60)) = 0 ]; then
            fleet_log "soak: ${next}s, load $(cut -d' ' -f1 /proc/loadavg)"
        fi
    done
    wait "$LOAD_PID"
    LOAD_PID=""
    sleep 2
    # a final sample, idle
    after=$(fleet_status 2>/dev/null || echo null)
    echo "$after" > "$FLEET_DIR/status-after.json"
    fleet_stop
}

if [ "${SOAK_ANALYZE_ONLY:-0}" != 1 ]; then
    soak_run || exit 1
fi

"$FLEET_PY" - "$FLEET_DIR" "$SOAK_SECONDS" "$SOAK_RATE" "$SOAK_BALANCING" <<'EOF'
import collections, csv, json, os, statistics, sys

d, secs, rate, mode = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rows = list(csv.DictReader(open(d + "/run.csv")))
summary = json.load(open(d + "/run.json"))
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
hz = os.sysconf("SC_CLK_TCK")
problems = []

def key(r):
    if r["status"] == "200" and r["error"]:
        return "200_incomplete"
    if r["status"] and r["status"] != "0":
        return r["status"]
    return "timeout" if r["error"] == "timeout" else "error"

# every request answered: 200, or 429 for sheddable ones
outcome = collections.Counter(key(r) for r in rows)
if not (summary["scheduled"] == summary["sent"] == len(rows) == sum(summary["status"].values())):
    problems.append("unaccounted requests: scheduled %d sent %d rows %d"
                    % (summary["scheduled"], summary["sent"], len(rows)))
bad = collections.Counter(key(r) for r in rows if key(r) not in ("200", "429", "503"))
if bad:
    problems.append("outcomes not allowed: %s" % dict(bad))

# per minute: completions by completion time, sheds, tokens
minutes = int(secs // 60)
per_min = collections.defaultdict(lambda: collections.Counter())
for r in rows:
    k = key(r)
    end = float(r["t_sched"]) + (float(r["e2e_ms"]) / 1e3 if r["e2e_ms"] else 0)
    m = int(end // 60)
    per_min[m][k] += 1
    if k == "200":
        per_min[m]["tokens"] += int(r["output_tokens"] or 0)
        per_min[m]["ttft"] += 0
ttft = collections.defaultdict(list)
for r in rows:
    if key(r) == "200" and r["ttft_ms"]:
        ttft[int(float(r["t_sched"]) // 60)].append(float(r["ttft_ms"]))

def pct(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round((len(v) - 1) * q)))]

full = [m for m in range(1, minutes)]          # whole minutes after warm-up
thr = [per_min[m]["200"] for m in full]
med = statistics.median(thr) if thr else 0
dev = [abs(x - med) / med for x in thr] if med else [1.0]
if not thr:
    problems.append("too short for a throughput check (2 minutes at least)")
elif max(dev) > 0.10:
    problems.append("throughput not steady: %s per minute, median %d" % (thr, med))

# RSS per worker after warm-up
warm = [s for s in samples if s["t"] >= 60]
rss = collections.defaultdict(list)
for s in warm:
    for w in s["workers"]:
        rss[w["pid"]].append(w["rss_kb"])
rss_figs = {}
for pid, v in rss.items():
    base = v[0]
    hi, lo = (max(v) - base) / base, (base - min(v)) / base
    rss_figs[pid] = (base, v[-1], min(v), max(v), hi, lo)
    if hi > 0.05 or lo > 0.05:
        problems.append("worker %d RSS not flat: %d kB after warm-up, %d..%d kB (+%.1f %% / -%.1f %%)"
                        % (pid, base, min(v), max(v), hi * 100, lo * 100))
if len(rss) != 2:
    problems.append("%d worker pids seen after warm-up, 2 expected" % len(rss))

# shared zone
zone = [s["zone_kb"] for s in warm if s["zone_kb"] is not None]
if not zone:
    problems.append("the zone's mapping was not found")
elif max(zone) > zone[0]:
    problems.append("shared zone grew after warm-up: %d -> %d kB" % (zone[0], max(zone)))

# error log
levels = collections.Counter()
alerts = []
for line in open(d + "/logs/error.log", errors="replace"):
    for lv in ("emerg", "alert", "crit", "error", "warn"):
        if "[%s]" % lv in line:
            levels[lv] += 1
            if lv in ("emerg", "alert", "crit") and len(alerts) < 3:
                alerts.append(line.strip()[:200])
if alerts:
    problems.append("error log: %s" % " | ".join(alerts))

# CPU shares per minute from the samples
def cpu_pct(series):
    out = {}
    for a, b in zip(series, series[1:]):
        if b[0] > a[0]:
            out[int(b[0] // 60.0001)] = out.get(int(b[0] // 60.0001), []) + [(b[1] - a[1]) / hz / (b[0] - a[0]) * 100]
    return {m: sum(v) / len(v) for m, v in out.items()}

wcpu = cpu_pct([(s["t"], sum(w["cpu_ticks"] for w in s["workers"])) for s in samples])
scpu = cpu_pct([(s["t"], s["sim_cpu_ticks"]) for s in samples])
lcpu = cpu_pct([(s["t"], s["loadgen_cpu_ticks"]) for s in samples])
load_by_min = {}
zone_by_min, rss_by_min, sat_by_min = {}, collections.defaultdict(dict), {}
for s in samples:
    m = int(s["t"] // 60.0001) if s["t"] > 0 else 0
    load_by_min.setdefault(m, []).append(float(s["load"].split()[0]))
    zone_by_min[m] = s["zone_kb"]
    for w in s["workers"]:
        rss_by_min[m][w["pid"]] = w["rss_kb"]
    st = s.get("status")
    if st:
        p = st["pools"]["fleet"]
        sat_by_min[m] = (p["refused"]["pool_saturated"], sum(x["in_flight"] for x in p["members"]),
                         [r["requests"] for r in p["regions"]])

after = json.load(open(d + "/status-after.json")) if os.path.getsize(d + "/status-after.json") > 5 else None
left = sum(x["in_flight"] for x in after["pools"]["fleet"]["members"]) if after else None
if left:
    problems.append("%d requests still counted in flight after the load" % left)

pids = sorted(rss)
with open(d + "/results.md", "w") as f:
    w = f.write
    w("# Soak: %d s at %g req/s (30 %% sheddable)\n\n" % (secs, rate))
    w("Gateway: 2 workers, 6 simulated members in two regions (8 requests at once "
      "each, time scale 16), mcig_balancing_mode %s, metrics scraped every 100 ms, "
      "health checks every second.\n\n" % mode)
    refusals = collections.Counter((r["objective"] or "(none)", key(r), r["error"][:60])
                                   for r in rows if key(r) in ("429", "503"))
    w("Refusals by objective, status and message: %s.\n\n"
      % ("; ".join("%s %s %s: %d" % (k + (v,)) for k, v in sorted(refusals.items())) or "none"))
    w("Requests: %d sent, outcomes %s; %.1f completed/s over the run, TTFT p50 %s ms, p99 %s ms.\n\n"
      % (summary["sent"], dict(sorted(outcome.items())), summary["requests_per_s"],
         summary["ttft_ms"]["p50"], summary["ttft_ms"]["p99"]))
    w("| minute | completed (200) | shed (429) | other | output tok/s | TTFT p50 ms | TTFT p99 ms | "
      + " | ".join("worker %d RSS kB" % p for p in pids)
      + " | zone kB | sheds so far | in flight | workers CPU % | sim CPU % | loadgen CPU % | load avg (1 min) |\n")
    w("|" + "---|" * (14 + len(pids)) + "\n")
    for m in range(0, minutes + 1):
        c = per_min[m]
        other = sum(v for k, v in c.items() if k not in ("200", "429", "tokens", "ttft"))
        sat = sat_by_min.get(m, ("", "", ""))
        w("| %d | %d | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %.0f | %s |\n" % (
            m + 1, c["200"], c["429"], other, c["tokens"] / 60.0,
            "%.0f" % pct(ttft[m], 0.5) if ttft[m] else "", "%.0f" % pct(ttft[m], 0.99) if ttft[m] else "",
            " | ".join(str(rss_by_min[m].get(p, "")) for p in pids),
            zone_by_min.get(m, ""), sat[0], sat[1],
            wcpu.get(m, 0), scpu.get(m, 0), lcpu.get(m, 0),
            "%.2f" % max(load_by_min[m]) if load_by_min.get(m) else ""))
    w("\nRow n counts the answers that ended in minute n (the last row is the tail "
      "after the arrivals stop); TTFT is over the requests scheduled in that minute; "
      "RSS, zone, sheds and in flight are the minute's last sample; CPU is the "
      "share of one core.\n\n")
    w("Worker RSS after the warm-up minute (first sample at >= 60 s) and over the rest:\n\n")
    for pid, (base, last, lo, hi, up, down) in sorted(rss_figs.items()):
        w("- worker %d: %d kB after warm-up, %d kB at the end, range %d..%d kB (+%.1f %% / -%.1f %%)\n"
          % (pid, base, last, lo, hi, up * 100, down * 100))
    if zone:
        w("\nShared zone (mcig, 1 MB): %d kB resident after warm-up, %d kB at the end, at most %d kB.\n"
          % (zone[0], zone[-1], max(zone)))
    # where the requests were while the pool was saturated (not a check)
    bal = collections.defaultdict(list)
    for s in warm:
        st = s.get("status")
        if not st:
            continue
        for x in st["pools"]["fleet"]["members"]:
            bal[x["region"] or "local"].append((x["in_flight"], x["capacity"],
                                                (x["metrics"] or {}).get("waiting", 0)))
    if bal:
        w("\nIn flight per member after warm-up, by region (mean; capacity; requests "
          "waiting inside the members): %s.\n"
          % "; ".join("%s %.1f of %d, %.1f waiting" % (
              r, statistics.mean(v[0] for v in vs), vs[0][1], statistics.mean(v[2] for v in vs))
              for r, vs in bal.items()))
    w("\nThroughput per whole minute after the first: %s (median %d, largest deviation %.1f %%).\n"
      % (thr, med, max(dev) * 100 if thr else 0))
    w("\nError log: %s.\n" % (", ".join("%d [%s]" % (v, k) for k, v in sorted(levels.items())) or "nothing at warn or above"))
    w("\nLoad average (1 min) during the run: %.2f..%.2f (2 cores, shared with other jobs).\n"
      % (min(min(v) for v in load_by_min.values()), max(max(v) for v in load_by_min.values())))
    w("\n%s\n" % ("PASS" if not problems else "FAIL: " + "; ".join(problems)))

up = max((v[4] for v in rss_figs.values()), default=0) * 100
down = max((v[5] for v in rss_figs.values()), default=0) * 100
print("RESULT: %s rss=+%.1f%%/-%.1f%% zone=%s kB throughput=%s/min (dev %.1f%%) alerts=%d sent=%d %s load=%.2f..%.2f%s"
      % ("PASS" if not problems else "FAIL", up, down,
         "%d..%d" % (zone[0], max(zone)) if zone else "?", med, max(dev) * 100 if thr else 0,
         levels["alert"] + levels["crit"] + levels["emerg"], summary["sent"],
         " ".join("%s=%d" % kv for kv in sorted(outcome.items())),
         min(min(v) for v in load_by_min.values()), max(max(v) for v in load_by_min.values()),
         "" if not problems else " (" + "; ".join(problems) + ")"))
sys.exit(1 if problems else 0)
EOF
