#!/usr/bin/env bash
# The routing benchmark (util/bench/run.sh routing): open-loop Poisson
# arrivals from util/sim/loadgen.py on a simulated vLLM fleet
# (util/sim/vllm_sim.py) through nginx round robin, nginx least_conn and
# each mcig balancing mode, on six workloads, at loads relative to the
# fleet's measured capacity.  util/bench/routing.py says what is measured
# and how; results, tables and plots go to build/bench/routing/, and the
# last line is "RESULT key=value ...".  Bounded to ROUTING_BUDGET_S
# (default 570) seconds of runs: about 10 minutes.
#
# Ports (none of the demo's), two sets used in turn: gateway
# 127.0.0.1:18185 / 18186, members 127.0.3.{1..6}:8000 and 127.0.4.{1..4}:8000
# / 127.0.13.x and 127.0.14.x, simulator admin 127.0.0.1:18199 / 18198.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)

bash "$root/util/setup.sh"
bash "$root/util/build.sh" >/dev/null

# the plots need Debian's matplotlib (the tables and the RESULT line do not)
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "routing: installing python3-matplotlib (for the plots)" >&2
    { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null; } \
        || echo "routing: python3-matplotlib could not be installed: no plots" >&2
fi

# "seeds": util/bench/routing_seeds.py, one case run for several seeds
if [ "${1:-}" = seeds ]; then
    exec /usr/bin/python3 "$root/util/bench/routing_seeds.py"
fi

exec /usr/bin/python3 "$root/util/bench/routing.py"
