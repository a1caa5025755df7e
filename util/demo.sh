#!/usr/bin/env bash
# The demo: the GKE guide's multi-cluster Inference Gateway on one machine.
#
#   util/demo.sh          set up, build, start a two-region fleet of
#                         simulated vLLM servers and nginx with conf.d/,
#                         send the guide's request, run a load ramp with a
#                         live view of local traffic and spillover, print
#                         the summary, then keep the gateway running at
#                         http://127.0.0.1:8080 until Ctrl-C
#   util/demo.sh --once   the scripted part only; stops everything and exits
#                         0 only if every step behaved as expected
#
# What runs (all stopped on exit):
#   - util/sim/vllm_sim.py with util/sim/demo-fleet.json: europe-west3 on
#     127.0.1.{1,2,3}:8000 and us-east4 on 127.0.2.{1,2,3}:8000, serving
#     meta-llama/Llama-3.1-8B-Instruct and the LoRA adapter food-review-1;
#     admin port 127.0.0.1:8099 (faults: see util/sim/README.md)
#   - nginx -p <repository> -c conf.d/nginx.conf, listening on
#     127.0.0.1:8080; its files go to build/run/
#   - util/demo.py, which talks to the gateway only
#
# Environment: MCIG_NGINX (default /usr/sbin/nginx), DEMO_RAMP (the ramp as
# RATExSECONDS,..., see util/demo.py), DEMO_SEED (default 1).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

once=0
for arg in "$@"; do
    case "$arg" in
        --once) once=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--once]" >&2; exit 2 ;;
    esac
done

nginx=${MCIG_NGINX:-/usr/sbin/nginx}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
run=build/run
fleet=util/sim/demo-fleet.json
started=$(date +%s)

sim_pid=""
nginx_pid=""
driver_pid=""

log() { printf '\033[1;36m== %s\033[0m\n' "$*"; }
[ -t 1 ] || log() { printf '== %s\n' "$*"; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop() {    # stop PID SECONDS: TERM, then KILL after SECONDS
    local pid=$1 i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 $(($2 * 10))); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
}

cleanup() {
    trap - EXIT INT TERM
    stop "$driver_pid" 2
    if alive "$nginx_pid"; then
        echo "demo: stopping nginx and the simulated fleet"
        stop "$nginx_pid" 5
    fi
    stop "$sim_pid" 5
    # nginx's workers leave with their master; wait for the port to close
    for _ in $(seq 1 30); do
        port_busy 127.0.0.1:8080 || break
        sleep 0.1
    done
}

port_busy() {   # port_busy HOST:PORT...: prints the addresses in use
    "$python" - "$@" <<'PY'
import socket, sys
busy = []
for a in sys.argv[1:]:
    host, port = a.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(0.3)
    try:
        if s.connect_ex((host, int(port))) == 0:
            busy.append(a)
    finally:
        s.close()
print(" ".join(busy))
sys.exit(0 if busy else 1)
PY
}

# --- set-up and build ----------------------------------------------------

log "Setting up (util/setup.sh) and building the module (util/build.sh)"
bash util/setup.sh || { echo "demo: util/setup.sh failed" >&2; exit 1; }
bash util/build.sh || { echo "demo: util/build.sh failed" >&2; exit 1; }

addresses=$("$python" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join([s["listen"] for s in d["servers"]] + [d["admin"]]))' "$fleet")
if busy=$(port_busy 127.0.0.1:8080 $addresses); then
    echo "demo: already in use: $busy" >&2
    echo "demo: is another demo running? (its nginx: $run/nginx.pid)" >&2
    exit 1
fi

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$run"

# --- the simulated fleet -------------------------------------------------

log "Starting the simulated vLLM fleet ($fleet)"
# in a session of its own: Ctrl-C reaches this script, which stops nginx
# before the fleet (the other order makes the gateway log failed scrapes)
setsid "$python" util/sim/vllm_sim.py --fleet "$fleet" ${DEMO_SEED:+--seed "$DEMO_SEED"} \
    > "$run/sim.log" 2>&1 < /dev/null &
sim_pid=$!
for _ in $(seq 1 300); do
    grep -q '^vllm_sim ready' "$run/sim.log" 2>/dev/null && break
    alive "$sim_pid" || break
    sleep 0.1
done
if ! grep -q '^vllm_sim ready' "$run/sim.log" 2>/dev/null; then
    if alive "$sim_pid"; then
        echo "demo: the simulator is not ready after 30 s; $run/sim.log:" >&2
    else
        wait "$sim_pid"
        echo "demo: the simulator exited with status $?; $run/sim.log:" >&2
    fi
    cat "$run/sim.log" >&2
    exit 1
fi
"$python" -c '
import json, sys
d = json.load(open(sys.argv[1]))
regions = {}
for s in d["servers"]:
    regions.setdefault(s["region"], []).append(s["listen"])
for r, l in regions.items():
    print("  %-13s %s  (network delay %s ms)"
          % (r, " ".join(l), d["regions"].get(r, {}).get("network_delay_ms", 0)))
df = d["defaults"]
print("  each: %d KV blocks of 16 tokens, max_num_seqs %d, time scale %g "
      "(a decode step of 6 ms takes %g ms), LoRA adapters %s"
      % (df["kv_blocks"], df["max_num_seqs"], d["time_scale"],
         6 * d["time_scale"], ",".join(df["adapters"])))' "$fleet"

# --- nginx with conf.d/ --------------------------------------------------

log "Starting nginx: $nginx -p $root/ -c conf.d/nginx.conf"
touch "$run/error.log"
log_offset=$(stat -c %s "$run/error.log")
rm -f "$run/nginx.pid"
if ! "$nginx" -p "$root/" -c conf.d/nginx.conf -e "$run/error.log"; then
    echo "demo: nginx did not start; $run/error.log says:" >&2
    tail -c +"$((log_offset + 1))" "$run/error.log" | tail -20 >&2
    exit 1
fi
for _ in $(seq 1 50); do
    [ -s "$run/nginx.pid" ] && break
    sleep 0.1
done
nginx_pid=$(cat "$run/nginx.pid" 2>/dev/null || true)
if ! alive "$nginx_pid"; then
    echo "demo: nginx exited; $run/error.log says:" >&2
    tail -c +"$((log_offset + 1))" "$run/error.log" | tail -20 >&2
    exit 1
fi
echo "  gateway http://127.0.0.1:8080 (pid $nginx_pid), logs in $run/"

# --- the scripted part, then the live gateway ----------------------------

args=(--gateway http://127.0.0.1:8080 --error-log "$run/error.log"
      --error-log-offset "$log_offset" --seed "${DEMO_SEED:-1}")
[ "$once" = 1 ] && args+=(--once)
[ -n "${DEMO_RAMP:-}" ] && args+=(--ramp "$DEMO_RAMP")

"$python" util/demo.py "${args[@]}" < /dev/null &
driver_pid=$!
wait "$driver_pid"
rc=$?
driver_pid=""

if [ "$once" = 1 ]; then
    cleanup
    # a stop must not log alerts either
    if tail -c +"$((log_offset + 1))" "$run/error.log" \
            | grep -E '\[(alert|crit|emerg)\]' >&2; then
        rc=1
    fi
    if [ "$rc" = 0 ]; then
        echo "demo: every check passed in $(( $(date +%s) - started )) s"
    else
        echo "demo: FAILED (see the checks above; logs in $run/)" >&2
    fi
fi
exit "$rc"
