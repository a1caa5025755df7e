#!/usr/bin/env bash
# Fault scenarios of the hardening issue, each under load from
# util/sim/loadgen.py (open loop; fastfail's closed), against a simulated
# vLLM fleet (util/sim/vllm_sim.py) and a gateway nginx with the module,
# both started here (util/fleet-lib.sh):
# gateway 127.0.0.1:18480 (2 workers), simulator admin 127.0.0.1:18501,
# members 127.0.5.1-3:8000 (europe-west3, local) and 127.0.6.1-3:8000
# (us-east4), custom_metrics balancing, health checks every second; and
# the pools of the README's example for fastfail (below, at /ff/NAME/).
# Everything lives in build/faults/.  The whole run takes about 3 minutes;
# no scenario starts with less than 30 s of FAULTS_BUDGET (300 s) left, and
# a watchdog ends the run 60 s past it.  Prints one line per scenario and
# "N passed, N failed"; exits non-zero on any failure.
#
#   util/faults.sh                 every scenario
#   util/faults.sh reload sigkill  only these
#
# Every request the load generator schedules must have exactly one outcome
# (util/loadcheck.py: scheduled == sent == answered by status + errors), and
# each outcome must be one the scenario allows.  The gateway's access log
# must show the same statuses as the client.  Outcomes (loadgen's keys):
#
#   scenario    allowed besides 200                      why
#   baseline    nothing
#   midstream   200_incomplete for streams of the killed  the response had
#               member in flight at the kill; 502 until   started: nginx can
#               2 s after it                              only cut it
#   alldown     502 and 503 (with Retry-After: 1) from    502 while the
#               the kill until 4 s after the members are  members refuse,
#               back; 200_incomplete for streams cut      503 once unhealthy
#   metrics     nothing: /metrics hanging or garbage only  balancing falls
#               degrades balancing                        back on in-flight
#   region      502/503 and cut streams for 2 s after the  failover within
#               region dies; then every 200 from us-east4  two health
#               until it is back; traffic returns after    intervals
#   reload      nothing (6 reloads, one every 2 s), but at
#               most 3 requests sent on a kept-alive
#               connection as the old worker closed it,
#               before nginx read them (a close, no byte)
#   sigkill     200_incomplete or a connection error for  the worker's
#               requests in flight at the kill, at most   connections die
#               as many as were in flight                 with it
#   spill       nothing; and us-east4 must take 20 % or   a second pool,
#               more once every local member's queue is   /spill/, of small
#               past max_queue                            members
#   unreachable nothing, and no [alert]: a member whose   a third pool,
#               connects time out (SYN dropped) is only   /dark/ (fails
#               unhealthy, its scrapes fail at [warn]      today: see sc_unreachable)
#   fastfail    500 from the member that answers every     the README's
#               inference request with a quick 500 (its    pool, 4 clients
#               /health 200), but 99 % or more 200 after   in a closed loop;
#               the first second, in_flight and            outlier detection
#               custom_metrics; once it stops failing, it  off printed for
#               serves again 3-4 s after its ejection      contrast
#               (ejection=3s there, the default is 30 s)
#
# 504 (deadline_exceeded / model_server_timeout) and 429 (pool_saturated)
# are documented too but no scenario here should produce them: they fail it.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

BUDGET=${FAULTS_BUDGET:-300}
FLEET_DIR="$root/build/faults"
FLEET_GATEWAY=127.0.0.1:18480
FLEET_ADMIN=127.0.0.1:18501
FLEET_ERROR_LEVEL=info
export FLEET_DIR FLEET_GATEWAY FLEET_ADMIN FLEET_ERROR_LEVEL
# A second, small pool for the spill scenario: members of two requests at
# once on port 8002 of the same addresses, their own simulator (admin
# 127.0.0.1:18503), reached through /spill/ on the gateway.  A third, for
# the unreachable scenario: 127.0.5.1:8000 and 127.0.7.1:8003, where
# nothing listens but during that scenario (/dark/).
SPILL_ADMIN=127.0.0.1:18503
FLEET_HTTP_EXTRA="
    upstream spill {
        server 127.0.5.1:8002; server 127.0.5.2:8002; server 127.0.5.3:8002;
        server 127.0.6.1:8002; server 127.0.6.2:8002; server 127.0.6.3:8002;
        mcig_pool;
        mcig_region europe-west3 127.0.5.1:8002 127.0.5.2:8002 127.0.5.3:8002;
        mcig_region us-east4 127.0.6.1:8002 127.0.6.2:8002 127.0.6.3:8002;
        mcig_max_in_flight 2;
        mcig_metrics;
        mcig_balancing_mode custom_metrics;
        mcig_health_check interval=1s timeout=500ms;
        keepalive 16;
    }

    upstream dark {
        server 127.0.5.1:8000;
        server 127.0.7.1:8003;
        mcig_pool;
        mcig_metrics timeout=300ms;
        mcig_balancing_mode custom_metrics;
        mcig_health_check interval=1s timeout=300ms;
    }"
# shellcheck disable=SC2089,SC2090  # nginx.conf text: the quotes are meant
FLEET_SERVER_EXTRA='
        location /spill/ {
            proxy_pass http://spill/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }

        location /dark/ {
            proxy_pass http://dark/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_connect_timeout 500ms;
        }'
# The fastfail scenario's pools: the README's example pool ("Using it", two
# members, in_flight balancing), alone, with outlier detection off, with
# custom_metrics balancing (and health checks every second, which pass
# throughout), and with ejection=3s for the recovery half; each reached
# through /ff/NAME/ as the README's location reaches its pool.
readme_pool() {     # readme_pool NAME DIRECTIVES
    printf '
    upstream %s {
        server 127.0.5.1:8000;
        server 127.0.5.2:8000;
        mcig_pool;
        mcig_objective food-review priority=10;
        mcig_objective batch priority=-1;
        mcig_request_timeout 30s;%s
        keepalive 64;
    }\n' "$1" "${2:+
        $2}"
}
cm="mcig_metrics; mcig_balancing_mode custom_metrics;
        mcig_health_check interval=1s timeout=500ms;"
FF_POOLS=(readme readme_off readme_cm readme_cm_off readme_rec)
FLEET_HTTP_EXTRA+="
$(readme_pool readme)
$(readme_pool readme_off "mcig_outlier_detection off;")
$(readme_pool readme_cm "$cm")
$(readme_pool readme_cm_off "$cm
        mcig_outlier_detection off;")
$(readme_pool readme_rec "mcig_outlier_detection ejection=3s;")"
for p in "${FF_POOLS[@]}"; do
    # shellcheck disable=SC2089  # nginx.conf text: the quotes are meant
    FLEET_SERVER_EXTRA+="

        location /ff/$p/ {
            proxy_pass http://$p/;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }"
done
unset cm p
# shellcheck disable=SC2090
export FLEET_HTTP_EXTRA FLEET_SERVER_EXTRA
# shellcheck source=util/fleet-lib.sh
. "$root/util/fleet-lib.sh"

SPILL_PID=""
spill_start() {
    cat > "$FLEET_DIR/spill-fleet.json" <<EOF
{"seed": 3, "admin": "$SPILL_ADMIN", "time_scale": 4,
 "defaults": {"kv_blocks": 1024, "max_num_seqs": 2, "max_model_len": 8192},
 "servers": [{"listen": "127.0.5.1:8002", "region": "europe-west3"},
             {"listen": "127.0.5.2:8002", "region": "europe-west3"},
             {"listen": "127.0.5.3:8002", "region": "europe-west3"},
             {"listen": "127.0.6.1:8002", "region": "us-east4"},
             {"listen": "127.0.6.2:8002", "region": "us-east4"},
             {"listen": "127.0.6.3:8002", "region": "us-east4"}]}
EOF
    "$FLEET_PY" util/sim/vllm_sim.py --fleet "$FLEET_DIR/spill-fleet.json" \
        > "$FLEET_DIR/logs/spill-sim.log" 2>&1 &
    SPILL_PID=$!
    local _
    for _ in $(seq 1 100); do
        grep -q "vllm_sim ready" "$FLEET_DIR/logs/spill-sim.log" 2>/dev/null && return 0
        kill -0 "$SPILL_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$FLEET_DIR/logs/spill-sim.log" >&2
    return 1
}

spill_stop() {
    if [ -n "$SPILL_PID" ] && kill -0 "$SPILL_PID" 2>/dev/null; then
        kill -TERM "$SPILL_PID" 2>/dev/null
        wait "$SPILL_PID" 2>/dev/null
    fi
    SPILL_PID=""
}

if [ ! -f build/ngx_http_upstream_mcig_module.so ]; then
    bash util/build.sh || { echo "0 passed, 1 failed"; exit 1; }
fi

rm -rf "$FLEET_DIR"
mkdir -p "$FLEET_DIR"

passed=0
failed=0
results=()
LOAD_PID=""
WATCHDOG_PID=""
cleanup() {
    if [ -n "$WATCHDOG_PID" ]; then
        kill "$WATCHDOG_PID" 2>/dev/null
        WATCHDOG_PID=""
    fi
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null
        wait "$LOAD_PID" 2>/dev/null
    fi
    fleet_stop
    spill_stop
}
trap cleanup EXIT
trap 'echo "faults: interrupted" >&2; echo "$passed passed, $((failed + 1)) failed"; exit 130' INT TERM
# one process, so that killing it ends it
"$FLEET_PY" -c 'import os, signal, sys, time
time.sleep(float(sys.argv[1]))
os.kill(int(sys.argv[2]), signal.SIGTERM)' $((BUDGET + 60)) $$ &
WATCHDOG_PID=$!


report() {          # report NAME OK(0/1) DETAIL
    local line
    if [ "$2" = 0 ]; then
        line="PASS $1: $3"
        passed=$((passed + 1))
    else
        line="FAIL $1: $3"
        failed=$((failed + 1))
    fi
    echo "$line"
    results+=("$line")
}

# --- helpers -------------------------------------------------------------

S=""                # the scenario running
LOG_MARK=0

scenario_begin() {
    S=$1
    : > "$FLEET_DIR/$S.events"
    LOG_MARK=$(stat -c %s "$FLEET_DIR/logs/error.log")
}

event() {           # event NAME: records when a fault was injected
    echo "--event $1=$(fleet_now)" >> "$FLEET_DIR/$S.events"
}

load_start() {      # load_start LOADGEN-ARGS...
    timeout -k 5 120 "$FLEET_PY" util/loadcheck.py run "$FLEET_DIR/$S.t0" -- \
        --url "http://$FLEET_GATEWAY" --requests 100000 --timeout 20 \
        --seed "${#S}" --csv "$FLEET_DIR/$S.csv" --json "$FLEET_DIR/$S.json" \
        "$@" > "$FLEET_DIR/$S.loadgen.out" 2>&1 &
    LOAD_PID=$!
    while [ ! -s "$FLEET_DIR/$S.t0" ] && kill -0 "$LOAD_PID" 2>/dev/null; do
        sleep 0.02
    done
}

load_wait() {
    wait "$LOAD_PID"
    local rc=$?
    LOAD_PID=""
    return $rc
}

at() {              # at SECONDS: sleeps until that time of the run
    local t0
    t0=$(cat "$FLEET_DIR/$S.t0")
    "$FLEET_PY" -c "import time; time.sleep(max(0.0, $t0 + $1 - time.time()))"
}

check_load() {      # check_load RULES...: loadcheck over this scenario's run
    # shellcheck disable=SC2046
    "$FLEET_PY" util/loadcheck.py --csv "$FLEET_DIR/$S.csv" \
        --json "$FLEET_DIR/$S.json" --t0 "$FLEET_DIR/$S.t0" \
        $(cat "$FLEET_DIR/$S.events") \
        --access-log "$FLEET_DIR/logs/access.log" "$@"
}

log_since() {       # the error log since the scenario began
    tail -c +"$((LOG_MARK + 1))" "$FLEET_DIR/logs/error.log"
}

log_has() {         # log_has ERE: in the error log since the scenario began
    [ "$(log_since | grep -cE "$1")" -gt 0 ]
}

alerts_since() {    # [alert]/[crit] lines since the scenario began, but $1
    log_since | grep -E '\[(alert|crit|emerg)\]' | grep -Ev "${1:-^$}" || true
}

pool_py() {         # pool_py EXPR: EXPR over the status JSON's pool "p"
    fleet_status | "$FLEET_PY" -c "
import json, sys
p = json.load(sys.stdin)['pools']['fleet']
m = p['members']
print($1)"
}

in_flight() { pool_py "sum(x['in_flight'] for x in m)"; }

# clears every fault, brings every member up and waits until the gateway
# sees a quiet, healthy fleet with fresh metrics (bounded)
settle() {
    fleet_admin "clear?server=all" || return 1
    fleet_admin "up?server=all" || return 1
    curl -fsS -m 5 -X POST -o /dev/null "http://$SPILL_ADMIN/clear?server=all" || return 1
    local state
    for _ in $(seq 1 100); do
        state=$(pool_py "all(x['healthy'] and x['metrics'] is not None and x['in_flight'] == 0 for x in m) and not any(r['drained'] for r in p['regions'])" 2>/dev/null)
        [ "$state" = True ] && return 0
        sleep 0.2
    done
    echo "faults: the fleet did not settle: $(pool_py "[(x['address'], x['healthy'], x['in_flight']) for x in m], [(r['name'], r['drained']) for r in p['regions']]" 2>&1)" >&2
    return 1
}

# sheddable requests after the load: none may be refused (no member is
# left "full"), none may wait
probe_sheddable() {
    local code bad=0
    for _ in $(seq 1 6); do
        code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
            -H 'x-gateway-inference-objective: batch' \
            "http://$FLEET_GATEWAY/v1/chat/completions" \
            -d '{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"hello"}],"max_tokens":4}')
        [ "$code" = 200 ] || bad=$((bad + 1))
    done
    echo "$bad"
}

remaining() { echo $((BUDGET - SECONDS)); }

finish() {          # finish NAME LOADCHECK-RESULT EXTRA-PROBLEMS
    local name=$1 lc=$2 extra=$3 ok=0
    case "$lc" in ok:*) ;; *) ok=1 ;; esac
    [ -n "$extra" ] && ok=1
    report "$name" "$ok" "${lc#ok: }${extra:+; $extra}"
}

# --- scenarios -----------------------------------------------------------

LONG=(--out-median 96 --out-sigma 0.3)      # streams of ~1.5 s
SHORT=(--out-median 32 --out-sigma 0.5)

sc_baseline() {
    scenario_begin baseline
    load_start --rate 12 --duration 6 "${SHORT[@]}" --objective batch=0.2
    load_wait
    local lc extra=""
    lc=$(check_load --allow 200 --min 200:40)
    [ -n "$(alerts_since)" ] && extra="alerts: $(alerts_since | head -2)"
    finish "baseline: no faults, all 200" "$lc" "$extra"
}

sc_midstream() {
    scenario_begin midstream
    local victim=127.0.5.1:8000 extra=""
    load_start --rate 15 --duration 12 "${LONG[@]}"
    at 4
    event kill
    fleet_admin "down?server=$victim"
    at 8
    event up
    fleet_admin "up?server=$victim"
    load_wait
    local lc cut
    lc=$(check_load --allow 200 \
        --inflight "kill:200_incomplete:$victim" \
        --window "kill-0.2:kill+2:502" \
        --served-by "up+3:end:$victim")
    cut=$("$FLEET_PY" -c "import json; print(json.load(open('$FLEET_DIR/midstream.json'))['status'].get('200_incomplete', 0))")
    [ "$cut" -ge 1 ] || extra="no stream was cut: the kill missed (victim idle?)"
    [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
    log_has "member $victim of pool \"fleet\" is unhealthy" \
        || extra="${extra:+$extra; }the member was not marked unhealthy"
    finish "midstream: a member killed mid-stream ($cut streams cut), back after 4 s" "$lc" "$extra"
}

sc_alldown() {
    scenario_begin alldown
    local extra=""
    load_start --rate 10 --duration 14 "${SHORT[@]}"
    at 3
    event down
    fleet_admin "down?server=all"
    at 7
    event up
    fleet_admin "up?server=all"
    load_wait
    local lc back
    lc=$(check_load --allow 200 \
        --inflight "down:200_incomplete" \
        --window "down-0.2:up+4:502,503" \
        --min 503:1)
    [ -n "$(alerts_since)" ] && extra="alerts: $(alerts_since | head -2)"
    # when every request succeeded again, after the members came back
    back=$("$FLEET_PY" - "$FLEET_DIR" <<'EOF'
import csv, sys
d = sys.argv[1]
t0 = float(open(d + "/alldown.t0").read())
ev = dict(l.split()[1].split("=") for l in open(d + "/alldown.events"))
up = float(ev["up"]) - t0
rows = list(csv.DictReader(open(d + "/alldown.csv")))
bad = [float(r["t_sched"]) for r in rows
       if float(r["t_sched"]) >= up and not (r["status"] == "200" and not r["error"])]
print("%.1f" % (max(bad) - up if bad else 0.0))
EOF
)
    finish "alldown: every member down 4 s, then back (served again after ${back} s)" "$lc" "$extra"
}

sc_metrics() {
    scenario_begin metrics
    local extra="" stale fresh
    load_start --rate 15 --duration 14 "${SHORT[@]}"
    at 2
    event hang
    fleet_admin "fault?server=all&region=europe-west3&kind=hang&scope=metrics"
    at 5.5
    stale=$(pool_py "sum(1 for x in m if x['metrics'] is None and x['region'] == 'europe-west3')")
    event garbage
    fleet_admin "clear?server=all"
    fleet_admin "fault?server=127.0.5.1:8000&kind=garbage_metrics&mode=binary"
    fleet_admin "fault?server=127.0.5.2:8000&kind=garbage_metrics&mode=html"
    fleet_admin "fault?server=127.0.5.3:8000&kind=garbage_metrics&mode=empty"
    fleet_admin "fault?server=127.0.6.1:8000&kind=garbage_metrics&mode=truncated"
    at 9.5
    local garbled
    garbled=$(pool_py "sum(1 for x in m if x['metrics'] is None and x['address'] in ('127.0.5.1:8000', '127.0.5.2:8000', '127.0.5.3:8000'))")
    event clear
    fleet_admin "clear?server=all"
    load_wait
    sleep 1
    fresh=$(pool_py "sum(1 for x in m if x['metrics'] is not None)")
    local lc
    lc=$(check_load --allow 200)
    [ "$stale" = 3 ] || extra="hanging /metrics: $stale of 3 members stale, 3 expected"
    [ "$garbled" = 3 ] || extra="${extra:+$extra; }garbage /metrics: $garbled of 3 members unused, 3 expected"
    [ "$fresh" = 6 ] || extra="${extra:+$extra; }after the faults: $fresh of 6 members have metrics"
    local warned
    warned=$(log_since | grep -c 'scraping the metrics of member .* failed')
    [ "$warned" -ge 3 ] || extra="${extra:+$extra; }$warned scrape failures logged, 3 or more expected"
    [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
    finish "metrics: /metrics hanging 3.5 s, then garbage 4 s ($warned failures logged at warn)" "$lc" "$extra"
}

sc_region() {
    scenario_begin region
    local extra="" failover fo_before fo_after
    fo_before=$(pool_py "p['decisions']['failover']")
    load_start --rate 12 --duration 18 "${SHORT[@]}"
    at 3
    event down
    fleet_admin "down?server=all&region=europe-west3"
    at 9
    event up
    fleet_admin "up?server=all&region=europe-west3"
    load_wait
    local lc
    # two health intervals (1 s each) after the region died, every request
    # is answered by the other region; the local one takes traffic again
    # once healthy (2 checks) and restored (restore_after=3s)
    lc=$(check_load --allow 200 \
        --inflight "down:200_incomplete:127.0.5." \
        --window "down-0.2:down+2:502,503" \
        --region "down+2:up:us-east4" \
        --served-by "up+5:end:127.0.5.")
    failover=$("$FLEET_PY" - "$FLEET_DIR" <<'EOF'
import csv, sys
d = sys.argv[1]
t0 = float(open(d + "/region.t0").read())
ev = dict(l.split()[1].split("=") for l in open(d + "/region.events"))
down, up = float(ev["down"]) - t0, float(ev["up"]) - t0
rows = list(csv.DictReader(open(d + "/region.csv")))
bad = [float(r["t_sched"]) for r in rows if down <= float(r["t_sched"]) < up
       and not (r["status"] == "200" and not r["error"] and r["region"] == "us-east4")]
print("%.2f" % (max(bad) - down if bad else 0.0))
EOF
)
    fo_after=$(pool_py "p['decisions']['failover']")
    [ "$fo_after" -gt "$fo_before" ] || extra="no failover decision counted"
    [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
    finish "region: europe-west3 down 6 s (all on us-east4 ${failover} s after, $((fo_after - fo_before)) failovers)" "$lc" "$extra"
}

sc_reload() {
    scenario_begin reload
    local extra="" n workers
    load_start --rate 15 --duration 13 "${SHORT[@]}"
    for n in 1 3 5 7 9 11; do
        at "$n"
        event "reload$n"
        fleet_nginx -s reload 2>>"$FLEET_DIR/logs/reload.err" \
            || extra="nginx -s reload failed"
    done
    load_wait
    local lc
    # a request sent on a kept-alive connection just as the old worker
    # closes it sees the close before any byte (nginx never read it: the
    # access log check below shows nothing lost); loadgen retries once, on
    # another pooled connection, which may be closing too
    lc=$(check_load --allow 200 --allow-closed-idle 3)
    # the old generations finish their streams and exit
    for n in $(seq 1 50); do
        workers=$(pgrep -P "$(fleet_master)" | wc -l)
        [ "$workers" -le 2 ] && break
        sleep 0.2
    done
    [ "$workers" -le 2 ] || extra="${extra:+$extra; }$workers worker processes 10 s after the last reload"
    local left
    left=$(in_flight)
    [ "$left" = 0 ] || extra="${extra:+$extra; }$left requests still counted in flight"
    [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
    finish "reload: nginx -s reload every 2 s under load (6 reloads)" "$lc" "$extra"
}

sc_sigkill() {
    scenario_begin sigkill
    local extra="" victim before after scraper left shed fresh
    load_start --rate 15 --duration 12 "${LONG[@]}"
    at 4
    # the worker that holds the scrape lease, so the lease must move too
    victim=$(log_since | sed -n 's/.*\[info\] \([0-9]*\)#.*this worker scrapes.*/\1/p' | tail -1)
    [ -n "$victim" ] || victim=$(grep -h 'this worker scrapes' "$FLEET_DIR/logs/error.log" \
        | sed -n 's/.*\[info\] \([0-9]*\)#.*/\1/p' | tail -1)
    if [ -z "$victim" ] || ! kill -0 "$victim" 2>/dev/null; then
        victim=$(fleet_workers | head -1)
    fi
    before=$(in_flight)
    event kill
    kill -KILL "$victim"
    load_wait
    local lc
    lc=$(check_load --allow 200 \
        --inflight "kill:200_incomplete,error" \
        --max "not200:$((before + 2))" --access-log-le)
    # counts of the dead worker given back, lease taken over, nothing full
    for _ in $(seq 1 25); do
        left=$(in_flight)
        [ "$left" = 0 ] && break
        sleep 0.2
    done
    [ "$left" = 0 ] || extra="$left requests still counted in flight after the load"
    scraper=$(log_since | sed -n 's/.*\[info\] \([0-9]*\)#.*this worker scrapes.*/\1/p' | grep -vx "$victim" | tail -1)
    [ -n "$scraper" ] || extra="${extra:+$extra; }no other worker took the scrape lease"
    fresh=$(pool_py "sum(1 for x in m if x['metrics'] is not None)")
    [ "$fresh" = 6 ] || extra="${extra:+$extra; }$fresh of 6 members have fresh metrics"
    shed=$(probe_sheddable)
    [ "$shed" = 0 ] || extra="${extra:+$extra; }$shed of 6 sheddable requests refused after the load"
    after=$(fleet_workers | wc -l)
    [ "$after" = 2 ] || extra="${extra:+$extra; }$after workers after the kill"
    [ -n "$(alerts_since 'exited on signal 9')" ] \
        && extra="${extra:+$extra; }alerts: $(alerts_since 'exited on signal 9' | head -2)"
    finish "sigkill: the scraping worker killed under load ($before in flight; lease to $scraper)" "$lc" "$extra"
}

# The local region's members all queue past max_queue while the other
# region has room: requests must spill there, as they do past the target
# KV usage (a member with more than max_queue waiting is as far over its
# target as its queue is over max_queue).  The local region takes about
# 7 of the 10 requests a second: its queues pass max_queue (5 each) after
# 6-8 s, and from then on the excess spills; the share is counted over the
# requests scheduled from 9 s on.
sc_spill() {
    scenario_begin spill
    local extra="" mid
    load_start --url "http://$FLEET_GATEWAY/spill" --rate 10 --duration 15 \
        --out-median 32 --out-sigma 0.3 --in-median 64 --in-sigma 0.3
    at 10
    mid=$(fleet_status | "$FLEET_PY" -c "
import json, sys
p = json.load(sys.stdin)['pools']['spill']
print('; '.join('%s u=%.2f waiting=%s' % (r['name'], r['utilization'],
      [x['metrics']['waiting'] if x['metrics'] else None for x in p['members'] if x['region'] == r['name']])
      for r in p['regions']))")
    load_wait
    local lc share
    lc=$(check_load --allow 200 --access-path /spill/v1/)
    share=$("$FLEET_PY" - "$FLEET_DIR" <<'EOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1] + "/spill.csv")) if float(r["t_sched"]) >= 9]
us = sum(1 for r in rows if r["region"] == "us-east4")
print(round(100.0 * us / max(1, len(rows))))
EOF
)
    [ "$share" -ge 20 ] || extra="us-east4 answered ${share} % of the requests after 9 s, 20 % or more expected (at 10 s: $mid)"
    finish "spill: the local region's queues full, the other region idle (us-east4 took ${share} %)" "$lc" "$extra"
}

# A member whose host does not answer at all (its SYNs dropped: a listener
# that never accepts, its queue full): scrapes and health checks time out
# while connecting.  Requests go to the other member; the failures are
# [warn].  Today each timed-out connect of the scraper logs "[alert]
# epoll_ctl(2, N) failed (9: Bad file descriptor)": libcurl has closed the
# socket when it reports CURL_POLL_REMOVE, and ngx_http_mcig_curl_socket()
# still asks epoll to delete it.  This scenario fails until that is fixed.
sc_unreachable() {
    scenario_begin unreachable
    local extra="" dark timeouts alerts
    "$FLEET_PY" -c '
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.7.1", 8003))
l.listen(0)
held = []
for _ in range(3):                 # fill the accept queue: later SYNs drop
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.7.1", 8003))
    except BlockingIOError:
        pass
    held.append(c)
time.sleep(float(sys.argv[1]))' 14 &
    dark=$!
    sleep 0.5
    load_start --url "http://$FLEET_GATEWAY/dark" --rate 5 --duration 8 "${SHORT[@]}"
    at 4
    # the gateway's connects to it hang
    timeouts=$(ss -Htn state syn-sent dst 127.0.7.1 2>/dev/null | wc -l)
    load_wait
    kill "$dark" 2>/dev/null
    wait "$dark" 2>/dev/null
    sleep 1                 # connects still pending end here
    local lc
    lc=$(check_load --allow 200 --access-path /dark/v1/)
    [ "$timeouts" -ge 1 ] || extra="no connect to 127.0.7.1:8003 was pending: the member was not unreachable"
    alerts=$(alerts_since | wc -l)
    [ "$alerts" = 0 ] && alerts=""
    [ -n "$alerts" ] && extra="${extra:+$extra; }$alerts alerts: $(alerts_since | head -1)"
    finish "unreachable: a member whose connects time out (SYN dropped), 8 s" "$lc" "$extra"
}

# A member that answers every inference request with a quick 500 while
# its /health answers 200 (issue 20): in the README's example pool the
# member with the fewest requests in flight is the one that fails fast, so
# without outlier detection it draws nearly all the traffic.  4 clients in
# a closed loop (as ab -c 4) for 6 s per pool, one row per pool: outlier
# detection off for contrast (not judged), then on, where 99 % or more of
# the requests sent after the first second must get 200.  Then the
# recovery: the ejected member stops failing.  With the README's default
# ejection (30 s) it would get traffic back after 30 s, so this half runs
# on a pool with ejection=3s: the member must answer again 3 s to 4 s after
# its ejection, and take 20 % or more of the requests from then on.
FF_VICTIM=127.0.5.1:8000

ff_stats() {        # ff_stats CSV: counts of one fastfail run
    "$FLEET_PY" - "$1" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
good = lambda r: r["status"] == "200" and not r["error"]
ok = sum(1 for r in rows if good(r))
e500 = sum(1 for r in rows if r["status"] == "500")
late = [r for r in rows if float(r["t_sched"]) >= 1.0]
late_ok = sum(1 for r in late if good(r))
print(len(rows), ok, e500, len(rows) - ok - e500, len(late), late_ok,
      "%.2f" % (100.0 * late_ok / len(late) if late else 0.0))
EOF
}

ff_run() {          # ff_run POOL: the victim failing, 4 clients for 6 s
    local pool=$1 n ok e500 other late late_ok
    scenario_begin "fastfail-$pool"
    fleet_admin "fault?server=$FF_VICTIM&kind=error&status=500"
    load_start --url "http://$FLEET_GATEWAY/ff/$pool" --concurrency 4 \
        --duration 6 --out-median 1 --out-sigma 0 --in-median 16
    load_wait
    fleet_admin "clear?server=$FF_VICTIM"
    FF_LC=$(check_load --allow 200,500 --access-path "/ff/$pool/v1/")
    read -r n ok e500 other late late_ok FF_SHARE < <(ff_stats "$FLEET_DIR/$S.csv")
    FF_ROW="$n requests: $ok 200, $e500 500"
    [ "$other" = 0 ] || FF_ROW+=", $other other"
    FF_ROW+="; after the first second $late_ok of $late = $FF_SHARE % 200"
}

sc_fastfail() {
    local mode pool extra ok lc health ej back share ejected
    for mode in in_flight custom_metrics; do
        pool=readme
        [ "$mode" = custom_metrics ] && pool=readme_cm
        ff_run "${pool}_off"
        echo "     fastfail $mode, outlier detection off: $FF_ROW (contrast, not judged)"
        ff_run "$pool"
        lc=$FF_LC
        extra=""
        ok=$("$FLEET_PY" -c "print(int($FF_SHARE >= 99.0))")
        [ "$ok" = 1 ] || extra="$FF_SHARE % 200 after the first second, 99 % or more expected"
        log_has "member $FF_VICTIM of pool \"$pool\" is ejected for 30000 ms" \
            || extra="${extra:+$extra; }the member was not ejected"
        if [ "$mode" = custom_metrics ]; then
            # its health checks passed all along: the ejection kept it out
            health=$(fleet_status | "$FLEET_PY" -c "
import json, sys
m = json.load(sys.stdin)['pools']['$pool']['members']
print(all(x['healthy'] for x in m))")
            [ "$health" = True ] || extra="${extra:+$extra; }a member turned unhealthy"
        fi
        [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
        finish "fastfail $mode, outlier detection on: $FF_ROW" "$lc" "$extra"
    done

    # the recovery: the member fails from the start and is ejected for 3 s
    # at once; its fault ends at 1.5 s; it answers again when the ejection
    # ends
    scenario_begin fastfail-readme_rec
    extra=""
    fleet_admin "fault?server=$FF_VICTIM&kind=error&status=500"
    load_start --url "http://$FLEET_GATEWAY/ff/readme_rec" --concurrency 4 \
        --duration 8 --out-median 1 --out-sigma 0 --in-median 16
    at 1.5
    event recover
    fleet_admin "clear?server=$FF_VICTIM"
    load_wait
    lc=$(check_load --allow 200 --window "0:recover:500" \
        --access-path /ff/readme_rec/v1/)
    read -r ej back share < <("$FLEET_PY" - "$FLEET_DIR" "$FF_VICTIM" <<'EOF'
import csv, sys
d, victim = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(d + "/fastfail-readme_rec.csv")))
end = lambda r: float(r["t_sched"]) + float(r["e2e_ms"] or 0) / 1e3
# ejected as the failure that ejected it (its last) was answered
fails = [end(r) for r in rows if r["server"] == victim and r["status"] == "500"]
ej = max(fails) if fails else -1.0
ok = [float(r["t_sched"]) for r in rows if r["server"] == victim
      and r["status"] == "200" and not r["error"]]
back = min(ok) if ok else -1.0
after = [r for r in rows if back >= 0 and float(r["t_sched"]) >= back]
share = 100.0 * sum(1 for r in after if r["server"] == victim) / max(1, len(after))
print("%.2f %.2f %.0f" % (ej, back, share))
EOF
)
    ok=$("$FLEET_PY" -c "print(int($ej >= 0 and $back >= 0 and 2.5 <= $back - $ej <= 4.0 and $share >= 20))")
    [ "$ok" = 1 ] || extra="3 s to 4 s from the ejection to the member's first 200, then 20 % or more of the requests expected"
    ejected=$(log_since | grep -c "member $FF_VICTIM of pool \"readme_rec\" is ejected for 3000 ms")
    [ "$ejected" -ge 1 ] || extra="${extra:+$extra; }no ejection for 3000 ms logged"
    [ -n "$(alerts_since)" ] && extra="${extra:+$extra; }alerts: $(alerts_since | head -2)"
    finish "fastfail recovery (ejection=3s, not the README's 30 s): ejected at $ej s, fault off at 1.5 s, 200 again from $back s, then $share % of the requests" "$lc" "$extra"
}

# --- run -----------------------------------------------------------------

all=(baseline midstream alldown metrics region reload sigkill spill unreachable fastfail)
wanted=("$@")
[ "${#wanted[@]}" = 0 ] && wanted=("${all[@]}")

if ! fleet_setup || ! spill_start; then
    report setup 1 "could not start the fleet and the gateway (see $FLEET_DIR/logs)"
    echo "$passed passed, $failed failed"
    exit 1
fi
sleep 1.5

for s in "${wanted[@]}"; do
    if ! declare -F "sc_$s" >/dev/null; then
        report "$s" 1 "no such scenario (${all[*]})"
        continue
    fi
    if [ "$(remaining)" -lt 30 ]; then
        report "$s" 1 "skipped: out of time (budget ${BUDGET}s)"
        continue
    fi
    if ! settle; then
        report "$s" 1 "the fleet did not settle before the scenario"
        continue
    fi
    "sc_$s"
done

fleet_stop
spill_stop
if [ -n "$(grep -E '\[(alert|crit|emerg)\]' "$FLEET_DIR/logs/error.log" | grep -v 'exited on signal 9')" ]; then
    report "error log (whole run)" 1 "$(grep -E '\[(alert|crit|emerg)\]' "$FLEET_DIR/logs/error.log" | grep -v 'exited on signal 9' | head -3)"
fi

echo "faults: ${SECONDS}s, logs and CSVs in $FLEET_DIR" >&2
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
