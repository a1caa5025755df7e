#!/usr/bin/python3
"""routing_seeds.py - one routing case, run again and again (util/bench/run.sh
routing-seeds).

A 6-s run of the routing benchmark at 120 % of capacity is decided by a few
long requests: its output tokens/s is the schedule's tokens over the time
the last answer took (drain included), and its goodput and TTFT p90 move
by tens of per cent from one run of the same seed to the next on two
shared cores.  One run cannot tell whether a strategy is 5 % worse than
another.  This runs the same case for several seeds, several times each,
and reports each strategy's mean, lowest and highest value of the headline
figures, and the ratio of its mean to the reference strategy's.

Environment: SEEDS_LIST (1,2,3), SEEDS_REPEAT (3: runs per seed),
SEEDS_WORKLOAD (sharegpt), SEEDS_LOAD (120), SEEDS_STRATEGIES
(mcig_in_flight,mcig_kv,mcig_scorers), SEEDS_REFERENCE (mcig_in_flight).
Each run is util/bench/routing.py with ROUTING_ONLY, ROUTING_LOADS (or
ROUTING_LOADS_PREFIX), ROUTING_STRATEGIES and ROUTING_SEED set; its
results.csv is kept as build/bench/routing-seeds/seed<S>-run<R>.csv (the
files of build/bench/routing/ are the last run's).  Output:
build/bench/routing-seeds/results.md and a last line "RESULT key=value
...": <figure>_ratio_<strategy> of the means, against the reference.
"""

import csv
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROUTING = os.path.join(ROOT, "util", "bench", "routing.py")
ROUTING_OUT = os.path.join(ROOT, "build", "bench", "routing")
OUT = os.path.join(ROOT, "build", "bench", "routing-seeds")

SEEDS = [int(s) for s in os.environ.get("SEEDS_LIST", "1,2,3").split(",") if s]
REPEAT = int(os.environ.get("SEEDS_REPEAT", "3"))
WORKLOAD = os.environ.get("SEEDS_WORKLOAD", "sharegpt")
LOAD = os.environ.get("SEEDS_LOAD", "120")
STRATEGIES = os.environ.get("SEEDS_STRATEGIES",
                            "mcig_in_flight,mcig_kv,mcig_scorers")
REFERENCE = os.environ.get("SEEDS_REFERENCE", "mcig_in_flight")

# (csv column, label, scale, higher is better)
FIGURES = [("ttft_p90", "TTFT p90 ms", 1, False),
           ("ttft_p99", "TTFT p99 ms", 1, False),
           ("e2e_p90", "e2e p90 ms", 1, False),
           ("goodput_frac", "goodput %", 100, True),
           ("output_tokens_per_s", "out tok/s", 1, True)]


def run_all():
    os.makedirs(OUT, exist_ok=True)
    loads = "ROUTING_LOADS_PREFIX" if WORKLOAD == "shared-prefix" else "ROUTING_LOADS"
    rows = []
    for rep in range(1, REPEAT + 1):
        for seed in SEEDS:
            env = dict(os.environ, ROUTING_ONLY=WORKLOAD, ROUTING_SEED=str(seed),
                       ROUTING_STRATEGIES=STRATEGIES)
            env[loads] = LOAD
            print("routing-seeds: seed %d, run %d of %d" % (seed, rep, REPEAT),
                  file=sys.stderr, flush=True)
            r = subprocess.run([sys.executable, ROUTING], env=env,
                               stdout=subprocess.DEVNULL, timeout=900)
            if r.returncode != 0:
                sys.exit("routing-seeds: routing.py exited with %d (seed %d)"
                         % (r.returncode, seed))
            keep = os.path.join(OUT, "seed%d-run%d.csv" % (seed, rep))
            shutil.copy(os.path.join(ROUTING_OUT, "results.csv"), keep)
            for row in csv.DictReader(open(keep)):
                if row["workload"] == WORKLOAD and row["load"] == LOAD:
                    row["seed"], row["run"] = seed, rep
                    rows.append(row)
    return rows


def report(rows):
    names = [s for s in STRATEGIES.split(",") if s]
    by = {s: [r for r in rows if r["strategy"] == s] for s in names}
    mean = {}
    lines = ["# routing-seeds: %s at %s %%, seeds %s, %d runs each"
             % (WORKLOAD, LOAD, ",".join(map(str, SEEDS)), REPEAT), "",
             "Mean [lowest - highest] over the %d runs of each strategy; "
             "ratio: the mean against %s's (higher is better for goodput "
             "and tokens/s, lower for the latencies)." % (len(SEEDS) * REPEAT, REFERENCE),
             "", "| strategy | runs | " + " | ".join(f[1] for f in FIGURES) + " |",
             "|---|---|" + "---|" * len(FIGURES)]
    for s in names:
        cells = []
        for col, _, scale, _ in FIGURES:
            v = [float(r[col]) * scale for r in by[s] if r[col] not in ("", None)]
            if not v:
                cells.append("-")
                continue
            mean[s, col] = statistics.mean(v)
            cells.append("%.4g [%.4g - %.4g]" % (mean[s, col], min(v), max(v)))
        lines.append("| %s | %d | %s |" % (s, len(by[s]), " | ".join(cells)))
    lines += ["", "| ratio to %s | " % REFERENCE + " | ".join(f[1] for f in FIGURES) + " |",
              "|---|" + "---|" * len(FIGURES)]
    result = []
    for s in names:
        if s == REFERENCE:
            continue
        cells = []
        for col, _, _, _ in FIGURES:
            ref, v = mean.get((REFERENCE, col)), mean.get((s, col))
            if not ref or v is None:
                cells.append("-")
                continue
            cells.append("%.3f" % (v / ref))
            result.append("%s_ratio_%s=%.3f" % (col, s, v / ref))
        lines.append("| %s | %s |" % (s, " | ".join(cells)))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text)
    print(text)
    print("RESULT " + " ".join(result))


def main():
    if STRATEGIES.split(",").count(REFERENCE) == 0:
        sys.exit("routing-seeds: the reference %s is not among SEEDS_STRATEGIES"
                 % REFERENCE)
    report(run_all())


if __name__ == "__main__":
    main()
