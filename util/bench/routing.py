#!/usr/bin/python3
"""routing.py - the routing benchmark (run through util/bench/run.sh routing).

Open-loop Poisson arrivals (util/sim/loadgen.py) on a simulated vLLM fleet
(util/sim/vllm_sim.py), through one nginx per strategy, at several loads
given as a fraction of the fleet's capacity, measured first (below).

Workloads:
  sharegpt       ShareGPT-like prompt and output lengths (loadgen's)
  shared-prefix  64 users over 16 system prompts of 1024 tokens; the KV
                 cache of a member (6144 tokens) holds about four of them
                 next to its running requests, so where a request goes
                 decides whether its prefix is cached (with 8 prompts every
                 member ended up holding most of them, whatever the
                 routing)
  lora           4 LoRA adapters, uniform, on members with max_lora 2
  unequal        sharegpt on two regions: the local one (europe-west3) has
                 2 members, the remote one (us-east4) 4, 90 ms away
  failure        sharegpt; one member stops answering (sim fault "hang",
                 scope all: requests, /health and /metrics) at 25 % of the
                 run, for the rest of it
  priorities     sharegpt at 120 % of its capacity with mixed objectives
                 (loadgen --objective): 20 % "critical" (priority 10), 30 %
                 "batch" (priority -1, sheddable), 50 % without the header
                 ("default", priority 0); the mcig strategies declare them
                 (mcig_objective), nginx's see the headers only.  Does
                 critical keep its TTFT SLO while batch absorbs the
                 overload?  Third in the plan (after shared-prefix and
                 sharegpt at 80 %); runs least_conn and the three mcig
                 modes, then mcig_kv_queue_off at the end of the plan if
                 the budget leaves time

Strategies are a table (STRATEGIES): a name, the upstream lines and, if
needed, http-level lines.  To add one, add an entry; "regions": True runs
it only on fleets with several regions, where the member list is split by
region and {regions} / {region_lines} are filled in; "workloads" limits it
to some workloads; "extra": True runs it only when ROUTING_STRATEGIES
names it (mcig_kv_queue_off, mcig_scorers_queue_off: the mcig_queue
default's effect).  A workload may add upstream lines to the mcig
strategies (its "objectives"), restrict its strategies ("strategies") and
name "late" ones, run after every other run of the plan; ROUTING_STRATEGIES
overrides both.

Capacity: for each workload, loadgen sends twice the expected capacity
through least_conn for PROBE_S seconds; the capacity is the completions per
second in the second half of that window, when every member is saturated.
It is cached in capacity.json (keyed by the fleet and workload parameters);
ROUTING_CAPACITY=measure measures again.

Measures per run: TTFT, end-to-end latency and TPOT (p50, p90, p99) of the
requests scheduled after the warm-up (WARMUP_S), output tokens/s (loadgen's:
over the whole run, drain included), goodput (requests within the SLO per
second of the measured window, and as a fraction), answers by status (429,
503, 504, other errors, cut streams, timeouts), the fleet's prefix-cache hit
rate (hits / queries in tokens, from the simulator's /state), preemptions,
and the share served by the remote region.  With objectives (priorities):
the same per objective (critical / default / batch), answers by status
(200, 429, 503, 504, other) and the requests that waited in the gateway's
queue (its status JSON, saved as runs/<run>.status.json).

Output in build/bench/routing/: results.csv, results.json, results.md
(per-objective table under priorities), objectives.csv (a row per run and
objective), ttft_vs_load.png, goodput.png, prefix_hit.png (when matplotlib
is there), runs/<run>.{csv,json,log}.  The last line is "RESULT key=value
...": ratios of mcig to nginx, and for priorities prio_critical_ttft_p99_<s>,
prio_critical_goodput_pct_<s>, prio_default_ttft_p99_<s>,
prio_default_goodput_pct_<s>, prio_batch_shed_pct_<s> (the share of batch
requests answered 429) per strategy <s> (lc, inflight, kv, scorers,
kv_queue_off).

Environment: ROUTING_BUDGET_S (570: runs that would end past it are
skipped, the most important ones run first; the full plan takes about
600 s the first time, when the capacities are measured, and 570 s after), ROUTING_DURATION_S (6),
ROUTING_LOADS (30,80,120: the load sweep of sharegpt),
ROUTING_LOADS_PREFIX (80,120: of shared-prefix; priorities runs at 120,
the other workloads at 80; at 30 % every strategy does the same), ROUTING_SEED (1), ROUTING_ONLY (a comma-
separated list of workloads), ROUTING_STRATEGIES (a comma-separated list).
"""

import collections
import csv
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "build", "bench", "routing")
WORK = os.path.join(OUT, "work")
RUNS = os.path.join(OUT, "runs")
SIM = os.path.join(ROOT, "util", "sim", "vllm_sim.py")
LOADGEN = os.path.join(ROOT, "util", "sim", "loadgen.py")
MODULE = os.path.join(ROOT, "build", "ngx_http_upstream_mcig_module.so")
NGINX = os.environ.get("MCIG_NGINX", "/usr/sbin/nginx")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# Ports apart from the demo's (8080, 127.0.1.x/127.0.2.x:8000, 8099) and
# the other benchmarks' (18180-18183, 18190-18191, 19000+).  Two slots,
# used in turn, each with its gateway port, member addresses (local and
# remote region) and simulator admin port: a run's teardown - nginx's
# master takes about 1.5 s to exit, and the members are stopped only after
# it, not to cut the connections of a worker on its way out - goes on
# while the next run starts in the other slot.
GW_HOST = "127.0.0.1"
SLOTS = [{"port": 18185, "local": "127.0.3", "remote": "127.0.4",
          "admin": "127.0.0.1:18199"},
         {"port": 18186, "local": "127.0.13", "remote": "127.0.14",
          "admin": "127.0.0.1:18198"}]
LOCAL, REMOTE = "europe-west3", "us-east4"

BUDGET_S = float(os.environ.get("ROUTING_BUDGET_S", "570"))
DURATION_S = float(os.environ.get("ROUTING_DURATION_S", "6"))
WARMUP_S = 1.5
PROBE_S = 6.0
TIMEOUT_S = 15.0
SEED = int(os.environ.get("ROUTING_SEED", "1"))
LOADS = {"sharegpt": [int(x) for x in
                     os.environ.get("ROUTING_LOADS", "30,80,120").split(",")],
         "shared-prefix": [int(x) for x in
                           os.environ.get("ROUTING_LOADS_PREFIX", "80,120").split(",")]}

# The SLO of the goodput: a chat service's first token within a second, and
# tokens no slower than 4x the unloaded step of the modeled H100 (6 ms).
SLO_TTFT_MS = 1000.0
SLO_TPOT_MS = 25.0

# ----------------------------------------------------------------------------
# Strategies: name -> nginx lines.  {servers} are filled in by the runner.
# ----------------------------------------------------------------------------

MCIG_HC = "mcig_health_check path=/health;"    # GCP defaults: 5 s, 2 failures

STRATEGIES = collections.OrderedDict([
    ("round_robin", {
        "label": "nginx round robin",
        "upstream": "zone fleet 256k;",
    }),
    ("least_conn", {
        "label": "nginx least_conn",
        "upstream": "zone fleet 256k;\nleast_conn;",
    }),
    ("mcig_in_flight", {
        "label": "mcig in_flight",
        "upstream": "mcig_pool;\nmcig_balancing_mode in_flight;\n" + MCIG_HC,
        "status": True,
    }),
    ("mcig_kv", {
        "label": "mcig custom_metrics 80",
        "upstream": ("mcig_pool;\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     + MCIG_HC),
        "status": True,
    }),
    ("mcig_scorers", {
        "label": "mcig_scorers (EPP weights)",
        "upstream": ("mcig_pool;\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     "mcig_scorers;\n" + MCIG_HC),
        "status": True,
    }),
    ("mcig_scorers_lora", {
        "label": "mcig_scorers lora=2",
        "upstream": ("mcig_pool;\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     "mcig_scorers lora=2;\n" + MCIG_HC),
        "status": True,
        "workloads": ["lora"],
    }),
    # "extra": run only when named in ROUTING_STRATEGIES
    ("mcig_kv_queue_off", {
        "label": "mcig custom_metrics 80, mcig_queue off",
        "upstream": ("mcig_pool;\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     "mcig_queue off;\n" + MCIG_HC),
        "status": True,
        "extra": True,
    }),
    ("mcig_scorers_queue_off", {
        "label": "mcig_scorers, mcig_queue off",
        "upstream": ("mcig_pool;\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     "mcig_scorers;\nmcig_queue off;\n" + MCIG_HC),
        "status": True,
        "extra": True,
    }),
    ("mcig_kv_regions", {
        "label": "mcig custom_metrics 80 + regions",
        "http": "mcig_regions {regions};",
        "upstream": ("mcig_pool;\n{region_lines}\nmcig_metrics;\n"
                     "mcig_balancing_mode custom_metrics max_utilization=80;\n"
                     + MCIG_HC),
        "status": True,
        "regions": True,
    }),
])

# the mcig strategies of the RESULT line
HEADLINE_MCIG = ["mcig_kv", "mcig_scorers"]

# ----------------------------------------------------------------------------
# Fleets and workloads
# ----------------------------------------------------------------------------

ADAPTERS = ["food-review-1", "food-review-2", "sql-lora", "chat-lora"]

# One simulated H100 each (the sim's defaults: 6 ms decode step, 35 us per
# prefill token) with a small KV cache (384 blocks = 6144 tokens) so that a
# few tens of requests per second load the fleet on two cores.
FLEET_DEFAULTS = {"kv_blocks": 384, "max_num_seqs": 32,
                  "adapters": ADAPTERS, "max_lora": 2}


def fleet(kind, slot=SLOTS[0]):
    servers = []
    if kind == "unequal":
        regions = {LOCAL: {"network_delay_ms": 1}, REMOTE: {"network_delay_ms": 90}}
        for i in (1, 2):
            servers.append({"listen": "%s.%d:8000" % (slot["local"], i), "region": LOCAL})
        for i in (1, 2, 3, 4):
            servers.append({"listen": "%s.%d:8000" % (slot["remote"], i), "region": REMOTE})
    else:
        regions = {LOCAL: {"network_delay_ms": 1}}
        for i in range(1, 7):
            servers.append({"listen": "%s.%d:8000" % (slot["local"], i), "region": LOCAL})
    return {"seed": SEED, "admin": slot["admin"], "time_scale": 1,
            "defaults": dict(FLEET_DEFAULTS), "regions": regions,
            "servers": servers}


SHAREGPT = ["--workload", "sharegpt"]
WORKLOADS = collections.OrderedDict([
    ("sharegpt", {"fleet": "single", "args": SHAREGPT, "capacity": "sharegpt",
                  "guess": 40}),
    ("shared-prefix", {"fleet": "single",
                       "args": ["--workload", "shared-prefix", "--prefixes", "16",
                                "--prefix-tokens", "1024", "--users", "64"],
                       "capacity": "shared-prefix", "guess": 30}),
    ("lora", {"fleet": "single",
              "args": ["--workload", "lora", "--adapters", ",".join(ADAPTERS)],
              "capacity": "lora", "guess": 35}),
    ("unequal", {"fleet": "unequal", "args": SHAREGPT, "capacity": "sharegpt"}),
    ("failure", {"fleet": "single", "args": SHAREGPT, "capacity": "sharegpt",
                 "fault": (0.25, "hang", 0), "duration": 8}),
    # "objectives": (name, priority, fraction) tagged by loadgen and declared
    # (mcig_objective) in the upstream of the mcig strategies; the rest of the
    # requests carry no header (priority 0, "default" in the report).
    # "strategies": the ones run (the 4 main: the budget); "late": run after
    # every other run of the plan, if the budget leaves time.
    ("priorities", {"fleet": "single", "args": SHAREGPT, "capacity": "sharegpt",
                    "objectives": [("critical", 10, 0.2), ("batch", -1, 0.3)],
                    "strategies": ["least_conn", "mcig_in_flight", "mcig_kv",
                                   "mcig_scorers"],
                    "late": ["mcig_kv_queue_off"]}),
])


def workload_args(workload):
    w = WORKLOADS[workload]
    out = list(w["args"])
    for name, _, frac in w.get("objectives", []):
        out += ["--objective", "%s=%g" % (name, frac)]
    return out


def objective_groups(workload):
    """(label, header value, priority) per objective, highest priority
    first; the requests without a header are "default" (priority 0)."""
    objs = WORKLOADS[workload].get("objectives")
    if not objs:
        return []
    g = [(name, name, prio) for name, prio, _ in objs] + [("default", "", 0)]
    return sorted(g, key=lambda x: -x[2])


def plan():
    """(workload, load %) in order of importance: the budget cuts the tail
    (the lightest loads, where every strategy does the same, come last)."""
    only = [w for w in os.environ.get("ROUTING_ONLY", "").split(",") if w]
    sweep = [(w, load) for w in ("sharegpt", "shared-prefix") for load in LOADS[w]]
    p = [x for x in (("shared-prefix", 80), ("sharegpt", 80)) if x in sweep]
    p.append(("priorities", 120))     # mixed objectives in overload
    p += sorted((x for x in sweep if x[1] >= 80 and x not in p), key=lambda x: -x[1])
    p += [("unequal", 80), ("failure", 80), ("lora", 80)]
    p += sorted((x for x in sweep if x not in p), key=lambda x: -x[1])
    return [x for x in p if not only or x[0] in only]


def strategies_for(workload, late=False):
    """The strategies run on a workload: ROUTING_STRATEGIES if set, else
    the workload's "strategies" (or all but the extra ones); late=True:
    its "late" ones, run at the end of the plan (without
    ROUTING_STRATEGIES only)."""
    names = [s for s in os.environ.get("ROUTING_STRATEGIES", "").split(",") if s]
    w = WORKLOADS[workload]
    multi = w["fleet"] == "unequal"
    if late:
        return [] if names else list(w.get("late", []))
    out = []
    for name, s in STRATEGIES.items():
        if names and name not in names:
            continue
        if s.get("extra") and name not in names:
            continue
        if not names and w.get("strategies") and name not in w["strategies"]:
            continue
        if s.get("regions") and not multi:
            continue
        if s.get("workloads") and workload not in s["workloads"]:
            continue
        out.append(name)
    return out


# ----------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------

def log(*a):
    print("routing:", *a, file=sys.stderr, flush=True)


def port_open(host, port):
    s = socket.socket()
    s.settimeout(0.3)
    try:
        return s.connect_ex((host, port)) == 0
    finally:
        s.close()


def http_json(url, method="GET", timeout=3.0):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Slot:
    """A slot's resources and the teardown of its last run."""
    all = []
    turn = 0

    def __init__(self, cfg):
        self.cfg = cfg
        self.thread = None

    @classmethod
    def next(cls):
        slot = cls.all[cls.turn % len(cls.all)]
        cls.turn += 1
        slot.join()
        return slot

    def join(self):
        if self.thread is not None:
            self.thread.join(30)
            self.thread = None

    def teardown(self, ngx, sim):
        def run():
            if ngx is not None:
                ngx.stop(wait=True)
            if sim is not None:
                sim.stop()
        self.thread = threading.Thread(target=run)
        self.thread.start()

    @classmethod
    def join_all(cls):
        for slot in cls.all:
            slot.join()


Slot.all = [Slot(c) for c in SLOTS]


class Sim:
    def __init__(self, fleet_doc, path, logpath):
        self.admin = fleet_doc["admin"]
        with open(path, "w") as f:
            json.dump(fleet_doc, f, indent=1)
        self.log = open(logpath, "w")
        self.p = subprocess.Popen([PY, SIM, "--fleet", path], stdout=subprocess.PIPE,
                                  stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        line = ""
        t_end = time.monotonic() + 15
        # the ready line comes once every port listens
        while time.monotonic() < t_end:
            line = self.p.stdout.readline()
            if line.startswith("vllm_sim ready") or not line:
                break
        if not line.startswith("vllm_sim ready"):
            self.stop()
            raise RuntimeError("the simulator did not start (see %s)" % logpath)

    def state(self):
        return http_json("http://%s/state" % self.admin)

    def fault(self, server, kind, **params):
        q = "&".join("%s=%s" % kv for kv in params.items())
        return http_json("http://%s/fault?server=%s&kind=%s%s"
                         % (self.admin, server, kind, "&" + q if q else ""), "POST")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()


def is_mcig(strategy):
    return "mcig_pool;" in STRATEGIES[strategy]["upstream"]


def workload_upstream(workload, strategy):
    """Upstream lines a workload adds to the mcig strategies: its
    objectives (nginx's round robin and least_conn have none and only see
    the headers)."""
    if not is_mcig(strategy):
        return ""
    return "\n".join("mcig_objective %s priority=%d;" % (name, prio)
                     for name, prio, _ in WORKLOADS[workload].get("objectives", []))


def nginx_conf(strategy, fleet_doc, logpath, port, pidfile, extra=""):
    s = STRATEGIES[strategy]
    servers = "\n".join("        server %s;" % m["listen"] for m in fleet_doc["servers"])
    regions = list(fleet_doc["regions"])
    region_lines = "\n".join(
        "mcig_region %s %s;" % (r, " ".join(m["listen"] for m in fleet_doc["servers"]
                                            if m["region"] == r))
        for r in regions)
    fill = lambda text: (text.replace("{regions}", " ".join(regions))
                         .replace("{region_lines}", region_lines))
    indent = lambda text: "\n".join("        " + l for l in fill(text).splitlines())
    status = ""
    if s.get("status"):
        status = "        location = /mcig/status { mcig_status; }\n"
    return """load_module %(module)s;
worker_processes 2;
error_log %(log)s notice;
pid %(pidfile)s;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %(work)s/body;
    proxy_temp_path %(work)s/proxy;
    client_max_body_size 16m;
%(http)s
    upstream fleet {
%(servers)s
%(upstream)s
        keepalive 128;
    }
    server {
        listen %(host)s:%(port)d backlog=4096;
        keepalive_requests 100000;
        location /v1/ {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 10s;
        }
%(status)s    }
}
""" % {"module": MODULE, "log": logpath, "work": WORK,
       "http": indent(s.get("http", "")), "servers": servers,
       "upstream": indent(s["upstream"] + ("\n" + extra if extra else "")),
       "host": GW_HOST, "port": port,
       "status": status, "pidfile": pidfile}


class Nginx:
    def __init__(self, strategy, fleet_doc, logpath, slot, extra=""):
        self.port = slot.cfg["port"]
        self.pidfile = os.path.join(WORK, "nginx-%d.pid" % self.port)
        self.conf = os.path.join(WORK, "nginx-%d.conf" % self.port)
        self.logpath = logpath
        self.pid = None
        for _ in range(100):            # the previous nginx on this port
            if not port_open(GW_HOST, self.port):
                break
            time.sleep(0.05)
        with open(self.conf, "w") as f:
            f.write(nginx_conf(strategy, fleet_doc, logpath, self.port, self.pidfile,
                               extra))
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        r = subprocess.run([NGINX, "-p", WORK + "/", "-c", self.conf, "-e", logpath],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("nginx did not start: %s" % r.stderr.strip())
        for _ in range(50):
            try:
                self.pid = int(open(self.pidfile).read())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        for _ in range(50):
            if port_open(GW_HOST, self.port):
                break
            time.sleep(0.05)
        self.url = "http://%s:%d" % (GW_HOST, self.port)

    def status(self):
        try:
            doc = http_json(self.url + "/mcig/status")
            return doc["pools"]["fleet"]
        except (OSError, ValueError, KeyError):
            return None

    def stop(self, wait=True):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        t_end = time.monotonic() + 10
        while wait and time.monotonic() < t_end:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.pid = None

    def alerts(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return [l.rstrip() for l in f
                        if "[alert]" in l or "[crit]" in l or "[emerg]" in l]
        except OSError:
            return []


# ----------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------

def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def analyse(csv_path, duration, local_region, objectives=()):
    """The measures of a run over the requests scheduled after the warm-up;
    with objectives ((label, header value, priority), ...) the same per
    objective too, under "objectives" (label -> measures)."""
    rows = list(csv.DictReader(open(csv_path)))
    win = [r for r in rows if float(r["t_sched"]) >= WARMUP_S]
    window_s = max(0.001, duration - WARMUP_S)
    res = measures(win, window_s, local_region)
    if objectives:
        res["objectives"] = collections.OrderedDict()
        for label, value, prio in objectives:
            m = measures([r for r in win if r["objective"] == value], window_s,
                         local_region)
            m["priority"] = prio
            m["shed_frac"] = (round(m["n429"] / m["requests"], 4)
                              if m["requests"] else None)
            res["objectives"][label] = m
    return res


def measures(win, window_s, local_region):
    def f(r, k):
        return float(r[k]) if r[k] not in ("", None) else None

    def status_key(r):
        if r["status"] == "200":
            return "ok" if not r["error"] else "cut"
        if r["status"] in ("", "0"):
            return "timeout" if "timeout" in r["error"] or "cancel" in r["error"] else "error"
        return r["status"]

    ok = [r for r in win if status_key(r) == "ok"]
    ttft = [f(r, "ttft_ms") for r in ok if f(r, "ttft_ms") is not None]
    e2e = [f(r, "e2e_ms") for r in ok]
    tpot = []
    good = 0
    for r in ok:
        t, e, n = f(r, "ttft_ms"), f(r, "e2e_ms"), f(r, "output_tokens")
        tp = (e - t) / (n - 1) if (t is not None and n and n >= 2) else None
        if tp is not None:
            tpot.append(tp)
        if t is not None and t <= SLO_TTFT_MS and (tp is None or tp <= SLO_TPOT_MS):
            good += 1
    st = collections.Counter(status_key(r) for r in win)
    remote = sum(1 for r in win if r["region"] and r["region"] != local_region)
    served = sum(1 for r in win if r["region"])
    r1 = lambda x: None if x is None else round(x, 1)
    return {
        "requests": len(win),
        "ok": len(ok),
        "ttft_p50": r1(pct(ttft, 50)), "ttft_p90": r1(pct(ttft, 90)),
        "ttft_p99": r1(pct(ttft, 99)),
        "e2e_p50": r1(pct(e2e, 50)), "e2e_p90": r1(pct(e2e, 90)),
        "e2e_p99": r1(pct(e2e, 99)),
        "tpot_p50": r1(pct(tpot, 50)), "tpot_p90": r1(pct(tpot, 90)),
        "goodput_per_s": round(good / window_s, 2),
        "goodput_frac": round(good / len(win), 4) if win else None,
        "n429": st.get("429", 0), "n503": st.get("503", 0), "n504": st.get("504", 0),
        "n_other": sum(v for k, v in st.items()
                       if k not in ("ok", "cut", "timeout", "429", "503", "504")),
        "n_cut": st.get("cut", 0), "n_timeout": st.get("timeout", 0),
        "remote_frac": round(remote / served, 4) if served else 0.0,
    }


def sim_totals(state):
    q = h = pre = 0
    for s in state["servers"]:
        for e in s["engines"]:
            q += e["prefix_queries"]
            h += e["prefix_hits"]
            pre += e["preemptions"]
    return q, h, pre


def run_one(workload, strategy, rate, duration, tag):
    w = WORKLOADS[workload]
    slot = Slot.next()
    fdoc = fleet(w["fleet"], slot.cfg)
    base = os.path.join(RUNS, tag)
    sim = Sim(fdoc, os.path.join(WORK, "fleet-%d.json" % slot.cfg["port"]),
              base + ".sim.log")
    ngx = None
    timer = None
    try:
        ngx = Nginx(strategy, fdoc, base + ".nginx.log", slot,
                    workload_upstream(workload, strategy))
        # let the scraper and the health checks see every member once
        t_end = time.monotonic() + 3
        while STRATEGIES[strategy].get("status") and time.monotonic() < t_end:
            st = ngx.status()
            if st and all(m.get("metrics") is not None or st["balancing_mode"] != "custom_metrics"
                          for m in st["members"]):
                break
            time.sleep(0.1)
        time.sleep(0.2)
        fault = w.get("fault")
        t0 = time.monotonic()
        if fault:
            at, kind, member = fault
            server = fdoc["servers"][member]["listen"]
            timer = threading.Timer(0.05 + at * duration,
                                    lambda: sim.fault(server, kind, scope="all"))
            timer.start()
        cmd = [PY, LOADGEN, "--url", ngx.url,
               "--rate", "%.3f" % rate, "--duration", "%g" % duration,
               "--requests", "100000", "--timeout", "%g" % TIMEOUT_S,
               "--seed", str(SEED), "--csv", base + ".csv", "--json", base + ".json",
               "--slo-ttft-ms", "%g" % SLO_TTFT_MS, "--slo-tpot-ms", "%g" % SLO_TPOT_MS
               ] + workload_args(workload)
        with open(base + ".loadgen.log", "w") as lg:
            subprocess.run(cmd, stdout=lg, stderr=subprocess.STDOUT,
                           timeout=duration + TIMEOUT_S + 30)
        wall = time.monotonic() - t0
        status = ngx.status() if STRATEGIES[strategy].get("status") else None
        state = sim.state()
    finally:
        if timer:
            timer.cancel()
        slot.teardown(ngx, sim)
    res = analyse(base + ".csv", duration, LOCAL, objective_groups(workload))
    summ = json.load(open(base + ".json"))
    if status is not None:
        with open(base + ".status.json", "w") as f:
            json.dump(status, f, indent=1)
    if status and res.get("objectives"):
        # the gateway's own counts per objective (the whole run, warm-up
        # included): requests that waited in its queue, shed, timed out
        for o in status.get("objectives") or []:
            m = res["objectives"].get(o.get("name") or "default")
            if m is not None:
                for k in ("queued", "shed", "queue_timeout"):
                    m["gw_" + k] = o.get(k)
    q, h, pre = sim_totals(state)
    res.update({
        "workload": workload, "strategy": strategy, "rate": round(rate, 2),
        "duration_s": duration, "wall_s": round(wall, 1),
        "output_tokens_per_s": summ["output_tokens_per_s"],
        "prefix_hit": round(h / q, 4) if q else None,
        "preemptions": pre,
        "nginx_log": base + ".nginx.log",
        "spillover": (status or {}).get("decisions", {}).get("spillover"),
    })
    return res


# ----------------------------------------------------------------------------
# Capacity
# ----------------------------------------------------------------------------

def capacity_key(workload):
    w = WORKLOADS[workload]
    doc = {"fleet": fleet("single"), "args": w["args"], "probe": PROBE_S, "seed": SEED,
           "v": 1}
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def measure_capacity(workload):
    w = WORKLOADS[workload]
    tag = "capacity-" + workload
    base = os.path.join(RUNS, tag)
    rate = 2.0 * w["guess"]
    log("measuring the capacity on %s: %g req/s for %g s through least_conn"
        % (workload, rate, PROBE_S))
    slot = Slot.next()
    fdoc = fleet("single", slot.cfg)
    sim = Sim(fdoc, os.path.join(WORK, "fleet-%d.json" % slot.cfg["port"]),
              base + ".sim.log")
    ngx = None
    try:
        ngx = Nginx("least_conn", fdoc, base + ".nginx.log", slot)
        time.sleep(0.2)
        cmd = [PY, LOADGEN, "--url", ngx.url,
               "--rate", "%g" % rate, "--duration", "%g" % PROBE_S,
               "--requests", "100000", "--timeout", "4", "--seed", str(SEED + 1000),
               "--csv", base + ".csv", "--json", base + ".json"] + w["args"]
        with open(base + ".loadgen.log", "w") as lg:
            subprocess.run(cmd, stdout=lg, stderr=subprocess.STDOUT, timeout=PROBE_S + 40)
    finally:
        slot.teardown(ngx, sim)
    done = []
    for r in csv.DictReader(open(base + ".csv")):
        if r["status"] == "200" and not r["error"] and r["e2e_ms"]:
            done.append(float(r["t_sched"]) + float(r["e2e_ms"]) / 1e3)
    lo, hi = PROBE_S / 2, PROBE_S
    cap = sum(1 for t in done if lo <= t < hi) / (hi - lo)
    log("capacity of %s: %.1f req/s" % (workload, cap))
    return round(cap, 2)


def capacities(needed):
    path = os.path.join(OUT, "capacity.json")
    try:
        cache = json.load(open(path))
    except (OSError, ValueError):
        cache = {}
    remeasure = os.environ.get("ROUTING_CAPACITY", "") == "measure"
    out = {}
    for c in needed:
        key = capacity_key(c)
        if not remeasure and key in cache:
            out[c] = cache[key]["capacity"]
            log("capacity of %s: %.1f req/s (measured before, %s)"
                % (c, out[c], os.path.relpath(path, ROOT)))
            continue
        out[c] = measure_capacity(c)
        cache[key] = {"workload": c, "capacity": out[c], "measured": time.strftime("%F %T")}
        with open(path, "w") as f:
            json.dump(cache, f, indent=1)
    return out


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------

COLS = [("load", "load %"), ("rate", "req/s"), ("strategy", "strategy"),
        ("ttft_p50", "TTFT p50 ms"), ("ttft_p90", "TTFT p90 ms"), ("ttft_p99", "TTFT p99 ms"),
        ("e2e_p50", "e2e p50 ms"), ("e2e_p90", "e2e p90 ms"), ("e2e_p99", "e2e p99 ms"),
        ("tpot_p50", "TPOT p50 ms"), ("output_tokens_per_s", "out tok/s"),
        ("goodput_per_s", "goodput/s"), ("goodput_frac", "goodput %"),
        ("n429", "429"), ("n503", "503"), ("n504", "504"), ("errs", "other errors"),
        ("prefix_hit", "prefix hit %"), ("preemptions", "preempt"),
        ("remote_frac", "remote %")]


def cell(r, k):
    if k == "errs":
        return str(r["n_other"] + r["n_cut"] + r["n_timeout"])
    v = r.get(k)
    if v is None:
        return "-"
    if k in ("goodput_frac", "prefix_hit", "remote_frac"):
        return "%.1f" % (100 * v)
    if isinstance(v, float):
        return "%.0f" % v if abs(v) >= 100 else "%.1f" % v
    return str(v)


OBJ_COLS = [("strategy", "strategy"), ("objective_prio", "objective (priority)"),
            ("requests", "requests"), ("ttft_p50", "TTFT p50 ms"),
            ("ttft_p90", "TTFT p90 ms"), ("ttft_p99", "TTFT p99 ms"),
            ("tpot_p50", "TPOT p50 ms"), ("goodput_frac", "goodput %"),
            ("ok", "200"), ("n429", "429"), ("n503", "503"), ("n504", "504"),
            ("errs", "other errors"), ("gw_queued", "waited in gateway")]


def objective_rows(rs):
    """One row per (run, objective) of the runs with objectives."""
    out = []
    for r in sorted(rs, key=lambda r: (r["load"], list(STRATEGIES).index(r["strategy"]))):
        for label, m in (r.get("objectives") or {}).items():
            row = dict(m)
            row.update({"workload": r["workload"], "load": r["load"],
                        "strategy": r["strategy"],
                        "objective": label,
                        "objective_prio": "%s (%d)" % (label, m["priority"])})
            out.append(row)
    return out


def markdown(results, caps, meta):
    out = ["# Routing benchmark", "",
           "Machine: %s; load average before %s, after %s. Seed %d; %g s of arrivals per "
           "run (%g s for failure), statistics over the requests scheduled after the "
           "first %g s. SLO of the goodput: TTFT <= %g ms and TPOT <= %g ms. "
           "Capacity (req/s, measured through least_conn): %s."
           % (meta["machine"], meta["load_before"], meta["load_after"], SEED,
              DURATION_S, WORKLOADS["failure"].get("duration", DURATION_S), WARMUP_S,
              SLO_TTFT_MS, SLO_TPOT_MS,
              ", ".join("%s %.1f" % kv for kv in caps.items())), ""]
    for w in WORKLOADS:
        rs = [r for r in results if r["workload"] == w]
        if not rs:
            continue
        out += ["## %s" % w, "",
                "| " + " | ".join(h for _, h in COLS) + " |",
                "|" + "---|" * len(COLS)]
        for r in sorted(rs, key=lambda r: (r["load"], list(STRATEGIES).index(r["strategy"]))):
            out.append("| " + " | ".join(cell(r, k) for k, _ in COLS) + " |")
        out.append("")
        orows = objective_rows(rs)
        if orows:
            out += ["Per objective (goodput % = requests within the SLO / requests of "
                    "that objective, shed ones included; \"waited in gateway\": the "
                    "gateway's count over the whole run, warm-up included):", "",
                    "| load % | " + " | ".join(h for _, h in OBJ_COLS) + " |",
                    "|" + "---|" * (len(OBJ_COLS) + 1)]
            for r in orows:
                out.append("| %d | " % r["load"]
                           + " | ".join(cell(r, k) for k, _ in OBJ_COLS) + " |")
            out.append("")
    if meta["skipped"]:
        out += ["Skipped (time budget): " + ", ".join(meta["skipped"]), ""]
    return "\n".join(out) + "\n"


def plots(results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing: no plots")
        return []
    files = []
    labels = {k: v["label"] for k, v in STRATEGIES.items()}
    # TTFT against load: the sweeps (none with e.g. ROUTING_ONLY=priorities)
    if any(r["workload"] in ("sharegpt", "shared-prefix") for r in results):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, w in zip(axes, ("sharegpt", "shared-prefix")):
            for s in STRATEGIES:
                pts = sorted((r["load"], r["ttft_p90"]) for r in results
                             if r["workload"] == w and r["strategy"] == s
                             and r["ttft_p90"] is not None)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                            label=labels[s])
            ax.set_yscale("log")
            ax.set_title("%s: TTFT p90" % w)
            ax.set_xlabel("load, % of the fleet's capacity")
            ax.set_ylabel("ms")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(OUT, "ttft_vs_load.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        files.append(p)

    for metric, name, title in (("goodput_frac", "goodput.png",
                                 "goodput (share of requests within the SLO) at 80 % load"),
                                ("prefix_hit", "prefix_hit.png",
                                 "prefix-cache hit rate (tokens) at 80 % load")):
        fig, ax = plt.subplots(figsize=(11, 5))
        ws = [w for w in WORKLOADS if any(r["workload"] == w and r["load"] == 80
                                          for r in results)]
        ss = [s for s in STRATEGIES if any(r["strategy"] == s and r["load"] == 80
                                           for r in results)]
        if not ss:
            plt.close(fig)
            continue            # a partial plan without runs at 80 %
        width = 0.8 / len(ss)
        for j, s in enumerate(ss):
            ys = []
            for w in ws:
                r = next((r for r in results if r["workload"] == w and r["load"] == 80
                          and r["strategy"] == s), None)
                ys.append(100 * (r[metric] or 0) if r else 0)
            ax.bar([i + (j - (len(ss) - 1) / 2) * width for i in range(len(ws))], ys,
                   width, label=labels[s])
        ax.set_xticks(range(len(ws)))
        ax.set_xticklabels(ws)
        ax.set_ylabel("%")
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4)
        fig.tight_layout()
        p = os.path.join(OUT, name)
        fig.savefig(p, dpi=100)
        plt.close(fig)
        files.append(p)
    return files


def result_line(results):
    """Headline ratios: mcig mode / nginx baseline (TTFT: < 1 is better;
    goodput: > 1 is better), the unequal regions' remote share and the
    prefix-cache hit rates."""
    def get(w, load, s, k):
        r = next((r for r in results if r["workload"] == w and r["load"] == load
                  and r["strategy"] == s), None)
        return None if r is None else r.get(k)

    def ratio(a, b):
        if a is None or b is None or b == 0:
            return "na"
        return "%.3f" % (a / b)

    short = {"mcig_kv": "kv", "mcig_scorers": "scorers", "mcig_in_flight": "inflight",
             "mcig_scorers_lora": "scorers_lora", "mcig_kv_regions": "regions",
             "round_robin": "rr", "least_conn": "lc",
             "mcig_kv_queue_off": "kv_queue_off",
             "mcig_scorers_queue_off": "scorers_queue_off"}
    kv = []
    for w, ws in (("shared-prefix", "sp"), ("sharegpt", "sg")):
        for load in (80, 120):
            for m in HEADLINE_MCIG:
                kv.append(("ttft_p90_%s%d_%s_over_rr" % (ws, load, short[m]),
                           ratio(get(w, load, m, "ttft_p90"),
                                 get(w, load, "round_robin", "ttft_p90"))))
                for b in ("round_robin", "least_conn"):
                    kv.append(("goodput_%s%d_%s_over_%s" % (ws, load, short[m], short[b]),
                               ratio(get(w, load, m, "goodput_per_s"),
                                     get(w, load, b, "goodput_per_s"))))
    for w, ms in (("failure", HEADLINE_MCIG), ("lora", HEADLINE_MCIG + ["mcig_scorers_lora"]),
                  ("unequal", ["mcig_kv_regions"])):
        for m in ms:
            for b in ("round_robin", "least_conn"):
                kv.append(("goodput_%s_%s_over_%s" % (w, short[m], short[b]),
                           ratio(get(w, 80, m, "goodput_per_s"), get(w, 80, b, "goodput_per_s"))))
    rf = get("unequal", 80, "mcig_kv_regions", "remote_frac")
    kv.append(("remote_share_unequal_regions", "na" if rf is None else "%.3f" % rf))
    for s in ("round_robin", "least_conn") + tuple(HEADLINE_MCIG):
        h = get("shared-prefix", 80, s, "prefix_hit")
        kv.append(("prefix_hit_sp80_%s" % short[s], "na" if h is None else "%.3f" % h))
    # mixed priorities at 120 %: per objective (TTFT in ms, shares in %)
    w = WORKLOADS["priorities"]
    for s in w["strategies"] + w["late"]:
        objs = get("priorities", 120, s, "objectives") or {}

        def o(label, k, scale=1, fmt="%.0f"):
            v = (objs.get(label) or {}).get(k)
            return "na" if v is None else fmt % (scale * v)
        kv += [("prio_critical_ttft_p99_%s" % short[s], o("critical", "ttft_p99")),
               ("prio_critical_goodput_pct_%s" % short[s],
                o("critical", "goodput_frac", 100, "%.1f")),
               ("prio_default_ttft_p99_%s" % short[s], o("default", "ttft_p99")),
               ("prio_default_goodput_pct_%s" % short[s],
                o("default", "goodput_frac", 100, "%.1f")),
               ("prio_batch_shed_pct_%s" % short[s], o("batch", "shed_frac", 100, "%.1f"))]
    return " ".join("%s=%s" % x for x in kv)


# ----------------------------------------------------------------------------

def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def main():
    t_start = time.monotonic()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RUNS, exist_ok=True)
    for f in os.listdir(RUNS):
        if not f.startswith("capacity-"):
            os.unlink(os.path.join(RUNS, f))
    busy = [a for c in SLOTS for a in ["%s:%d" % (GW_HOST, c["port"]), c["admin"]]
            + ["%s.%d:8000" % (c["local"], i) for i in range(1, 7)]
            + ["%s.%d:8000" % (c["remote"], i) for i in range(1, 5)]
            if port_open(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))]
    if busy:
        log("already in use: %s (another routing benchmark?)" % ", ".join(busy))
        return 1
    meta = {"load_before": loadavg(), "skipped": [],
            "machine": "%d cores, %s" % (os.cpu_count() or 0, os.uname().release)}
    log("load average before: %s" % meta["load_before"])
    p = plan()
    caps = capacities(sorted({WORKLOADS[w]["capacity"] for w, _ in p},
                             key=list(WORKLOADS).index))
    results = []
    runs = [(w, load, s) for w, load in p for s in strategies_for(w)]
    runs += [(w, load, s) for w, load in p for s in strategies_for(w, late=True)]
    log("%d runs planned, budget %g s" % (len(runs), BUDGET_S))
    avg = None
    for i, (w, load, s) in enumerate(runs):
        duration = WORKLOADS[w].get("duration", DURATION_S)
        elapsed = time.monotonic() - t_start
        guess = (avg or 0) * duration / DURATION_S if avg else duration + 8
        tag = "%s-%d-%s" % (w, load, s)
        if elapsed + guess > BUDGET_S - 20:
            meta["skipped"].append(tag)
            continue
        rate = caps[WORKLOADS[w]["capacity"]] * load / 100.0
        t0 = time.monotonic()
        try:
            r = run_one(w, s, rate, duration, tag)
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
            log("%s: failed: %s" % (tag, e))
            meta["skipped"].append(tag + " (failed)")
            continue
        dt = time.monotonic() - t0
        avg = dt * DURATION_S / duration if avg is None else 0.7 * avg + 0.3 * dt * DURATION_S / duration
        r["load"] = load
        results.append(r)
        log("[%d/%d %3.0fs] %-14s %3d%% %-16s %5.1f req/s: TTFT p50/p90/p99 %s/%s/%s ms, "
            "goodput %s%%, prefix hit %s%%, errors 429:%d 503:%d 504:%d other:%d, remote %s%%"
            % (i + 1, len(runs), time.monotonic() - t_start, w, load, s, rate,
               r["ttft_p50"], r["ttft_p90"], r["ttft_p99"], cell(r, "goodput_frac"),
               cell(r, "prefix_hit"), r["n429"], r["n503"], r["n504"],
               r["n_other"] + r["n_cut"] + r["n_timeout"], cell(r, "remote_frac")))
        for label, m in (r.get("objectives") or {}).items():
            log("    %-8s %4d req: TTFT p50/p90/p99 %s/%s/%s ms, goodput %s%%, "
                "200:%d 429:%d 503:%d 504:%d other:%d, waited in gateway %s"
                % (label, m["requests"], m["ttft_p50"], m["ttft_p90"], m["ttft_p99"],
                   cell(m, "goodput_frac"), m["ok"], m["n429"], m["n503"], m["n504"],
                   m["n_other"] + m["n_cut"] + m["n_timeout"], cell(m, "gw_queued")))
    Slot.join_all()
    for r in results:   # the whole log, the shutdown included
        with open(r.pop("nginx_log"), errors="replace") as f:
            bad = [l for l in f if "[alert]" in l or "[crit]" in l or "[emerg]" in l]
        r["alerts"] = len(bad)
        if bad:
            log("%s-%d-%s: nginx logged %d [alert]/[crit]/[emerg] lines, the first: %s"
                % (r["workload"], r["load"], r["strategy"], len(bad), bad[0].strip()))
    meta["load_after"] = loadavg()
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)

    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"meta": meta, "capacity": caps, "slo": {"ttft_ms": SLO_TTFT_MS,
                   "tpot_ms": SLO_TPOT_MS}, "results": results}, f, indent=1)
    keys = ["workload", "load", "strategy", "rate", "requests", "ok"] + \
        [k for k, _ in COLS if k not in ("load", "rate", "strategy", "errs")] + \
        ["n_other", "n_cut", "n_timeout", "wall_s", "spillover", "alerts"]
    with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in results:
            wr.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
    orows = objective_rows(results)
    if orows:
        okeys = ["workload", "load", "strategy", "objective", "priority", "requests",
                 "ok", "ttft_p50", "ttft_p90", "ttft_p99", "e2e_p99", "tpot_p50",
                 "goodput_per_s", "goodput_frac", "n429", "n503", "n504", "n_other",
                 "n_cut", "n_timeout", "shed_frac", "gw_queued", "gw_shed",
                 "gw_queue_timeout"]
        with open(os.path.join(OUT, "objectives.csv"), "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(okeys)
            for r in orows:
                wr.writerow(["" if r.get(k) is None else r.get(k) for k in okeys])
    md = markdown(results, caps, meta)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md)
    print(md)
    for pth in plots(results):
        log("plot: %s" % os.path.relpath(pth, ROOT))
    log("%d runs in %.0f s (%d skipped); load average after: %s"
        % (len(results), meta["elapsed_s"], len(meta["skipped"]), meta["load_after"]))
    alerts = sum(r["alerts"] for r in results)
    print("RESULT %s runs=%d skipped=%d elapsed_s=%.0f alerts=%d"
          % (result_line(results), len(results), len(meta["skipped"]),
             meta["elapsed_s"], alerts))
    return 1 if alerts else 0


if __name__ == "__main__":
    sys.exit(main())
