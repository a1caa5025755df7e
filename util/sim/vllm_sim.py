#!/usr/bin/python3
"""vllm_sim.py - a fleet of simulated vLLM OpenAI-compatible servers in one process.

Each simulated server listens on its own loopback port and answers like a vLLM
V1 server (the behaviour of vLLM 0.10.x is imitated):

  POST /v1/completions, POST /v1/chat/completions   JSON or SSE ("stream": true)
  GET  /v1/models, GET /health, GET /version, GET /metrics (Prometheus text)
  POST /sim/fault?kind=..., POST /sim/clear, GET /sim/state   (this server only)

Every response carries `x-sim-server: host:port`, `x-sim-region: <region>` and
`x-sim-engine: <data-parallel rank>` so a test can see who answered.

An optional admin port (--admin) controls the whole fleet:

  GET  /state                           JSON of every server (load, KV, faults)
  POST /fault?server=H:P&kind=K&...     inject a fault (server=all, or region=R)
  POST /clear?server=H:P[&kind=K]       clear one kind of fault, or all
  POST /down?server=H:P                 stop listening, drop connections, lose
                                        the KV/prefix cache (a member dying)
  POST /up?server=H:P                   listen again (a fresh process)

Fault kinds:  health (GET /health -> 503)  error (inference -> 500, rate=0..1,
status=N)  slow (delay_ms=N before answering, scope=all|inference|metrics)
hang (accept, never answer, scope=all|inference|metrics)  die (close the
connection after after=N streamed tokens; non-streamed: no answer at all)
garbage_metrics (mode=binary|html|truncated|empty)  down / up.

Performance model (all durations multiplied by time_scale), one engine per
data-parallel rank, stepping like vLLM V1's scheduler:

  * tokens: a prompt is rendered to bytes (chat: a compact template around
    each message) and counted as ceil(bytes / 4) tokens; a completions prompt
    given as token ids counts its ids.  Output length: max_tokens when
    "ignore_eos": true, else a deterministic lognormal draw from the request's
    hash (median natural_output_median), at least min_tokens, at most
    max_tokens; finish_reason "length" or "stop" accordingly.
  * KV cache: kv_blocks blocks of block_size (16) tokens.  A running request
    holds ceil(tokens_in_kv / 16) blocks; usage = referenced blocks / total
    (vllm:kv_cache_usage_perc).  When a running request cannot get a block the
    last-admitted request is preempted (recompute), as vLLM V1 does.
  * prefix cache: the prompt's full blocks (64 bytes = 16 tokens) are hashed in
    a chain seeded by the model/adapter name and cache_salt; computed blocks
    stay cached after the request ends and are evicted LRU when space is
    needed.  A request reuses the longest cached run of leading blocks on ITS
    engine (at most prompt_len - 1 tokens, as vLLM), so only the rest is
    prefilled.
  * continuous batching: each step schedules running requests first (1 decode
    token each, or a prefill chunk), then admits waiting requests FIFO while
    running < max_num_seqs, the step's token budget (max_num_batched_tokens)
    lasts and KV blocks are free; the rest wait (vllm:num_requests_waiting).
  * step time (a roofline): max(decode_base_ms, tokens_in_step *
    prefill_us_per_token) + kv_read_ns_per_token * context tokens attended
    + lora_load_ms per adapter newly given a GPU slot; times time_scale.
  * LoRA: at most max_lora distinct adapters per batch (a waiting request of
    another adapter waits, as vLLM V1); GPU slots are LRU.
  * network: network_delay_ms (per region or per server) is added before the
    server handles any request (one round trip, before the first byte).

Defaults model an H100 80GB SXM serving meta-llama/Llama-3.1-8B-Instruct in
bf16 with vLLM; util/sim/README.md gives the arithmetic behind each figure.
They are derived from spec sheets and vLLM's defaults, not measured on a GPU.

Usage:
  vllm_sim.py --servers 127.0.0.1:18001,127.0.0.1:18002@us-east1 \\
              --region europe-west3 --admin 127.0.0.1:18999 --seed 1
  vllm_sim.py --fleet util/sim/fleet-example.json --time-scale 4

Prints one line "vllm_sim ready: ..." on stdout when every port listens;
exits 0 on SIGTERM or SIGINT.  Python 3 standard library only.
"""

import argparse
import asyncio
import bisect
import collections
import configparser
import gc
import hashlib
import http
import json
import math
import os
import platform
import random
import signal
import sys
import time
import urllib.parse
import zlib


def dumps(doc):
    return json.dumps(doc, separators=(",", ":"))


VLLM_VERSION = "0.10.2"   # the version whose responses and /metrics are imitated
BYTES_PER_TOKEN = 4       # rough English BPE average; also makes a block 64 bytes


# ----------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------

# Per-server parameters, their defaults and types.  The README explains where
# each default comes from.
PARAM_DEFAULTS = {
    "region": "local",
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "adapters": [],                 # LoRA adapter names served besides the base
    "max_lora": 1,                  # vLLM --max-loras default
    "lora_load_ms": 10.0,           # assumption: giving an adapter a GPU slot
    "max_model_len": 131072,        # Llama 3.1 context length
    "block_size": 16,               # vLLM default
    "kv_blocks": 27000,             # num_gpu_blocks; README: arithmetic
    "max_num_seqs": 256,            # vLLM default (V0, and V1 below 70 GiB)
    "max_num_batched_tokens": 8192,  # vLLM V1 default on H100, API server
    "dp": 1,                        # data-parallel engines behind one port
    "metrics_variant": "v1",        # v1 | v1-legacy | v0
    "enable_prefix_caching": True,  # vLLM V1 default
    "prefill_us_per_token": 35.0,   # 16 GFLOP/token at ~50% of 989 TFLOPS
    "decode_base_ms": 6.0,          # 16 GB of weights at ~80% of 3.35 TB/s
    "kv_read_ns_per_token": 50.0,   # 128 KiB/token at ~80% of 3.35 TB/s
    "natural_output_median": 200,   # output length when not forced (tokens)
    "natural_output_sigma": 0.8,
    "network_delay_ms": 0.0,
    "time_scale": 1.0,              # multiplies every modeled GPU duration
    "enable_prompt_tokens_details": False,  # usage.prompt_tokens_details
    "metrics_gzip": True,           # prometheus_client gzips when asked
}

GLOBAL_DEFAULTS = {"seed": 0, "time_scale": 1.0, "admin": ""}


def coerce(name, value):
    """Converts a parameter given as text (CLI, INI) or JSON to its type."""
    default = PARAM_DEFAULTS[name]
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, list):
        if isinstance(value, list):
            return [str(v) for v in value]
        return [v.strip() for v in str(value).split(",") if v.strip()]
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return str(value)


class ServerParams:
    """The resolved parameters of one simulated server."""

    def __init__(self, listen, values):
        self.listen = listen
        host, _, port = listen.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        for k, v in PARAM_DEFAULTS.items():
            setattr(self, k, coerce(k, values.get(k, v)))
        unknown = set(values) - set(PARAM_DEFAULTS)
        if unknown:
            raise ValueError("%s: unknown parameter(s) %s"
                             % (listen, ", ".join(sorted(unknown))))
        if self.metrics_variant not in ("v1", "v1-legacy", "v0"):
            raise ValueError("%s: metrics_variant must be v1, v1-legacy or v0"
                             % listen)
        if self.adapters and self.max_lora < 1:
            self.max_lora = 1        # vLLM refuses max_loras < 1 with LoRA on
        # vLLM refuses to start when one max-length request cannot fit in the
        # KV cache; the simulator lowers max_model_len instead, so that every
        # accepted request can run alone and nothing waits forever.
        capacity = self.kv_blocks * self.block_size
        if self.max_model_len > capacity:
            self.max_model_len = capacity
        self.dp = max(1, self.dp)

    def to_json(self):
        d = {k: getattr(self, k) for k in PARAM_DEFAULTS}
        d["listen"] = self.listen
        return d


def load_fleet_file(path):
    """Reads a JSON or INI fleet file into (globals, defaults, regions, servers).

    JSON: {"seed": 1, "time_scale": 1, "admin": "127.0.0.1:18999",
           "defaults": {...}, "regions": {"r": {...}},
           "servers": [{"listen": "127.0.0.1:18001", "region": "r", ...}]}
    INI:  [fleet] seed/time_scale/admin, [defaults], [region NAME],
          [server HOST:PORT] sections with the same keys.
    """
    with open(path) as f:
        text = f.read()
    if path.endswith(".json") or text.lstrip().startswith("{"):
        doc = json.loads(text)
        glob = {k: doc[k] for k in GLOBAL_DEFAULTS if k in doc}
        servers = []
        for s in doc.get("servers", []):
            s = dict(s)
            servers.append((s.pop("listen"), s))
        return glob, doc.get("defaults", {}), doc.get("regions", {}), servers
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp.read_string(text)
    glob, defaults, regions, servers = {}, {}, {}, []
    for sec in cp.sections():
        items = dict(cp.items(sec))
        if sec == "fleet":
            glob = {k: v for k, v in items.items() if k in GLOBAL_DEFAULTS}
        elif sec == "defaults":
            defaults = items
        elif sec.startswith("region "):
            regions[sec[7:].strip()] = items
        elif sec.startswith("server "):
            servers.append((sec[7:].strip(), items))
        else:
            raise ValueError("%s: unknown section [%s]" % (path, sec))
    return glob, defaults, regions, servers


# ----------------------------------------------------------------------------
# Prometheus exposition helpers (prometheus_client's text format)
# ----------------------------------------------------------------------------

def gofloat(v):
    """Formats a float as prometheus_client does (floatToGoString)."""
    v = float(v)
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if v != v:
        return "NaN"
    s = repr(v)
    dot = s.find(".")
    # Go switches to exponents sooner than Python does.
    if v > 0 and dot > 6:
        mantissa = ("%s.%s%s" % (s[0], s[1:dot], s[dot + 1:])).rstrip("0.")
        return "%se+0%d" % (mantissa, dot - 1)
    return s


def label_escape(v):
    return str(v).replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def labels_text(labels):
    """{k="v",...} with keys sorted, as prometheus_client writes them."""
    if not labels:
        return ""
    return "{" + ",".join('%s="%s"' % (k, label_escape(v))
                          for k, v in sorted(labels.items())) + "}"


def build_1_2_5_buckets(max_value):
    """vLLM's buckets for token-count histograms: 1, 2, 5, 10, ... <= max."""
    out, exp = [], 0
    while True:
        for m in (1, 2, 5):
            v = m * 10 ** exp
            if v > max_value:
                return out
            out.append(v)
        exp += 1


TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0,
                640.0, 2560.0]
TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
PREFILL_TOKEN_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                         0.5, 1.0]
LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
                   30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
                   1920.0, 7680.0]
ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                     8192, 16384]
HTTP_HIGHR_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
                      1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 7.5, 10.0,
                      30.0, 60.0]
HTTP_BUCKETS = [0.1, 0.5, 1.0]


class Hist:
    """A Prometheus histogram; its text is cached until the next observation."""

    __slots__ = ("bounds", "counts", "sum", "n", "created", "_text", "_key")

    def __init__(self, bounds, created):
        self.bounds = [float(b) for b in bounds]
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.n = 0
        self.created = created
        self._text = None
        self._key = None

    def observe(self, v):
        self.counts[bisect.bisect_left(self.bounds, v)] += 1
        self.sum += v
        self.n += 1

    def lines(self, name, pre, post):
        """Bucket, _count and _sum lines; pre/post: labels around "le"."""
        if self._key == (name, self.n) and self._text is not None:
            return self._text
        out, acc = [], 0
        for b, c in zip(self.bounds, self.counts):
            acc += c
            out.append('%s_bucket{%sle="%s"%s} %s'
                       % (name, pre, gofloat(b), post, gofloat(acc)))
        acc += self.counts[-1]
        out.append('%s_bucket{%sle="+Inf"%s} %s' % (name, pre, post, gofloat(acc)))
        lab = "{" + (pre + post.lstrip(",")).rstrip(",") + "}"
        if lab == "{}":
            lab = ""
        out.append("%s_count%s %s" % (name, lab, gofloat(acc)))
        out.append("%s_sum%s %s" % (name, lab, gofloat(self.sum)))
        self._text = "\n".join(out)
        self._key = (name, self.n)
        return self._text


# The histograms every engine keeps: (vLLM name, HELP text, buckets or None
# for the 1-2-5 token buckets up to max_model_len).
ENGINE_HISTOGRAMS = [
    ("request_prompt_tokens", "Number of prefill tokens processed.", None),
    ("request_generation_tokens", "Number of generation tokens processed.", None),
    ("iteration_tokens_total", "Histogram of number of tokens per engine_step.",
     ITERATION_BUCKETS),
    ("request_max_num_generation_tokens",
     "Histogram of maximum number of requested generation tokens.", None),
    ("request_params_n", "Histogram of the n request parameter.", [1, 2, 5, 10, 20]),
    ("request_params_max_tokens", "Histogram of the max_tokens request parameter.", None),
    ("time_to_first_token_seconds", "Histogram of time to first token in seconds.",
     TTFT_BUCKETS),
    ("time_per_output_token_seconds",
     "Histogram of time per output token in seconds.", TPOT_BUCKETS),
    ("time_per_prefill_token_request_seconds",
     "Time spent per token during prefill  phase in seconds", PREFILL_TOKEN_BUCKETS),
    ("e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
     LATENCY_BUCKETS),
    ("request_queue_time_seconds",
     "Histogram of time spent in WAITING phase for request.", LATENCY_BUCKETS),
    ("request_inference_time_seconds",
     "Histogram of time spent in RUNNING phase for request.", LATENCY_BUCKETS),
    ("request_prefill_time_seconds",
     "Histogram of time spent in PREFILL phase for request.", LATENCY_BUCKETS),
    ("request_decode_time_seconds",
     "Histogram of time spent in DECODE phase for request.", LATENCY_BUCKETS),
]


class EngineStats:
    """Counters and histograms of one engine, as vLLM's PrometheusStatLogger."""

    def __init__(self, max_model_len):
        now = time.time()
        self.created = now
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.preemptions = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.success = {"stop": 0, "length": 0, "abort": 0}
        token_buckets = build_1_2_5_buckets(max_model_len)
        self.hist = {name: Hist(b if b is not None else token_buckets, now)
                     for name, _, b in ENGINE_HISTOGRAMS}


# ----------------------------------------------------------------------------
# KV cache and scheduler
# ----------------------------------------------------------------------------

class BlockPool:
    """vLLM V1's KV block pool, counted rather than stored.

    `used` counts blocks referenced by running requests (what
    vllm:kv_cache_usage_perc reports).  Blocks that hold a full prompt block
    are known by their chained hash in `cached` (hash -> reference count);
    when their count drops to 0 they stay cached but become evictable (LRU
    order in `evictable`) and are reused for new allocations only when no
    never-used block is left - vLLM's free block queue behaves the same way.
    """

    def __init__(self, total, caching):
        self.total = total
        self.caching = caching
        self.used = 0
        self.cached = {}
        self.evictable = collections.OrderedDict()

    def free(self):
        return self.total - self.used

    def match(self, hashes):
        n = 0
        cached = self.cached
        for h in hashes:
            if h not in cached:
                break
            n += 1
        return n

    def acquire_cached(self, h):
        rc = self.cached[h]
        if rc == 0:
            del self.evictable[h]
            self.used += 1
        self.cached[h] = rc + 1

    def alloc(self, n):
        empty = self.total - self.used - len(self.evictable)
        evict = n - empty
        while evict > 0:
            h, _ = self.evictable.popitem(last=False)
            del self.cached[h]
            evict -= 1
        self.used += n

    def register(self, h):
        """A request's private block now holds a full prompt block."""
        if not self.caching or h in self.cached:
            return False    # a duplicate stays private, as in vLLM
        self.cached[h] = 1
        return True

    def release(self, hashes, private):
        cached = self.cached
        for h in reversed(hashes):   # tail blocks become evictable first
            rc = cached[h] - 1
            cached[h] = rc
            if rc == 0:
                self.evictable[h] = None
                self.used -= 1
        self.used -= private


WAITING, RUNNING, DONE, ABORTED = range(4)


class SimRequest:
    """One inference request inside an engine."""

    __slots__ = ("rid", "engine", "prompt_len", "block_hashes", "lora",
                 "out_len", "max_tokens_param", "finish_reason", "state",
                 "num_computed", "num_tokens", "num_generated", "hashed",
                 "private", "hash_upto", "cached_tokens", "t_arrival",
                 "t_scheduled", "t_first", "t_last", "t_finish", "on_token",
                 "on_finish", "prefill_tokens_first")

    def __init__(self, rid, prompt_len, block_hashes, lora, out_len,
                 max_tokens_param, finish_reason):
        self.rid = rid
        self.engine = None
        self.prompt_len = prompt_len
        self.block_hashes = block_hashes
        self.lora = lora
        self.out_len = out_len
        self.max_tokens_param = max_tokens_param
        self.finish_reason = finish_reason
        self.state = WAITING
        self.num_computed = 0
        self.num_tokens = prompt_len
        self.num_generated = 0
        self.hashed = []
        self.private = 0
        self.hash_upto = 0
        self.cached_tokens = None
        self.t_arrival = 0.0
        self.t_scheduled = None
        self.t_first = None
        self.t_last = None
        self.t_finish = None
        self.on_token = None
        self.on_finish = None
        self.prefill_tokens_first = 0

    @property
    def num_blocks(self):
        return len(self.hashed) + self.private


class Engine:
    """One vLLM engine core (one data-parallel rank): scheduler, KV, stats.

    Steps run back to back while there is work, each one a loop.call_at
    timer, so an idle engine costs nothing.  Deadlines are kept on a virtual
    timeline: a step that fires a little late is absorbed by the next one, so
    a busy event loop does not slow the modeled GPU down.
    """

    MAX_LAG = 0.05    # beyond this lateness the timeline restarts from now

    def __init__(self, server, index):
        self.server = server
        self.index = index
        self.p = server.p
        self.loop = asyncio.get_running_loop()
        self.reset()

    def reset(self):
        if getattr(self, "timer", None) is not None:
            self.timer.cancel()
        p = self.p
        self.waiting = collections.deque()
        self.running = []
        self.pool = BlockPool(p.kv_blocks, p.enable_prefix_caching)
        self.lora_slots = collections.OrderedDict()
        self.lora_info = collections.OrderedDict()   # labels -> wall time
        self.stats = EngineStats(p.max_model_len)
        self.timer = None
        self.busy = False
        self.deadline = 0.0
        self.steps = 0

    # -- requests in and out --------------------------------------------------

    def load_score(self):
        # vLLM's DP load balancer: the engine with the least waiting*4+running
        return len(self.waiting) * 4 + len(self.running)

    def add(self, req):
        req.engine = self
        req.t_arrival = self.loop.time()
        self.waiting.append(req)
        if not self.busy:
            self.busy = True
            self.deadline = self.loop.time()
            self.timer = self.loop.call_soon(self._step_begin)

    def abort(self, req):
        if req.state == WAITING:
            try:
                self.waiting.remove(req)
            except ValueError:
                pass
        elif req.state == RUNNING:
            try:
                self.running.remove(req)
            except ValueError:
                pass
            self.pool.release(req.hashed, req.private)
            req.hashed, req.private = [], 0
        else:
            return
        req.state = ABORTED
        self.stats.success["abort"] += 1

    # -- one step -------------------------------------------------------------

    def _preempt(self, req):
        self.pool.release(req.hashed, req.private)
        req.hashed, req.private, req.hash_upto = [], 0, 0
        req.num_computed = 0
        req.state = WAITING
        self.waiting.appendleft(req)
        self.stats.preemptions += 1

    def _schedule(self):
        """Picks this step's work, as vLLM V1's scheduler (FCFS policy)."""
        p, pool = self.p, self.pool
        bs = p.block_size
        budget = p.max_num_batched_tokens
        plan = []
        loras = set()
        running = self.running
        preempted = False
        i = 0
        while i < len(running) and budget > 0:
            req = running[i]
            n = min(req.num_tokens - req.num_computed, budget)
            need = -(-(req.num_computed + n) // bs) - req.num_blocks
            scheduled = True
            while need > pool.free():
                victim = running.pop()       # the lowest priority: last in
                self._preempt(victim)
                preempted = True
                if victim is req:
                    scheduled = False
                    break
            if not scheduled:
                break
            if need > 0:
                pool.alloc(need)
                req.private += need
            plan.append((req, n))
            budget -= n
            if req.lora:
                loras.add(req.lora)
            i += 1

        now = self.loop.time()
        if not preempted:
            skipped = []
            waiting = self.waiting
            while waiting and len(running) < p.max_num_seqs and budget > 0:
                req = waiting[0]
                if (req.lora and req.lora not in loras
                        and len(loras) >= p.max_lora):
                    skipped.append(waiting.popleft())
                    continue
                k = 0
                if pool.caching and req.block_hashes:
                    k = min(pool.match(req.block_hashes),
                            (req.num_tokens - 1) // bs)
                hits = req.block_hashes[:k]
                hit_tokens = k * bs
                n = min(req.num_tokens - hit_tokens, budget)
                need = -(-(hit_tokens + n) // bs) - k
                revived = sum(1 for h in hits if pool.cached[h] == 0)
                if need + revived > pool.free():
                    break
                for h in hits:
                    pool.acquire_cached(h)
                pool.alloc(need)
                req.hashed = hits
                req.private = need
                req.hash_upto = k
                req.num_computed = hit_tokens
                req.state = RUNNING
                self.stats.prefix_queries += req.num_tokens
                self.stats.prefix_hits += hit_tokens
                if req.t_scheduled is None:
                    req.t_scheduled = now
                    req.cached_tokens = hit_tokens
                    req.prefill_tokens_first = req.num_tokens - hit_tokens
                waiting.popleft()
                running.append(req)
                plan.append((req, n))
                budget -= n
                if req.lora:
                    loras.add(req.lora)
            for r in reversed(skipped):
                waiting.appendleft(r)

        loads = 0
        if loras:
            slots = self.lora_slots
            for a in loras:
                if a in slots:
                    slots.move_to_end(a)
                else:
                    slots[a] = True
                    loads += 1
            while len(slots) > max(p.max_lora, len(loras)):
                for a in slots:
                    if a not in loras:
                        del slots[a]
                        break
                else:
                    break
        return plan, loads

    def _step_time(self, plan, loads):
        p = self.p
        tokens = 0
        context = 0
        for req, n in plan:
            tokens += n
            context += req.num_computed + n
        t = max(p.decode_base_ms * 1e-3, tokens * p.prefill_us_per_token * 1e-6)
        t += context * p.kv_read_ns_per_token * 1e-9
        t += loads * p.lora_load_ms * 1e-3
        return t * self.server.time_scale, tokens

    def _step_begin(self):
        self.timer = None
        plan, loads = self._schedule()
        if not plan:
            # Nothing could run.  With max_model_len capped to the KV
            # capacity this cannot happen while requests are queued; retry
            # after one base step rather than stall if it ever does.
            self._update_lora_info()
            if self.running or self.waiting:
                self.timer = self.loop.call_later(
                    self.p.decode_base_ms * 1e-3 * max(self.server.time_scale, 0.01),
                    self._step_begin)
            else:
                self.busy = False
            return
        dt, tokens = self._step_time(plan, loads)
        now = self.loop.time()
        start = self.deadline if now - self.deadline < self.MAX_LAG else now
        self.deadline = start + dt
        self.steps += 1
        self.stats.hist["iteration_tokens_total"].observe(tokens)
        if self.deadline <= now:
            self.timer = self.loop.call_soon(self._step_end, plan)
        else:
            self.timer = self.loop.call_at(self.deadline, self._step_end, plan)

    def _step_end(self, plan):
        self.timer = None
        now = self.loop.time()
        bs = self.p.block_size
        pool = self.pool
        st = self.stats
        hist = st.hist
        tpot = hist["time_per_output_token_seconds"]
        finished = False
        for req, n in plan:
            if req.state != RUNNING:
                continue                  # aborted during the step
            req.num_computed += n
            full = min(req.num_computed, req.prompt_len) // bs
            full = min(full, len(req.block_hashes))
            while req.hash_upto < full:
                if req.private > 0 and pool.register(req.block_hashes[req.hash_upto]):
                    req.hashed.append(req.block_hashes[req.hash_upto])
                    req.private -= 1
                req.hash_upto += 1
            if req.num_computed < req.num_tokens:
                continue                  # a prefill chunk, no token yet
            if req.num_generated == 0:
                req.t_first = now
                st.prompt_tokens += req.prompt_len
                hist["time_to_first_token_seconds"].observe(now - req.t_arrival)
            else:
                tpot.observe(now - req.t_last)
            req.t_last = now
            req.num_generated += 1
            req.num_tokens += 1
            st.generation_tokens += 1
            if req.num_generated >= req.out_len:
                req.state = DONE
                finished = True
            if req.on_token is not None:
                req.on_token(req)
        if finished:
            keep = []
            for req in self.running:
                if req.state == DONE:
                    self._finish(req, now)
                elif req.state == RUNNING:
                    keep.append(req)
            self.running = keep
        self._update_lora_info()
        if self.running or self.waiting:
            self._step_begin()
        else:
            self.busy = False

    def _finish(self, req, now):
        self.pool.release(req.hashed, req.private)
        req.hashed, req.private = [], 0
        req.t_finish = now
        st = self.stats
        h = st.hist
        st.success[req.finish_reason] += 1
        h["e2e_request_latency_seconds"].observe(now - req.t_arrival)
        h["request_queue_time_seconds"].observe(req.t_scheduled - req.t_arrival)
        prefill = req.t_first - req.t_scheduled
        h["request_prefill_time_seconds"].observe(prefill)
        if req.prompt_len:
            h["time_per_prefill_token_request_seconds"].observe(prefill / req.prompt_len)
        h["request_inference_time_seconds"].observe(now - req.t_scheduled)
        h["request_decode_time_seconds"].observe(now - req.t_first)
        h["request_prompt_tokens"].observe(req.prompt_len)
        h["request_generation_tokens"].observe(req.num_generated)
        h["request_max_num_generation_tokens"].observe(req.num_generated)
        h["request_params_n"].observe(1)
        if req.max_tokens_param:
            h["request_params_max_tokens"].observe(req.max_tokens_param)
        if req.on_finish is not None:
            req.on_finish(req)

    def _update_lora_info(self):
        # vLLM sets the gauge of the current label set to the wall time on
        # every iteration; earlier label sets stay on the page with older
        # times (a reader takes the newest).  Kept to the last 64 sets.
        if not self.p.adapters:
            return
        run = ",".join(dict.fromkeys(r.lora for r in self.running if r.lora))
        wait = ",".join(dict.fromkeys(r.lora for r in self.waiting if r.lora))
        key = (run, wait)
        self.lora_info.pop(key, None)
        self.lora_info[key] = time.time()
        while len(self.lora_info) > 64:
            self.lora_info.popitem(last=False)

    def state(self):
        return {
            "engine": self.index,
            "running": len(self.running),
            "waiting": len(self.waiting),
            "kv_usage": self.pool.used / self.pool.total,
            "kv_used_blocks": self.pool.used,
            "kv_total_blocks": self.pool.total,
            "cached_blocks": len(self.pool.cached),
            "prefix_queries": self.stats.prefix_queries,
            "prefix_hits": self.stats.prefix_hits,
            "preemptions": self.stats.preemptions,
            "steps": self.steps,
            "lora_slots": list(self.lora_slots),
            "finished": dict(self.stats.success),
        }


# ----------------------------------------------------------------------------
# HTTP/1.1 (a small, fast server protocol)
# ----------------------------------------------------------------------------

REASONS = {s.value: s.phrase for s in http.HTTPStatus}

_date_cache = [0, b""]


def http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                       time.gmtime(now)).encode()
    return _date_cache[1]


class HttpRequest:
    __slots__ = ("method", "path", "query", "version", "headers", "body",
                 "keep_alive", "t0")

    def __init__(self, method, target, version, headers, body):
        self.method = method
        path, _, q = target.partition("?")
        self.path = path
        self.query = q
        self.version = version
        self.headers = headers
        self.body = body
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        else:
            self.keep_alive = "close" not in conn
        self.t0 = 0.0

    def params(self):
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.query).items()}


class HttpConnection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, pipelining (one at a time), chunked bodies
    both ways and Expect: 100-continue.  `handler.handle(conn, req)` answers
    with send() or start_stream()/chunk()/end_stream(), now or later."""

    MAX_HEAD = 65536
    MAX_BODY = 64 * 1024 * 1024

    def __init__(self, handler):
        self.handler = handler
        self.transport = None
        self.buf = bytearray()
        self.busy = False            # a request is being answered
        self.closed = False
        self.continued = False
        self.req = None
        self.sim_req = None          # the SimRequest being served, if any
        self.keep_alive = True

    def connection_made(self, transport):
        self.transport = transport
        self.handler.conns.add(self)

    def connection_lost(self, exc):
        self.closed = True
        self.handler.conns.discard(self)
        if self.sim_req is not None:
            self.handler.on_disconnect(self)

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._parse()

    def _parse(self):
        while not self.busy and not self.closed:
            buf = self.buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.MAX_HEAD:
                    self._fail(431)
                return
            try:
                head = bytes(buf[:end]).decode("latin-1")
                lines = head.split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            except ValueError:
                self._fail(400)
                return
            start = end + 4
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body, used = self._dechunk(start)
                if body is None:
                    if used < 0:
                        self._fail(400)
                    else:
                        self._maybe_continue(headers)
                    return
                consumed = used
            else:
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    self._fail(400)
                    return
                if length > self.MAX_BODY:
                    self._fail(413)
                    return
                if len(buf) < start + length:
                    self._maybe_continue(headers)
                    return
                body = bytes(buf[start:start + length])
                consumed = start + length
            del buf[:consumed]
            self.continued = False
            req = HttpRequest(method, target, version, headers, body)
            self.keep_alive = req.keep_alive
            self.busy = True
            self.req = req
            req.t0 = time.monotonic()
            self.handler.handle(self, req)

    def _dechunk(self, pos):
        """Decodes a chunked body; (body, end) or (None, 0) if incomplete,
        (None, -1) if malformed."""
        buf = self.buf
        parts = []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None, 0
            try:
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            except ValueError:
                return None, -1
            pos = eol + 2
            if size == 0:
                # trailers end with an empty line
                end = buf.find(b"\r\n\r\n", pos - 2)
                if end < 0:
                    return None, 0
                return b"".join(parts), end + 4
            if len(buf) < pos + size + 2:
                return None, 0
            parts.append(bytes(buf[pos:pos + size]))
            pos += size + 2

    def _maybe_continue(self, headers):
        if (not self.continued
                and headers.get("expect", "").lower() == "100-continue"):
            self.continued = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _fail(self, status):
        self.keep_alive = False
        self.busy = True
        self.send(status, [], b"")

    def _head(self, status, headers, extra):
        out = [b"HTTP/1.1 %d %s\r\ndate: %s\r\nserver: uvicorn\r\n"
               % (status, REASONS.get(status, "Unknown").encode(), http_date())]
        for k, v in self.handler.common_headers:
            out.append(b"%s: %s\r\n" % (k, v))
        for k, v in headers:
            out.append(b"%s: %s\r\n" % (k.encode(), str(v).encode()))
        out.append(extra)
        if not self.keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        return b"".join(out)

    def send(self, status, headers, body):
        if self.closed:
            return
        self.transport.write(self._head(
            status, headers, b"content-length: %d\r\n" % len(body)) + body)
        self._done(status, len(body))

    def start_stream(self, status, headers):
        if self.closed:
            return
        self.transport.write(self._head(status, headers,
                                        b"transfer-encoding: chunked\r\n"))

    def chunk(self, data):
        if not self.closed:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self, status=200):
        if self.closed:
            return
        self.transport.write(b"0\r\n\r\n")
        self._done(status, 0)

    def _done(self, status, size):
        req = self.req
        self.req = None
        self.sim_req = None
        if req is not None:
            self.handler.observe_http(req, status, size)
        if not self.keep_alive:
            self.closed = True
            self.transport.close()
            return
        self.busy = False
        if self.buf:
            # run the next pipelined request outside this call chain
            asyncio.get_running_loop().call_soon(self._parse)

    def drop(self, reset=False):
        """Closes without answering (faults, a member going down)."""
        if self.closed:
            return
        self.closed = True
        if reset:
            self.transport.abort()
        else:
            self.transport.close()


# ----------------------------------------------------------------------------
# Output text and request hashing
# ----------------------------------------------------------------------------

WORDS = ("the of and to in is that for it as with was on be by at this are "
         "from or an which but not have has had were all can one their more "
         "will would there when model tokens cache server region route "
         "answer pizza oven dough sauce basil cheese crust fire water light "
         "time data value system request reply graph node block layer "
         "query prefix batch queue delay score weight signal result").split()


def make_token_table(seed, size=8192):
    """A fixed stream of output tokens ('pseudo words'), drawn from the seed."""
    rng = random.Random("tokens:%d" % seed)
    toks = []
    for _ in range(size):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.06:
            w += "."
        elif r < 0.1:
            w += ","
        toks.append(" " + w)
    return toks


def digest64(*parts):
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "big")


def lognormal_from(d, median, sigma):
    """A deterministic lognormal draw from the 64-bit value d (Box-Muller)."""
    u1 = ((d >> 11) & ((1 << 26) - 1)) / float(1 << 26) + 1e-9
    u2 = (d & ((1 << 11) - 1)) / float(1 << 11)
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)
    return median * math.exp(sigma * z)


def render_chat(messages):
    """Renders messages with a compact template (a few bytes per message, as
    a real template's few special tokens)."""
    parts = []
    for m in messages:
        if not isinstance(m, dict):
            raise ValueError("each message must be an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise ValueError("each message needs a string role")
        content = m.get("content")
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "".join(p.get("text", "") for p in content
                           if isinstance(p, dict) and isinstance(p.get("text", ""), str))
        else:
            raise ValueError("message content must be a string or a list")
        parts.append("\x01%s\x02%s\x03" % (role, text))
    parts.append("\x01assistant\x02")
    return "".join(parts).encode("utf-8")


def block_hashes_bytes(data, seed_key, block_bytes):
    """Chained hashes of the full blocks of a prompt given as bytes."""
    out = []
    h = hash(seed_key)
    for i in range(0, len(data) - block_bytes + 1, block_bytes):
        h = hash((h, data[i:i + block_bytes]))
        out.append(h)
    return out


def block_hashes_ids(ids, seed_key, block_size):
    out = []
    h = hash(seed_key)
    for i in range(0, len(ids) - block_size + 1, block_size):
        h = hash((h, tuple(ids[i:i + block_size])))
        out.append(h)
    return out


class ApiError(Exception):
    def __init__(self, status, message, etype=None, param=None):
        super().__init__(message)
        self.status = status
        self.message = message
        if etype is None:
            try:
                etype = http.HTTPStatus(status).phrase.title().replace(" ", "") + "Error"
            except ValueError:
                etype = "Error"
            etype = etype.replace("InternalServerErrorError", "InternalServerError")
        self.etype = etype
        self.param = param

    def body(self):
        return dumps({"error": {"message": self.message, "type": self.etype,
                                     "param": self.param,
                                     "code": self.status}}).encode()


# ----------------------------------------------------------------------------
# A simulated server
# ----------------------------------------------------------------------------

class Faults:
    def __init__(self):
        self.active = {}     # kind -> parameters dict

    def get(self, kind):
        return self.active.get(kind)


FAULT_KINDS = ("health", "error", "slow", "hang", "die", "garbage_metrics")


def scope_matches(fault, what):
    scope = fault.get("scope", "all")
    return scope == "all" or scope == what


class SimServer:
    """One simulated vLLM server (one port), possibly with several engines."""

    def __init__(self, fleet, p):
        self.fleet = fleet
        self.p = p
        self.loop = asyncio.get_running_loop()
        self.time_scale = fleet.time_scale * p.time_scale
        self.listener = None
        self.listening = False
        self.conns = set()
        self.faults = Faults()
        self.rng = random.Random("%d:%s" % (fleet.seed, p.listen))
        self.tokens = fleet.token_table
        self.common_headers = [
            (b"x-sim-server", p.listen.encode()),
            (b"x-sim-region", p.region.encode()),
        ]
        self.models = {p.model: None}
        for a in p.adapters:
            self.models[a] = a
        self.engines = [Engine(self, i) for i in range(p.dp)]
        self.counter = 0
        self.incarnation = 0         # restarts (down/up), for request ids
        self.start_time = time.time()
        self.http_counts = collections.Counter()
        self.http_highr = Hist(HTTP_HIGHR_BUCKETS, self.start_time)
        self.http_hist = {}
        self.pending_up = None

    # -- lifecycle --------------------------------------------------------------

    async def listen(self):
        self.listener = await self.loop.create_server(
            lambda: HttpConnection(self), self.p.host, self.p.port,
            reuse_address=True, backlog=1024)
        self.listening = True

    def down(self):
        """A member dies: stops listening, drops every connection, and comes
        back (with up()) as a fresh process with empty caches."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.listening = False
        for c in list(self.conns):
            c.sim_req = None
            c.drop(reset=True)
        for e in self.engines:
            e.reset()
        self.counter = 0
        self.incarnation += 1
        self.start_time = time.time()
        self.http_counts.clear()
        self.http_highr = Hist(HTTP_HIGHR_BUCKETS, self.start_time)
        self.http_hist = {}

    async def up(self):
        if self.listener is None:
            await self.listen()

    def close(self):
        if self.listener is not None:
            self.listener.close()
        for c in list(self.conns):
            c.sim_req = None
            c.drop()
        for e in self.engines:
            if e.timer is not None:
                e.timer.cancel()

    # -- HTTP entry -------------------------------------------------------------

    def observe_http(self, req, status, size):
        handler = req.path if req.path in (
            "/v1/completions", "/v1/chat/completions", "/v1/models",
            "/health", "/metrics", "/version") else "none"
        if handler == "/metrics":
            return   # the instrumentator excludes /metrics
        dt = time.monotonic() - req.t0
        self.http_counts[(handler, req.method, "%dxx" % (status // 100))] += 1
        self.http_highr.observe(dt)
        key = (handler, req.method)
        h = self.http_hist.get(key)
        if h is None:
            h = self.http_hist[key] = Hist(HTTP_BUCKETS, time.time())
        h.observe(dt)

    def on_disconnect(self, conn):
        req = conn.sim_req
        conn.sim_req = None
        if req is not None and req.engine is not None:
            req.engine.abort(req)

    def handle(self, conn, req):
        path = req.path
        if path.startswith("/sim/"):
            self.handle_sim(conn, req)
            return
        what = "metrics" if path == "/metrics" else (
            "inference" if path.startswith("/v1/") else "other")
        hang = self.faults.get("hang")
        if hang is not None and scope_matches(hang, what):
            return                       # accept, never answer
        delay = self.p.network_delay_ms * 1e-3
        slow = self.faults.get("slow")
        if slow is not None and scope_matches(slow, what):
            delay += float(slow.get("delay_ms", 1000)) * 1e-3
        if delay > 0:
            self.loop.call_later(delay, self._route, conn, req)
        else:
            self._route(conn, req)

    def _route(self, conn, req):
        if conn.closed:
            return
        path, method = req.path, req.method
        try:
            if path in ("/v1/chat/completions", "/v1/completions"):
                if method != "POST":
                    return self._detail(conn, 405, "Method Not Allowed")
                return self.inference(conn, req, path == "/v1/chat/completions")
            if path in ("/health", "/metrics", "/v1/models", "/version", "/ping"):
                if method not in ("GET", "HEAD") and path != "/ping":
                    return self._detail(conn, 405, "Method Not Allowed")
                if path == "/health" or path == "/ping":
                    f = self.faults.get("health")
                    status = int(f.get("status", 503)) if f is not None else 200
                    return conn.send(status, [], b"")
                if path == "/metrics":
                    return self.metrics(conn, req)
                if path == "/version":
                    return self._json(conn, 200, {"version": VLLM_VERSION})
                return self._json(conn, 200, self.models_doc())
            return self._detail(conn, 404, "Not Found")
        except ApiError as e:
            conn.sim_req = None
            conn.send(e.status, [("content-type", "application/json")], e.body())

    def _json(self, conn, status, doc):
        conn.send(status, [("content-type", "application/json")],
                  dumps(doc).encode())

    def _detail(self, conn, status, text):
        # FastAPI's own errors (unknown path, wrong method)
        self._json(conn, status, {"detail": text})

    def models_doc(self):
        created = int(self.start_time)
        data = []
        for name, adapter in self.models.items():
            data.append({
                "id": name, "object": "model", "created": created,
                "owned_by": "vllm",
                "root": ("/adapters/%s" % name) if adapter else name,
                "parent": self.p.model if adapter else None,
                "max_model_len": None if adapter else self.p.max_model_len,
                "permission": [{
                    "id": "modelperm-%016x" % digest64(self.p.listen, name),
                    "object": "model_permission", "created": created,
                    "allow_create_engine": False, "allow_sampling": True,
                    "allow_logprobs": True, "allow_search_indices": False,
                    "allow_view": True, "allow_fine_tuning": False,
                    "organization": "*", "group": None, "is_blocking": False}],
            })
        return {"object": "list", "data": data}

    # -- inference --------------------------------------------------------------

    def parse_request(self, req, chat):
        """Validates an OpenAI request as vLLM does; returns its pieces."""
        try:
            body = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "Invalid JSON in request body: %s" % e)
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        model = body.get("model")
        if model is None:
            raise ApiError(400, "Field required: model", param="model")
        if not isinstance(model, str):
            raise ApiError(400, "model must be a string", param="model")
        if model not in self.models:
            raise ApiError(404, "The model `%s` does not exist." % model,
                           param="model")
        lora = self.models[model]
        salt = body.get("cache_salt") or ""
        seed_key = (model, salt)
        bs = self.p.block_size
        ids = None
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ApiError(400, "Field required: messages", param="messages")
            try:
                data = render_chat(messages)
            except ValueError as e:
                raise ApiError(400, str(e), param="messages")
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
                prompt = prompt[0]
            if isinstance(prompt, str):
                data = prompt.encode("utf-8")
            elif isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
                ids = prompt
                data = b",".join(str(t).encode() for t in ids[:4096])
            else:
                raise ApiError(400, "prompt must be a string, a list of token ids, "
                               "or a list of one of these (batches are not simulated)",
                               param="prompt")
        if ids is not None:
            prompt_len = len(ids)
            hashes = block_hashes_ids(ids, seed_key, bs)
        else:
            prompt_len = max(1, -(-len(data) // BYTES_PER_TOKEN))
            hashes = block_hashes_bytes(data, seed_key, bs * BYTES_PER_TOKEN)

        n = body.get("n", 1)
        if n != 1:
            raise ApiError(400, "n != 1 is not supported by the simulator", param="n")
        max_tokens = body.get("max_completion_tokens") if chat else None
        if max_tokens is None:
            max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int)
                                       or isinstance(max_tokens, bool) or max_tokens < 1):
            raise ApiError(400, "max_tokens must be at least 1, got %r" % (max_tokens,),
                           param="max_tokens")
        mml = self.p.max_model_len
        if prompt_len + (max_tokens or 0) > mml or prompt_len >= mml:
            raise ApiError(400, (
                "This model's maximum context length is %d tokens. However, you "
                "requested %d tokens (%d in the messages, %d in the completion). "
                "Please reduce the length of the messages or completion."
                % (mml, prompt_len + (max_tokens or 0), prompt_len, max_tokens or 0)))
        limit = max_tokens if max_tokens is not None else mml - prompt_len
        min_tokens = body.get("min_tokens") or 0
        if not isinstance(min_tokens, int) or min_tokens < 0:
            raise ApiError(400, "min_tokens must be a non-negative integer",
                           param="min_tokens")
        d = digest64(self.fleet.seed, model, data)
        if body.get("ignore_eos"):
            out_len, reason = limit, "length"
        else:
            natural = int(lognormal_from(d, self.p.natural_output_median,
                                         self.p.natural_output_sigma)) + 1
            natural = max(natural, min_tokens)
            if natural >= limit:
                out_len, reason = limit, "length"
            else:
                out_len, reason = natural, "stop"
        stream = bool(body.get("stream"))
        opts = body.get("stream_options") or {}
        include_usage = stream and isinstance(opts, dict) and bool(opts.get("include_usage"))
        return (model, lora, prompt_len, hashes, out_len, max_tokens, reason,
                stream, include_usage, d)

    def inference(self, conn, req, chat):
        f = self.faults.get("error")
        if f is not None and self.rng.random() < float(f.get("rate", 1.0)):
            raise ApiError(int(f.get("status", 500)),
                           "simulated failure (fault injected)")
        (model, lora, prompt_len, hashes, out_len, max_tokens, reason,
         stream, include_usage, d) = self.parse_request(req, chat)
        self.counter += 1
        rid = "%016x%016x" % (
            digest64(self.fleet.seed, self.p.listen, self.incarnation, self.counter),
            digest64(self.counter, self.incarnation, self.p.listen, self.fleet.seed))
        rid = ("chatcmpl-" if chat else "cmpl-") + rid
        sreq = SimRequest(rid, prompt_len, hashes, lora, out_len, max_tokens, reason)
        engine = min(self.engines, key=Engine.load_score)
        die = self.faults.get("die")
        ctx = Exchange(self, conn, sreq, chat, model, stream, include_usage,
                       d % len(self.tokens), engine.index,
                       int(die.get("after", 3)) if die is not None else None,
                       die.get("mode", "close") == "reset" if die is not None else False)
        conn.sim_req = sreq
        sreq.on_token = ctx.on_token
        sreq.on_finish = ctx.on_finish
        if stream:
            conn.start_stream(200, [
                ("content-type", "text/event-stream; charset=utf-8"),
                ("x-sim-engine", engine.index)])
        engine.add(sreq)

    # -- /metrics ---------------------------------------------------------------

    def metrics(self, conn, req):
        g = self.faults.get("garbage_metrics")
        if g is not None:
            mode = g.get("mode", "binary")
            if mode == "html":
                body = (b"<html><head><title>502 Bad Gateway</title></head><body>"
                        b"<center><h1>502 Bad Gateway</h1></center></body></html>\n")
                return conn.send(200, [("content-type", "text/html")], body)
            if mode == "truncated":
                page = self.render_metrics().encode()
                return conn.send(200, [("content-type", "text/plain; version=0.0.4; "
                                        "charset=utf-8")], page[:len(page) // 2 + 7])
            if mode == "empty":
                return conn.send(200, [("content-type", "text/plain")], b"")
            body = bytes(self.rng.getrandbits(8) for _ in range(4096))
            return conn.send(200, [("content-type", "application/octet-stream")], body)
        page = self.render_metrics()
        names = urllib.parse.parse_qs(req.query).get("name[]")
        if names:
            page = restrict_page(page, set(names))
        page = page.encode()
        headers = [("content-type", "text/plain; version=0.0.4; charset=utf-8")]
        if self.p.metrics_gzip and "gzip" in req.headers.get("accept-encoding", ""):
            page = gzip_compress(page)
            headers.append(("content-encoding", "gzip"))
        conn.send(200, headers, page)

    def render_metrics(self):
        return render_page(self)

    def state(self):
        return {
            "listen": self.p.listen, "region": self.p.region,
            "listening": self.listening, "faults": self.faults.active,
            "models": list(self.models), "time_scale": self.time_scale,
            "engines": [e.state() for e in self.engines],
            "requests": self.counter,
        }

    # -- /sim/ control on the server's own port ----------------------------------

    def handle_sim(self, conn, req):
        params = req.params()
        if req.path == "/sim/state":
            return self._json(conn, 200, self.state())
        if req.path == "/sim/fault":
            try:
                self.fleet.apply_fault(self, params.pop("kind", ""), params)
            except ValueError as e:
                return self._json(conn, 400, {"error": str(e)})
            return self._json(conn, 200, self.state())
        if req.path == "/sim/clear":
            self.fleet.clear_fault(self, params.get("kind", "all"))
            return self._json(conn, 200, self.state())
        return self._detail(conn, 404, "Not Found")


def restrict_page(page, names):
    """The page prometheus_client renders for ?name[]=a&name[]=b: only the
    families with a sample of one of these names (the gateway asks for
    the metrics it reads, to spare the server rendering histograms)."""
    out = []
    for line in page.splitlines(True):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split(" ", 3)[2]
        elif line.startswith("#"):
            continue
        else:
            name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out.append(line)
    return "".join(out)


def gzip_compress(data):
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    return co.compress(data) + co.flush()


class Exchange:
    """Writes one request's answer as its engine produces tokens."""

    __slots__ = ("server", "conn", "req", "chat", "model", "stream",
                 "include_usage", "tok_off", "engine_index", "die_after",
                 "die_reset", "created", "prefix", "sent", "text")

    def __init__(self, server, conn, req, chat, model, stream, include_usage,
                 tok_off, engine_index, die_after, die_reset):
        self.server = server
        self.conn = conn
        self.req = req
        self.chat = chat
        self.model = model
        self.stream = stream
        self.include_usage = include_usage
        self.tok_off = tok_off
        self.engine_index = engine_index
        self.die_after = die_after
        self.die_reset = die_reset
        self.created = int(time.time())
        self.sent = 0
        head = {"id": req.rid,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": self.created, "model": model}
        # every chunk starts with the same bytes: build them once
        self.prefix = ("data: " + dumps(head)[:-1] + ',"choices":[').encode()

    def token(self, i):
        t = self.server.tokens
        return t[(self.tok_off + i) % len(t)]

    def _die(self):
        conn = self.conn
        conn.sim_req = None
        conn.drop(reset=self.die_reset)
        self.req.engine.abort(self.req)

    def on_token(self, req):
        if self.die_after is not None and req.num_generated > self.die_after:
            self._die()
            return
        if not self.stream or self.conn.closed:
            return
        i = req.num_generated - 1
        text = self.token(i)
        last = req.state == DONE
        if self.chat:
            if i == 0:
                # vLLM sends the role first, with the first output
                self.conn.chunk(self.prefix + b'{"index":0,"delta":{"role":"assistant",'
                                b'"content":""},"logprobs":null,"finish_reason":null}]}\n\n')
            if last:
                tail = ('"},"logprobs":null,"finish_reason":"%s","stop_reason":null}]}\n\n'
                        % req.finish_reason)
            else:
                tail = '"},"logprobs":null,"finish_reason":null}]}\n\n'
            self.conn.chunk(self.prefix + ('{"index":0,"delta":{"content":"%s%s'
                                           % (text, tail)).encode())
        else:
            fr = '"%s"' % req.finish_reason if last else "null"
            self.conn.chunk(self.prefix + (
                '{"index":0,"text":"%s","logprobs":null,"finish_reason":%s,'
                '"stop_reason":null}]}\n\n' % (text, fr)).encode())
        self.sent += 1

    def usage(self, req):
        u = {"prompt_tokens": req.prompt_len,
             "total_tokens": req.prompt_len + req.num_generated,
             "completion_tokens": req.num_generated}
        if self.server.p.enable_prompt_tokens_details:
            u["prompt_tokens_details"] = {"cached_tokens": req.cached_tokens or 0}
        elif not self.stream:
            u["prompt_tokens_details"] = None
        return u

    def on_finish(self, req):
        conn = self.conn
        if conn.closed or conn.sim_req is not req:
            return
        if self.stream:
            if self.include_usage:
                conn.chunk(self.prefix + b"]," + dumps(
                    {"usage": self.usage(req)})[1:].encode() + b"\n\n")
            conn.chunk(b"data: [DONE]\n\n")
            conn.end_stream()
            return
        text = "".join(self.token(i) for i in range(req.num_generated))
        if self.chat:
            doc = {"id": req.rid, "object": "chat.completion",
                   "created": self.created, "model": self.model,
                   "choices": [{"index": 0, "message": {
                       "role": "assistant", "content": text, "refusal": None,
                       "annotations": None, "audio": None, "function_call": None,
                       "tool_calls": [], "reasoning_content": None},
                       "logprobs": None, "finish_reason": req.finish_reason,
                       "stop_reason": None}],
                   "service_tier": None, "system_fingerprint": None,
                   "usage": self.usage(req), "prompt_logprobs": None,
                   "kv_transfer_params": None}
        else:
            doc = {"id": req.rid, "object": "text_completion",
                   "created": self.created, "model": self.model,
                   "choices": [{"index": 0, "text": text, "logprobs": None,
                                "finish_reason": req.finish_reason,
                                "stop_reason": None, "prompt_logprobs": None}],
                   "service_tier": None, "system_fingerprint": None,
                   "usage": self.usage(req), "kv_transfer_params": None}
        conn.send(200, [("content-type", "application/json"),
                        ("x-sim-engine", self.engine_index)],
                  dumps(doc).encode())


# ----------------------------------------------------------------------------
# The /metrics page
# ----------------------------------------------------------------------------

_proc_cache = [0.0, None]


def process_lines():
    """python_gc_*, python_info and process_* families (prometheus_client's
    default collectors), refreshed at most once a second for the process."""
    now = time.monotonic()
    if _proc_cache[1] is not None and now - _proc_cache[0] < 1.0:
        return _proc_cache[1]
    out = []
    stats = gc.get_stats()
    for name, key, doc in (
            ("python_gc_objects_collected_total", "collected",
             "Objects collected during gc"),
            ("python_gc_objects_uncollectable_total", "uncollectable",
             "Uncollectable objects found during GC"),
            ("python_gc_collections_total", "collections",
             "Number of times this generation was collected")):
        out.append("# HELP %s %s\n# TYPE %s counter" % (name, doc, name))
        for gen, s in enumerate(stats):
            out.append('%s{generation="%d"} %s' % (name, gen, gofloat(s[key])))
    v = sys.version_info
    out.append("# HELP python_info Python platform information\n"
               "# TYPE python_info gauge")
    out.append('python_info{implementation="%s",major="%d",minor="%d",'
               'patchlevel="%d",version="%d.%d.%d"} 1.0'
               % (platform.python_implementation(), v[0], v[1], v[2], v[0], v[1], v[2]))
    vm = rss = 0
    try:
        with open("/proc/self/statm") as f:
            pages = f.read().split()
        ps = os.sysconf("SC_PAGE_SIZE")
        vm, rss = int(pages[0]) * ps, int(pages[1]) * ps
    except (OSError, ValueError, IndexError):
        pass
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    t = os.times()
    try:
        import resource
        maxfds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError):
        maxfds = 1024
    for name, doc, val in (
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", vm),
            ("process_resident_memory_bytes", "Resident memory size in bytes.", rss)):
        out.append("# HELP %s %s\n# TYPE %s gauge\n%s %s"
                   % (name, doc, name, name, gofloat(val)))
    out.append("@START@")
    out.append("# HELP process_cpu_seconds_total Total user and system CPU time "
               "spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"
               "process_cpu_seconds_total %s" % gofloat(round(t.user + t.system, 2)))
    out.append("# HELP process_open_fds Number of open file descriptors.\n"
               "# TYPE process_open_fds gauge\nprocess_open_fds %s" % gofloat(fds))
    out.append("# HELP process_max_fds Maximum number of open file descriptors.\n"
               "# TYPE process_max_fds gauge\nprocess_max_fds %s" % gofloat(maxfds))
    text = "\n".join(out)
    _proc_cache[0], _proc_cache[1] = now, text
    return text


def render_page(server):
    p = server.p
    v0 = p.metrics_variant == "v0"
    legacy = p.metrics_variant == "v1-legacy"
    model = label_escape(p.model)
    engines = server.engines
    out = [process_lines().replace(
        "@START@",
        "# HELP process_start_time_seconds Start time of the process since unix "
        "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds %s" % gofloat(round(server.start_time, 2)))]

    def lab(e, extra=""):
        # sorted label order: engine < finished_reason < le < model_name
        if v0:
            return "{%smodel_name=\"%s\"}" % (extra, model)
        return '{engine="%d",%smodel_name="%s"}' % (e.index, extra, model)

    def family(name, mtype, doc, values):
        out.append("# HELP %s %s\n# TYPE %s %s" % (name, doc, name, mtype))
        if v0:   # V0 has one series per model: sum counts, average usage
            if values and isinstance(values[0], float) and mtype == "gauge" \
                    and name.endswith("_perc"):
                out.append("%s%s %s" % (name, lab(None), gofloat(sum(values) / len(values))))
            else:
                out.append("%s%s %s" % (name, lab(None), gofloat(sum(values))))
            return
        for e, val in zip(engines, values):
            out.append("%s%s %s" % (name, lab(e), gofloat(val)))

    def created(name, doc):
        out.append("# HELP %s_created %s\n# TYPE %s_created gauge" % (name, doc, name))
        if v0:
            out.append("%s_created%s %s" % (name, lab(None), gofloat(engines[0].stats.created)))
            return
        for e in engines:
            out.append("%s_created%s %s" % (name, lab(e), gofloat(e.stats.created)))

    def counter(name, doc, values):
        family("vllm:%s_total" % name, "counter", doc, values)
        created("vllm:" + name, doc)

    running = [float(len(e.running)) for e in engines]
    waiting = [float(len(e.waiting)) for e in engines]
    usage = [e.pool.used / e.pool.total for e in engines]
    if v0:
        family("vllm:num_requests_running", "gauge",
               "Number of requests currently running on GPU.", running)
        family("vllm:num_requests_swapped", "gauge",
               "Number of requests swapped to CPU.", [0.0] * len(engines))
        family("vllm:num_requests_waiting", "gauge",
               "Number of requests waiting to be processed.", waiting)
        family("vllm:gpu_cache_usage_perc", "gauge",
               "GPU KV-cache usage. 1 means 100 percent usage.", usage)
        family("vllm:cpu_cache_usage_perc", "gauge",
               "CPU KV-cache usage. 1 means 100 percent usage.", [0.0] * len(engines))
        q = sum(e.stats.prefix_queries for e in engines)
        hits = sum(e.stats.prefix_hits for e in engines)
        family("vllm:cpu_prefix_cache_hit_rate", "gauge",
               "CPU prefix cache block hit rate.", [-1.0])
        family("vllm:gpu_prefix_cache_hit_rate", "gauge",
               "GPU prefix cache block hit rate.", [hits / q if q else 0.0])
    else:
        family("vllm:num_requests_running", "gauge",
               "Number of requests in model execution batches.", running)
        family("vllm:num_requests_waiting", "gauge",
               "Number of requests waiting to be processed.", waiting)
        if legacy:
            family("vllm:gpu_cache_usage_perc", "gauge",
                   "GPU KV-cache usage. 1 means 100 percent usage."
                   "DEPRECATED: Use vllm:kv_cache_usage_perc instead.", usage)
            counter("gpu_prefix_cache_queries",
                    "GPU prefix cache queries, in terms of number of queried"
                    "tokens. DEPRECATED: Use vllm:prefix_cache_queries instead.",
                    [float(e.stats.prefix_queries) for e in engines])
            counter("gpu_prefix_cache_hits",
                    "GPU prefix cache hits, in terms of number of cached "
                    "tokens. DEPRECATED: Use vllm:prefix_cache_hits instead.",
                    [float(e.stats.prefix_hits) for e in engines])
        family("vllm:kv_cache_usage_perc", "gauge",
               "KV-cache usage. 1 means 100 percent usage.", usage)
        counter("prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.",
                [float(e.stats.prefix_queries) for e in engines])
        counter("prefix_cache_hits",
                "Prefix cache hits, in terms of number of cached tokens.",
                [float(e.stats.prefix_hits) for e in engines])
    counter("num_preemptions", "Cumulative number of preemption from the engine.",
            [float(e.stats.preemptions) for e in engines])
    counter("prompt_tokens", "Number of prefill tokens processed.",
            [float(e.stats.prompt_tokens) for e in engines])
    counter("generation_tokens", "Number of generation tokens processed.",
            [float(e.stats.generation_tokens) for e in engines])

    doc = "Count of successfully processed requests."
    out.append("# HELP vllm:request_success_total %s\n"
               "# TYPE vllm:request_success_total counter" % doc)
    reasons = ("stop", "length", "abort")
    for e in (engines if not v0 else engines[:1]):
        for r in reasons:
            val = (e.stats.success[r] if not v0
                   else sum(x.stats.success[r] for x in engines))
            out.append("vllm:request_success_total%s %s"
                       % (lab(e, 'finished_reason="%s",' % r), gofloat(val)))
    out.append("# HELP vllm:request_success_created %s\n"
               "# TYPE vllm:request_success_created gauge" % doc)
    for e in (engines if not v0 else engines[:1]):
        for r in reasons:
            out.append("vllm:request_success_created%s %s"
                       % (lab(e, 'finished_reason="%s",' % r), gofloat(e.stats.created)))

    for name, doc, _ in ENGINE_HISTOGRAMS:
        full = "vllm:" + name
        out.append("# HELP %s %s\n# TYPE %s histogram" % (full, doc, full))
        for e in (engines if not v0 else engines[:1]):
            pre = "" if v0 else 'engine="%d",' % e.index
            out.append(e.stats.hist[name].lines(full, pre, ',model_name="%s"' % model))
        created(full, doc)

    if p.adapters:
        out.append("# HELP vllm:lora_requests_info Running stats on lora requests.\n"
                   "# TYPE vllm:lora_requests_info gauge")
        merged = {}
        for e in engines:
            for k, t in e.lora_info.items():
                merged[k] = max(t, merged.get(k, 0.0))
        for (run, wait), t in merged.items():
            out.append('vllm:lora_requests_info{max_lora="%d",running_lora_adapters="%s",'
                       'waiting_lora_adapters="%s"} %s'
                       % (p.max_lora, label_escape(run), label_escape(wait), gofloat(t)))

    out.append("# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
               "# TYPE vllm:cache_config_info gauge")
    for e in (engines if not v0 else engines[:1]):
        info = {"block_size": p.block_size, "cache_dtype": "auto",
                "calculate_kv_scales": "False", "cpu_offload_gb": "0",
                "enable_prefix_caching": str(p.enable_prefix_caching),
                "gpu_memory_utilization": "0.9", "is_attention_free": "False",
                "num_cpu_blocks": "None" if not v0 else "2048",
                "num_gpu_blocks": p.kv_blocks, "num_gpu_blocks_override": "None",
                "sliding_window": "None", "swap_space_bytes": "4294967296"}
        if not v0:
            info["engine"] = str(e.index)
            info["prefix_caching_hash_algo"] = "builtin"
        out.append("vllm:cache_config_info%s 1.0" % labels_text(info))

    # prometheus-fastapi-instrumentator's families, as on vLLM's page
    out.append("# HELP http_requests_total Total number of requests by method, "
               "status and handler.\n# TYPE http_requests_total counter")
    for (handler, method, status), n in sorted(server.http_counts.items()):
        out.append('http_requests_total{handler="%s",method="%s",status="%s"} %s'
                   % (handler, method, status, gofloat(n)))
    out.append("# HELP http_requests_created Total number of requests by method, "
               "status and handler.\n# TYPE http_requests_created gauge")
    for (handler, method, status) in sorted(server.http_counts):
        out.append('http_requests_created{handler="%s",method="%s",status="%s"} %s'
                   % (handler, method, status, gofloat(server.start_time)))
    doc = ("Latency with many buckets but no API specific labels. Made for more "
           "accurate percentile calculations. ")
    out.append("# HELP http_request_duration_highr_seconds %s\n"
               "# TYPE http_request_duration_highr_seconds histogram" % doc)
    out.append(server.http_highr.lines("http_request_duration_highr_seconds", "", ""))
    out.append("# HELP http_request_duration_highr_seconds_created %s\n"
               "# TYPE http_request_duration_highr_seconds_created gauge\n"
               "http_request_duration_highr_seconds_created %s"
               % (doc, gofloat(server.http_highr.created)))
    doc = ("Latency with only few buckets by handler. Made to be only used if "
           "aggregation by handler is important. ")
    out.append("# HELP http_request_duration_seconds %s\n"
               "# TYPE http_request_duration_seconds histogram" % doc)
    for (handler, method), h in sorted(server.http_hist.items()):
        out.append(h.lines("http_request_duration_seconds",
                           'handler="%s",' % handler, ',method="%s"' % method))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------
# The fleet and its admin port
# ----------------------------------------------------------------------------

class AdminHandler:
    def __init__(self, fleet):
        self.fleet = fleet
        self.conns = set()
        self.common_headers = []

    def observe_http(self, req, status, size):
        pass

    def on_disconnect(self, conn):
        pass

    def _json(self, conn, status, doc):
        conn.send(status, [("content-type", "application/json")],
                  (json.dumps(doc, indent=1) + "\n").encode())

    def handle(self, conn, req):
        fleet = self.fleet
        params = req.params()
        path = req.path.rstrip("/") or "/"
        if path in ("/", "/state"):
            return self._json(conn, 200, fleet.state())
        try:
            targets = fleet.select(params.pop("server", None), params.pop("region", None))
        except ValueError as e:
            return self._json(conn, 404, {"error": str(e)})
        if req.method not in ("POST", "PUT"):
            return self._json(conn, 405, {"error": "use POST"})
        try:
            if path == "/fault":
                kind = params.pop("kind", "")
                for s in targets:
                    fleet.apply_fault(s, kind, dict(params))
            elif path == "/clear":
                for s in targets:
                    fleet.clear_fault(s, params.get("kind", "all"))
            elif path == "/down":
                for s in targets:
                    fleet.apply_fault(s, "down", {})
            elif path == "/up":
                for s in targets:
                    fleet.apply_fault(s, "up", {})
            else:
                return self._json(conn, 404, {"error": "unknown path"})
        except ValueError as e:
            return self._json(conn, 400, {"error": str(e)})
        if path in ("/up", "/fault") and any(s.listener is None and s.pending_up
                                             for s in targets):
            # answer once every port listens again
            async def wait_up():
                try:
                    await asyncio.gather(*(s.pending_up for s in targets if s.pending_up))
                except OSError as e:
                    return self._json(conn, 500, {"error": "cannot listen: %s" % e})
                self._json(conn, 200, {"servers": [s.state() for s in targets]})
            asyncio.ensure_future(wait_up())
            return
        self._json(conn, 200, {"servers": [s.state() for s in targets]})


class Fleet:
    def __init__(self, seed, time_scale):
        self.seed = seed
        self.time_scale = time_scale
        self.servers = []
        self.by_listen = {}
        self.token_table = make_token_table(seed)
        self.admin = None
        self.admin_listener = None

    def add(self, p):
        s = SimServer(self, p)
        self.servers.append(s)
        self.by_listen[p.listen] = s
        return s

    def select(self, server, region):
        if server in (None, "", "all", "*"):
            targets = list(self.servers)
        else:
            names = server.split(",")
            missing = [n for n in names if n not in self.by_listen]
            if missing:
                raise ValueError("no such server: %s" % ", ".join(missing))
            targets = [self.by_listen[n] for n in names]
        if region:
            targets = [s for s in targets if s.p.region == region]
        return targets

    def apply_fault(self, s, kind, params):
        if kind == "down":
            s.down()
            return
        if kind == "up":
            if s.listener is None and s.pending_up is None:
                fut = asyncio.ensure_future(s.up())

                def done(_f, s=s):
                    s.pending_up = None
                fut.add_done_callback(done)
                s.pending_up = fut
            return
        if kind == "clear":
            self.clear_fault(s, params.get("kind", "all"))
            return
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (use %s, down, up, clear)"
                             % (kind, ", ".join(FAULT_KINDS)))
        s.faults.active[kind] = params

    def clear_fault(self, s, kind):
        if kind in ("all", "", None):
            s.faults.active.clear()
        else:
            s.faults.active.pop(kind, None)

    def state(self):
        return {"seed": self.seed, "time_scale": self.time_scale,
                "servers": [s.state() for s in self.servers]}

    async def start(self, admin):
        for s in self.servers:
            await s.listen()
        if admin:
            host, _, port = admin.rpartition(":")
            self.admin = AdminHandler(self)
            self.admin_listener = await asyncio.get_running_loop().create_server(
                lambda: HttpConnection(self.admin), host or "127.0.0.1", int(port),
                reuse_address=True)

    def close(self):
        for s in self.servers:
            s.close()
        if self.admin_listener is not None:
            self.admin_listener.close()
            for c in list(self.admin.conns):
                c.drop()


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def build_parser():
    ap = argparse.ArgumentParser(
        description="Simulated vLLM servers (OpenAI API, /metrics, faults).",
        epilog="The per-server flags are also the keys of a fleet file (with "
        "underscores); flags given on the command line override the file.  "
        "util/sim/README.md explains every parameter and its default.")
    ap.add_argument("--servers", default="",
                    help="comma-separated HOST:PORT[@REGION] list")
    ap.add_argument("--fleet", help="JSON or INI fleet file")
    ap.add_argument("--admin", help="HOST:PORT of the fleet's admin endpoint")
    ap.add_argument("--seed", type=int, help="seed of every random draw (default 0)")
    ap.add_argument("--time-scale", type=float,
                    help="multiplies every modeled GPU duration of every server "
                    "(10 = ten times slower GPUs); default 1")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any per-server parameter for the --servers list")
    for k, v in PARAM_DEFAULTS.items():
        if k in ("time_scale",):
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            ap.add_argument(flag, dest="p_" + k, default=None, metavar="BOOL",
                            help="true/false (default %s)" % v)
        else:
            shown = ",".join(v) if isinstance(v, list) else v
            ap.add_argument(flag, dest="p_" + k, default=None,
                            metavar="LIST" if isinstance(v, list) else "V",
                            help="default %s" % (shown if shown != "" else "none"))
    return ap


def resolve(args):
    """Builds (seed, time_scale, admin, [ServerParams]) from CLI and file."""
    cli = {}
    for k in PARAM_DEFAULTS:
        v = getattr(args, "p_" + k, None)
        if v is not None:
            cli[k] = v
    for kv in args.set:
        k, _, v = kv.partition("=")
        if k not in PARAM_DEFAULTS:
            raise ValueError("--set: unknown parameter %r" % k)
        cli[k] = v
    glob = dict(GLOBAL_DEFAULTS)
    servers = []
    if args.fleet:
        fglob, fdefaults, fregions, fservers = load_fleet_file(args.fleet)
        glob.update(fglob)
        for listen, sv in fservers:
            region = sv.get("region", fdefaults.get("region", "local"))
            values = dict(fdefaults)
            values.update(fregions.get(region, {}))
            values.update(sv)
            values.update({k: v for k, v in cli.items() if k != "region"})
            values["region"] = region
            servers.append(ServerParams(listen, values))
    for item in filter(None, (x.strip() for x in args.servers.split(","))):
        listen, _, region = item.partition("@")
        values = dict(cli)
        if region:
            values["region"] = region
        servers.append(ServerParams(listen, values))
    if args.seed is not None:
        glob["seed"] = args.seed
    if args.time_scale is not None:
        glob["time_scale"] = args.time_scale
    if args.admin is not None:
        glob["admin"] = args.admin
    seen = set()
    for s in servers:
        if s.listen in seen:
            raise ValueError("server %s listed twice" % s.listen)
        seen.add(s.listen)
    if not servers:
        raise ValueError("no servers: give --servers or --fleet")
    return int(glob["seed"]), float(glob["time_scale"]), glob["admin"], servers


async def amain(args):
    seed, time_scale, admin, params = resolve(args)
    fleet = Fleet(seed, time_scale)
    for p in params:
        fleet.add(p)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start(admin)
    except OSError as e:
        fleet.close()
        print("vllm_sim: cannot listen: %s" % e, file=sys.stderr)
        return 1
    print("vllm_sim ready: %d servers (%s)%s seed=%d time_scale=%g pid=%d"
          % (len(params), ",".join(p.listen for p in params),
             " admin=" + admin if admin else "", seed, time_scale, os.getpid()),
          flush=True)
    await stop.wait()
    fleet.close()
    await asyncio.sleep(0)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        rc = asyncio.run(amain(args))
    except ValueError as e:
        print("vllm_sim: %s" % e, file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
