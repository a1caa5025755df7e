#!/usr/bin/python3
"""demo.py - the driver of util/demo.sh (Python 3 standard library only).

util/demo.sh starts the simulated fleet and nginx; this script talks to the
gateway only, over HTTP:

  1. waits until the gateway has scraped every member of the pool;
  2. sends the GKE guide's request (POST /v1/completions, model
     food-review-1) and shows the answer;
  3. runs a load ramp - open-loop Poisson arrivals, stage by stage - with a
     live line per second from GET /mcig/status: where the requests went
     (local / spillover, deltas of the pool's "decisions"), each region's
     utilization against the target and each member's KV-cache usage;
  4. prints the per-stage, per-region and per-member summary, and checks
     what the demo is meant to show (exit status 1 if a check fails);
  5. without --once, keeps watching the gateway (a line per second while
     requests come) until SIGINT or SIGTERM.

  demo.py [--gateway http://127.0.0.1:8080] [--once] [--seed 1]
          [--error-log FILE --error-log-offset N]
"""

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import time
import urllib.parse

GUIDE_REQUEST = {"model": "food-review-1",
                 "prompt": "What is the best pizza in the world?",
                 "max_tokens": 100, "temperature": 0}

# The ramp: (stage name, arrivals per second, seconds).  With the fleet of
# util/sim/demo-fleet.json the local region (3 members, 256 KV blocks each,
# 24 ms per decode step) reaches the 60 % target near 8 requests/s of these
# requests; the last stage is about twice that.
RAMP = [("low", 2.0, 8), ("5/s", 5.0, 6), ("8/s", 8.0, 6),
        ("11/s", 11.0, 6), ("14/s", 14.0, 6), ("top", 17.0, 10)]

WORDS = ("pizza crust basil oven dough tomato cheese mozzarella neapolitan "
         "wood fired slice pepperoni olive oil flour yeast sauce garlic "
         "oregano salt fresh crispy soft thin thick delicious service "
         "waiter table wine dessert tiramisu price friendly slow quick "
         "warm cold excellent average disappointing recommend").split()

COLOR = sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb") \
    and "NO_COLOR" not in os.environ


def c(text, code):
    return "\033[%sm%s\033[0m" % (code, text) if COLOR else text


def say(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------
# HTTP/1.1 client (one connection per request, Connection: close)
# ----------------------------------------------------------------------------

class Http:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http":
            raise SystemExit("demo: only http:// gateways")
        self.host = u.hostname
        self.port = u.port or 80
        self.netloc = u.netloc

    async def request(self, method, path, body=None, timeout=30.0):
        """(status, headers, body bytes); status 0 on a connection error."""
        try:
            return await asyncio.wait_for(self._request(method, path, body),
                                          timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                ValueError, IndexError) as e:
            return 0, {"error": "%s %s" % (type(e).__name__, e)}, b""

    async def _request(self, method, path, body):
        r, w = await asyncio.open_connection(self.host, self.port)
        try:
            head = ["%s %s HTTP/1.1" % (method, path), "Host: " + self.netloc,
                    "Connection: close", "User-Agent: mcig-demo"]
            data = b""
            if body is not None:
                data = json.dumps(body).encode()
                head += ["Content-Type: application/json",
                         "Content-Length: %d" % len(data)]
            w.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            raw = await r.read()
        finally:
            w.close()
        sep = raw.find(b"\r\n\r\n")
        if sep < 0:
            raise ValueError("no response header")
        lines = raw[:sep].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        payload = raw[sep + 4:]
        if "chunked" in headers.get("transfer-encoding", ""):
            payload = dechunk(payload)
        return status, headers, payload


def dechunk(data):
    out, pos = [], 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            break
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            break
        out.append(data[eol + 2:eol + 2 + size])
        pos = eol + 2 + size + 2
    return b"".join(out)


# ----------------------------------------------------------------------------
# The status handler's JSON
# ----------------------------------------------------------------------------

class Status:
    def __init__(self, http, pool_name):
        self.http = http
        self.pool_name = pool_name

    async def get(self):
        status, _, body = await self.http.request("GET", "/mcig/status",
                                                  timeout=5)
        if status != 200:
            return None
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        pools = doc.get("pools") or {}
        if not pools:
            return None
        if self.pool_name is None:
            self.pool_name = sorted(pools)[0]
        return pools.get(self.pool_name)


def region_of(pool, name):
    for r in pool["regions"]:
        if r["name"] == name:
            return r
    return None


def local_region(pool):
    for r in pool["regions"]:
        if r.get("local"):
            return r["name"]
    return pool["regions"][0]["name"] if pool["regions"] else "local"


def kv_of(m):
    met = m.get("metrics")
    if not met or met.get("kv_cache_usage") is None:
        return None
    return met["kv_cache_usage"]


async def wait_ready(st, timeout=20.0):
    t_end = time.monotonic() + timeout
    pool = None
    while time.monotonic() < t_end:
        pool = await st.get()
        if pool and pool["members"] and all(
                m["healthy"] and m.get("metrics") is not None
                for m in pool["members"]):
            return pool
        await asyncio.sleep(0.25)
    if pool is None:
        say("demo: the gateway's status page does not answer")
    else:
        bad = [m["address"] for m in pool["members"]
               if not m["healthy"] or m.get("metrics") is None]
        say("demo: members without fresh metrics after %.0f s: %s"
            % (timeout, ", ".join(bad)))
    return None


# ----------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------

async def ask_guide_request(http):
    say(c("$ curl -i -X POST 127.0.0.1:8080/v1/completions "
          "-H 'Content-Type: application/json' -d '%s'"
          % json.dumps(GUIDE_REQUEST), "1"))
    t0 = time.monotonic()
    status, headers, body = await http.request("POST", "/v1/completions",
                                               GUIDE_REQUEST, timeout=30)
    dt = time.monotonic() - t0
    if status == 0:
        say("demo: no answer: %s" % headers.get("error"))
        return False, None
    say("HTTP/1.1 %d  (%.2f s; answered by %s in %s)"
        % (status, dt, headers.get("x-sim-server", "?"),
           headers.get("x-sim-region", "?")))
    text = None
    try:
        doc = json.loads(body)
        text = doc["choices"][0]["text"]
        shown = {k: doc[k] for k in ("id", "object", "model") if k in doc}
        shown["choices"] = [{"text": text,
                             "finish_reason": doc["choices"][0].get("finish_reason")}]
        shown["usage"] = doc.get("usage")
        say(json.dumps(shown, indent=2))
    except (ValueError, KeyError, IndexError, TypeError):
        say(body[:2000].decode("utf-8", "replace"))
    ok = status == 200 and isinstance(text, str) and text.strip() != ""
    if ok:
        say(c("(The text comes from the simulator: pseudo-words drawn from "
              "its seed, %d tokens as asked.)"
              % GUIDE_REQUEST["max_tokens"], "2"))
    return ok, headers.get("x-sim-region")


class Ramp:
    """Open-loop arrivals (a seeded Poisson process per stage) and the live
    view; keeps every sample for the summary and the checks."""

    def __init__(self, http, st, seed, ramp):
        self.http = http
        self.st = st
        self.rng = random.Random("demo:%d" % seed)
        self.ramp = ramp
        self.inflight = set()
        self.results = []          # (stage, status, seconds, region)
        self.samples = []          # dicts, one per second
        self.stage = ramp[0][0]
        self.rate = ramp[0][1]
        self.sent = 0

    def prompt(self, i):
        n = int(min(1200, max(64, self.rng.lognormvariate(math.log(300), 0.5))))
        words, size = [], 0
        while size < n * 4:
            w = self.rng.choice(WORDS)
            words.append(w)
            size += len(w) + 1
        return ("Review %d. Summarize this restaurant review in two sentences: "
                % i) + " ".join(words)

    async def one(self, i, stage):
        body = {"model": "food-review-1", "prompt": self.prompt(i),
                "max_tokens": 100, "temperature": 0}
        t0 = time.monotonic()
        status, headers, _ = await self.http.request("POST", "/v1/completions",
                                                     body, timeout=60)
        self.results.append((stage, status, time.monotonic() - t0,
                             headers.get("x-sim-region", "")))

    def spawn(self, i, stage):
        t = asyncio.ensure_future(self.one(i, stage))
        self.inflight.add(t)
        t.add_done_callback(self.inflight.discard)

    async def arrivals(self):
        loop = asyncio.get_running_loop()
        t = loop.time()
        for name, rate, secs in self.ramp:
            self.stage = name
            self.rate = rate
            end = t + secs
            while True:
                t += self.rng.expovariate(rate)
                if t >= end:
                    t = end
                    break
                delay = t - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.spawn(self.sent, name)
                self.sent += 1
            delay = end - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        self.stage = "drain"
        self.rate = 0.0

    LEAD = "%6s  %-5s %8s %7s | %5s %5s"

    def header(self, pool):
        self.regions = [r["name"] for r in pool["regions"]]
        self.local = local_region(pool)
        cols = [self.LEAD % ("t", "stage", "offered", "routed", "local",
                             "spill")]
        for rname in self.regions:
            n = sum(1 for m in pool["members"] if m["region"] == rname)
            width = 6 + 1 + 4 * n
            label = "%s util, KV%%" % rname
            if rname == self.local:
                width += len(bar(0)) + 1
                label = "%s util (x target), KV%%" % rname
            cols.append(label.ljust(width))
        if pool.get("queue") is not None:
            cols.append("queue")
        say(c(" | ".join(cols), "1"))

    def line(self, t, pool, prev, stage, rate):
        d = pool["decisions"]
        pd = prev["decisions"] if prev else {"local": 0, "spillover": 0,
                                             "failover": 0}
        dl = d["local"] - pd["local"]
        ds = d["spillover"] - pd["spillover"]
        df = d["failover"] - pd["failover"]
        tot = dl + ds + df
        sample = {"t": t, "stage": stage, "rate": rate,
                  "local": dl, "spillover": ds, "failover": df,
                  "regions": {}, "kv": {}}
        parts = [self.LEAD % (
            "%.0fs" % t, stage, "%.1f/s" % rate, "%d/s" % tot,
            ("%d%%" % round(100.0 * dl / tot)) if tot else "-",
            ("%d%%" % round(100.0 * ds / tot)) if tot else "-")]
        for rname in self.regions:
            r = region_of(pool, rname)
            u = r["utilization"] if r else 0.0
            sample["regions"][rname] = u
            kvs = []
            for m in pool["members"]:
                if m["region"] != rname:
                    continue
                kv = kv_of(m)
                sample["kv"][m["address"]] = kv
                kvs.append("  --" if kv is None else "%4d" % round(100 * kv))
            s = "%5.2fx" % u
            if rname == self.local:
                s += " " + bar(u)
                if u > 1.0:
                    s = c(s, "33")
            parts.append(s + " " + "".join(kvs).rjust(len(kvs) * 4))
        q = pool.get("queue")
        if q is not None:
            # requests waiting in the gateway (mcig_queue): every member full
            parts.append("%5d" % q.get("depth", 0))
        self.samples.append(sample)
        say(" | ".join(parts))

    async def monitor(self, done, t0):
        prev = await self.st.get()
        if prev is None:
            return
        self.header(prev)
        next_t = time.monotonic() + 1.0
        while not done.is_set():
            # a line counts the second before it: it belongs to the stage
            # that was running when that second began
            stage, rate = self.stage, self.rate
            try:
                await asyncio.wait_for(done.wait(),
                                       max(0.0, next_t - time.monotonic()))
                break
            except asyncio.TimeoutError:
                pass
            next_t += 1.0
            pool = await self.st.get()
            if pool is None:
                continue
            self.line(time.monotonic() - t0, pool, prev, stage, rate)
            prev = pool

    async def run(self, drain_s=15.0):
        done = asyncio.Event()
        t0 = time.monotonic()
        mon = asyncio.ensure_future(self.monitor(done, t0))
        await self.arrivals()
        t_end = time.monotonic() + drain_s
        while self.inflight and time.monotonic() < t_end:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.1)        # one more line after the last answer
        done.set()
        await mon
        for t in list(self.inflight):
            t.cancel()


def bar(u, width=20):
    """0 .. 2x target; '|' marks the target."""
    fill = int(round(min(u, 2.0) / 2.0 * width))
    cells = ["#" if i < fill else " " for i in range(width)]
    cells.insert(width // 2, "|")
    return "[" + "".join(cells) + "]"


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(ramp, pool, local):
    say("")
    say(c("Per stage (decisions counted by the gateway, answers by this "
          "client):", "1"))
    say("stage    offered  routed  local  spilled  %s util (mean, max)  "
        "answers  non-200  p50 s" % local)
    order = [s[0] for s in ramp.ramp] + ["drain"]
    for name in order:
        ss = [s for s in ramp.samples if s["stage"] == name]
        rs = [r for r in ramp.results if r[0] == name]
        if not ss and not rs:
            continue
        dl = sum(s["local"] for s in ss)
        ds = sum(s["spillover"] for s in ss)
        df = sum(s["failover"] for s in ss)
        tot = dl + ds + df
        us = [s["regions"].get(local, 0.0) for s in ss]
        rate = next((r for n, r, _ in ramp.ramp if n == name), 0.0)
        lat = pct([r[2] for r in rs if r[1] == 200], 50)
        say("%-7s %6.1f/s %7d %5s %8s   %5.2fx  %5.2fx          %7d  %7d  %5s" % (
            name, rate, tot,
            ("%d%%" % round(100.0 * dl / tot)) if tot else "-",
            ("%d%%" % round(100.0 * ds / tot)) if tot else "-",
            sum(us) / len(us) if us else 0.0, max(us) if us else 0.0,
            len(rs), sum(1 for r in rs if r[1] != 200),
            "%.2f" % lat if lat is not None else "-"))

    say("")
    say(c("Per region (GET /mcig/status):", "1"))
    say("region         local  members  healthy  requests  share  "
        "util mean/max in the ramp  p50 s (this client)")
    total = sum(r["requests"] for r in pool["regions"]) or 1
    for r in pool["regions"]:
        lat = pct([x[2] for x in ramp.results
                   if x[1] == 200 and x[3] == r["name"]], 50)
        us = [s["regions"].get(r["name"], 0.0) for s in ramp.samples
              if s["stage"] != "drain"] or [0.0]
        say("%-14s %-5s  %7d  %7d  %8d  %4d%%  %11.2fx / %.2fx  %s" % (
            r["name"], "yes" if r["local"] else "no", r["members"],
            r["healthy"], r["requests"], round(100.0 * r["requests"] / total),
            sum(us) / len(us), max(us),
            "%.2f" % lat if lat is not None else "-"))

    say("")
    say(c("Per member (GET /mcig/status; KV peak: the highest usage seen "
          "once a second during the ramp):", "1"))
    say("member           region        healthy  requests  failures  "
        "KV now  KV peak  running  waiting  scrapes")
    for m in pool["members"]:
        peak = max([s["kv"].get(m["address"]) or 0.0 for s in ramp.samples]
                   or [0.0])
        met = m.get("metrics") or {}
        kv = kv_of(m)
        say("%-16s %-13s %-7s  %8d  %8d  %5s  %6d%%  %7s  %7s  %7d" % (
            m["address"], m["region"], "yes" if m["healthy"] else "NO",
            m["requests"], m["failures"],
            "%d%%" % round(100 * kv) if kv is not None else "-",
            round(100 * peak), met.get("running", "-"), met.get("waiting", "-"),
            m["scrapes"]))
    d = pool["decisions"]
    say("")
    say("decisions: local %d, spillover %d, failover %d; responses: %s" % (
        d["local"], d["spillover"], d["failover"],
        ", ".join("%s %d" % (k, v) for k, v in pool["responses"].items() if v)))
    q = pool.get("queue")
    if q is not None:
        say("gateway queue (mcig_queue, used when every member is full): %d "
            "requests waited, %d dispatched, %d refused as full, %d timed out"
            % (q.get("queued", 0), q.get("dispatched", 0), q.get("queue_full", 0),
               q.get("queue_timeout", 0)))


def check_log(path, offset):
    """[alert], [crit] and [emerg] lines nginx wrote since offset."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [l for l in text.splitlines()
            if "[alert]" in l or "[crit]" in l or "[emerg]" in l]


def checks(answer_ok, ramp, local, log_lines):
    res = []
    res.append(("the guide's request got 200 with a completion text",
                answer_ok, ""))

    low = [s for s in ramp.samples if s["stage"] == ramp.ramp[0][0]]
    dl = sum(s["local"] for s in low)
    tot = sum(s["local"] + s["spillover"] + s["failover"] for s in low)
    frac = dl / tot if tot else 0.0
    res.append(("at low load (%s) nearly all traffic stays in %s"
                % (ramp.ramp[0][0], local), tot > 0 and frac >= 0.95,
                "%d of %d local (%.0f %%)" % (dl, tot, 100 * frac)))

    top = [s for s in ramp.samples if s["stage"] == ramp.ramp[-1][0]]
    spill = sum(s["spillover"] for s in top)
    ttot = sum(s["local"] + s["spillover"] + s["failover"] for s in top)
    over = [s for s in top if s["regions"].get(local, 0.0) > 1.0]
    both = [s for s in top
            if s["spillover"] > 0 and s["regions"].get(local, 0.0) > 1.0]
    umax = max([s["regions"].get(local, 0.0) for s in top] or [0.0])
    res.append(("at the top of the ramp (%s) traffic spills to the other "
                "region while %s is over its target" % (ramp.ramp[-1][0], local),
                spill > 0 and len(over) >= 2 and len(both) >= 1,
                "%d of %d spilled; %s over target in %d of %d seconds "
                "(max %.2fx)" % (spill, ttot, local, len(over), len(top), umax)))

    failed = [r for r in ramp.results if r[1] != 200]
    res.append(("every ramp request was answered with 200",
                len(failed) == 0 and len(ramp.results) == ramp.sent,
                "%d of %d answered, %d not 200"
                % (len(ramp.results), ramp.sent, len(failed))))

    res.append(("no [alert], [crit] or [emerg] in nginx's error log",
                not log_lines, "; ".join(log_lines[:3])))
    say("")
    say(c("Checks:", "1"))
    for what, ok, detail in res:
        say("  %s %s%s" % (c("ok  ", "32") if ok else c("FAIL", "31"), what,
                           " (%s)" % detail if detail else ""))
    return all(ok for _, ok, _ in res)


async def watch(st, stop):
    """After the demo: a line per second while requests come."""
    prev = await st.get()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
            break
        except asyncio.TimeoutError:
            pass
        pool = await st.get()
        if pool is None or prev is None:
            prev = pool
            continue
        d, pd = pool["decisions"], prev["decisions"]
        n = {k: d[k] - pd[k] for k in d}
        if sum(n.values()):
            regions = ", ".join("%s %.2fx KV %s" % (
                r["name"], r["utilization"], " ".join(
                    "%d%%" % round(100 * (kv_of(m) or 0))
                    for m in pool["members"] if m["region"] == r["name"]))
                for r in pool["regions"])
            say("%s  %d requests/s: local %d, spillover %d, failover %d | %s"
                % (time.strftime("%H:%M:%S"), sum(n.values()), n["local"],
                   n["spillover"], n["failover"], regions))
        prev = pool


async def amain(a):
    http = Http(a.gateway)
    st = Status(http, a.pool)
    say(c("== Waiting for the gateway to scrape every member", "1;36"))
    pool = await wait_ready(st)
    if pool is None:
        return 1
    local = local_region(pool)
    say("pool %s: %s" % (st.pool_name, "; ".join(
        "%s%s %s" % (r["name"], " (local)" if r["local"] else "",
                     ", ".join(m["address"] for m in pool["members"]
                               if m["region"] == r["name"]))
        for r in pool["regions"])))
    say("balancing mode %s, target %d %% KV-cache utilization"
        % (pool["balancing_mode"], pool["max_utilization"]))

    say("")
    say(c("== The guide's request", "1;36"))
    answer_ok, _ = await ask_guide_request(http)

    say("")
    total = sum(s for _, _, s in a.ramp)
    say(c("== Load ramp: %s requests/s over %d s (open loop, Poisson arrivals, "
          "prompts of ~300 tokens, 100 output tokens)"
          % (" -> ".join("%g" % r for _, r, _ in a.ramp), total), "1;36"))
    say("The gateway keeps requests in %s until its members' KV-cache usage "
        "passes the target, then sends a growing share to the next region."
        % local)
    ramp = Ramp(http, st, a.seed, a.ramp)
    await ramp.run()
    pool = await st.get()
    if pool is None:
        say("demo: the status page stopped answering")
        return 1
    summary(ramp, pool, local)
    ok = checks(answer_ok, ramp, local,
                check_log(a.error_log, a.error_log_offset))
    if a.once:
        return 0 if ok else 1

    say("")
    say(c("== The gateway keeps running", "1;36"))
    base = a.gateway.rstrip("/")
    say("  gateway         %s   (POST /v1/completions, /v1/chat/completions)"
        % base)
    say("  status JSON     %s/mcig/status" % base)
    say("  Prometheus      %s/mcig/metrics" % base)
    say("  try:  curl -s %s/v1/completions -H 'Content-Type: application/json' "
        "-d '%s'" % (base, json.dumps(GUIDE_REQUEST)))
    say("Ctrl-C stops the gateway and the simulated fleet.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await watch(st, stop)
    return 0


def parse_ramp(text):
    out = []
    for i, item in enumerate(text.split(",")):
        rate, _, secs = item.partition("x")
        name = "low" if i == 0 else "%g/s" % float(rate)
        out.append((name, float(rate), int(secs)))
    if len(out) > 1:
        out[-1] = ("top", out[-1][1], out[-1][2])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default="http://127.0.0.1:8080")
    ap.add_argument("--pool", help="pool to show (default: the first)")
    ap.add_argument("--once", action="store_true",
                    help="run the scripted part and exit with the checks' verdict")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ramp", help="RATExSECONDS,... (default %s)" % ",".join(
        "%gx%d" % (r, s) for _, r, s in RAMP))
    ap.add_argument("--error-log")
    ap.add_argument("--error-log-offset", type=int, default=0)
    a = ap.parse_args()
    a.ramp = parse_ramp(a.ramp) if a.ramp else RAMP
    try:
        return asyncio.run(amain(a))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
