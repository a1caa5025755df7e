#!/usr/bin/python3
"""loadgen.py - open-loop load generator for the routing benchmark.

Requests arrive as a Poisson process at --rate per second, for at most
--duration seconds and at most --requests requests, whatever the answers do
(open loop: a slow gateway does not slow the arrivals down).  Each request is
a streamed OpenAI chat or completions request ("stream": true,
"stream_options": {"include_usage": true}, "ignore_eos": true so the output
length is the one drawn) sent over a pool of keep-alive HTTP/1.1 connections
large enough not to throttle the arrivals (--connections, default 2048).
--concurrency N makes it a closed loop instead, as ab -c N: N clients, each
sending its next request as soon as its last one is answered, until
--duration has passed (at most --requests requests); a request's scheduled
time is then when it was sent.

Measured per request (CSV, one row each): status, TTFT (first SSE data chunk
carrying content), end-to-end latency, both from the *scheduled* arrival time
so client-side waiting is counted (no coordinated omission); the time spent
waiting for a connection; prompt/output tokens from the final usage chunk;
x-sim-server / x-sim-region of the member that answered; the objective sent
in x-gateway-inference-objective; the model (adapter) asked for.

Workloads (--workload):
  sharegpt       ShareGPT-like lengths: prompt and output token counts drawn
                 from lognormals (--in-median 160 --in-sigma 1.0, clipped to
                 [4, 4096]; --out-median 128 --out-sigma 0.8, clipped to
                 [1, 1024]); every prompt is distinct from its first block.
                 These parameters are chosen for a long right tail like
                 ShareGPT's, not fitted to the data set.
  shared-prefix  --prefixes long system prompts (--prefix-tokens 2048 each)
                 shared by --users users (user u uses prefix u % prefixes),
                 each request = one system prompt + a short user question
                 (lognormal, median 48 tokens) - many users, few prefixes.
  lora           like sharegpt, the model field drawn from --adapters
                 (--adapter-dist uniform|zipf).
Priorities: --objective NAME=FRACTION (repeatable) tags that fraction of the
requests with "x-gateway-inference-objective: NAME"; the rest carry none.

Output: --csv FILE (per-request rows), --json FILE (summary: TTFT, e2e and
TPOT p50/p90/p99, output tokens/s, goodput under --slo-ttft-ms /
--slo-e2e-ms / --slo-tpot-ms, counts by status incl. 429/503, per server,
per region, per objective).  The summary is also printed on stdout.

Everything is drawn from --seed: the same seed gives the same schedule and
the same requests (--dump-schedule prints them without sending anything).
Python 3 standard library only.
"""

import argparse
import asyncio
import collections
import csv
import hashlib
import json
import math
import random
import sys
import urllib.parse

WORDS = ("alpha beta gamma delta river mountain forest ocean garden city "
         "music paper window engine signal market winter summer orange violet "
         "bridge castle rocket planet silver golden quiet rapid gentle bright "
         "cloud stone field light dream story number letter travel recipe "
         "pizza basil oven cheese crust flour water salt yeast tomato").split()


def hash_bytes(b):
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "big")


def dumps(doc):
    return json.dumps(doc, separators=(",", ":"))


def text_of_tokens(rng, ntokens):
    """About ntokens tokens of text at ~4 bytes per token (the simulator's
    estimate), made of random words."""
    want = ntokens * 4
    out, size = [], 0
    while size < want:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:want]


def lognormal_int(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, round(rng.lognormvariate(math.log(median), sigma)))))


# ----------------------------------------------------------------------------
# Workloads: a deterministic list of (arrival offset, request spec)
# ----------------------------------------------------------------------------

def build_schedule(a):
    return list(iter_schedule(a))


def iter_schedule(a, closed=False):
    """The requests in order; closed: without the arrival times' bound of
    --duration (the closed loop stops by the clock), and built as taken."""
    rng = random.Random("schedule:%d" % a.seed)
    wrng = random.Random("workload:%d" % a.seed)
    t = 0.0
    objectives = []
    acc = 0.0
    for item in a.objective:
        name, _, frac = item.partition("=")
        acc += float(frac or 0)
        objectives.append((acc, name))
    if acc > 1.0 + 1e-9:
        raise SystemExit("loadgen: objective fractions add up to more than 1")
    prefixes = []
    if a.workload == "shared-prefix":
        for k in range(a.prefixes):
            prng = random.Random("prefix:%d:%d" % (a.seed, k))
            prefixes.append("System prompt of tenant %d. " % k
                            + text_of_tokens(prng, a.prefix_tokens))
    adapters = [x for x in a.adapters.split(",") if x]
    if a.workload == "lora" and not adapters:
        raise SystemExit("loadgen: --workload lora needs --adapters")
    zipf = None
    if adapters and a.adapter_dist == "zipf":
        weights = [1.0 / (i + 1) for i in range(len(adapters))]
        total = sum(weights)
        zipf, c = [], 0.0
        for w in weights:
            c += w / total
            zipf.append(c)
    i = 0
    while i < a.requests:
        t += rng.expovariate(a.rate)
        if t >= a.duration and not closed:
            break
        spec = {"i": i, "t": t, "model": a.model, "objective": "", "group": ""}
        u = wrng.random()
        for edge, name in objectives:
            if u < edge:
                spec["objective"] = name
                break
        if a.workload == "shared-prefix":
            user = wrng.randrange(a.users)
            k = user % a.prefixes
            q = lognormal_int(wrng, a.question_median, 0.6, 4, 1024)
            spec["group"] = "prefix-%d" % k
            spec["user"] = "user-%d" % user
            spec["system"] = prefixes[k]
            spec["question"] = ("[%s #%d] " % (spec["user"], i)
                                + text_of_tokens(wrng, q))
            spec["max_tokens"] = lognormal_int(wrng, a.out_median, a.out_sigma, 1, 1024)
        else:
            n_in = lognormal_int(wrng, a.in_median, a.in_sigma, 4, 4096)
            # a unique head keeps unrelated prompts from sharing a block
            spec["question"] = "[request %d %08x] " % (i, wrng.getrandbits(32)) \
                + text_of_tokens(wrng, n_in)
            spec["system"] = None
            spec["max_tokens"] = lognormal_int(wrng, a.out_median, a.out_sigma, 1, 1024)
        if a.workload == "lora" or (adapters and a.workload != "lora" and a.adapters_any):
            if zipf:
                x = wrng.random()
                spec["model"] = adapters[next(j for j, c in enumerate(zipf) if x <= c)]
            else:
                spec["model"] = wrng.choice(adapters)
            spec["group"] = spec["group"] or spec["model"]
        yield spec
        i += 1


def request_body(a, spec):
    if a.api == "chat":
        msgs = []
        if spec.get("system"):
            msgs.append({"role": "system", "content": spec["system"]})
        msgs.append({"role": "user", "content": spec["question"]})
        body = {"model": spec["model"], "messages": msgs}
    else:
        prompt = spec["question"]
        if spec.get("system"):
            prompt = spec["system"] + "\n" + prompt
        body = {"model": spec["model"], "prompt": prompt}
    body["max_tokens"] = spec["max_tokens"]
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if not a.no_ignore_eos:
        body["ignore_eos"] = True
    return dumps(body).encode()


# ----------------------------------------------------------------------------
# HTTP client: keep-alive pool, chunked SSE reading
# ----------------------------------------------------------------------------

class Pool:
    def __init__(self, host, port, size):
        self.host, self.port = host, port
        self.idle = []
        self.sem = asyncio.Semaphore(size)
        self.opened = 0

    async def acquire(self):
        await self.sem.acquire()
        while self.idle:
            r, w = self.idle.pop()
            if not w.is_closing() and not r.at_eof():
                return r, w, True
            w.close()
        try:
            r, w = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except BaseException:
            self.sem.release()
            raise
        self.opened += 1
        return r, w, False

    def release(self, conn, reusable):
        r, w = conn
        if reusable and not w.is_closing():
            self.idle.append((r, w))
        else:
            w.close()
        self.sem.release()

    def close(self):
        for _, w in self.idle:
            w.close()
        self.idle = []


class Result:
    __slots__ = ("i", "t_sched", "wait_ms", "status", "ttft_ms", "e2e_ms",
                 "prompt_tokens", "output_tokens", "chunks", "server",
                 "region", "objective", "model", "group", "retry_after",
                 "error", "done")

    def __init__(self, spec):
        self.i = spec["i"]
        self.t_sched = spec["t"]
        self.wait_ms = None
        self.status = 0
        self.ttft_ms = None
        self.e2e_ms = None
        self.prompt_tokens = None
        self.output_tokens = None
        self.chunks = 0
        self.server = ""
        self.region = ""
        self.objective = spec["objective"]
        self.model = spec["model"]
        self.group = spec.get("group", "")
        self.retry_after = ""
        self.error = ""
        self.done = False


FIELDS = ["i", "t_sched", "wait_ms", "status", "ttft_ms", "e2e_ms",
          "prompt_tokens", "output_tokens", "chunks", "server", "region",
          "objective", "model", "group", "retry_after", "error"]


async def read_body(reader, headers, on_data):
    """Reads a response body (chunked, sized or to EOF), feeding on_data."""
    if "chunked" in headers.get("transfer-encoding", ""):
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return True
            data = await reader.readexactly(size + 2)
            on_data(data[:-2])
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            on_data(await reader.readexactly(n))
        return True
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return False
            on_data(data)


class SSE:
    """Finds the first content chunk and the usage chunk of an SSE stream
    without decoding every event."""

    def __init__(self, res, t_base, loop):
        self.res = res
        self.t_base = t_base
        self.loop = loop
        self.buf = b""
        self.got_first = False
        self.done = False
        self.body = []

    def feed(self, data):
        if self.res.status != 200:
            self.body.append(data)
            return
        buf = self.buf + data if self.buf else data
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            self.event(buf[start:end])
            start = end + 2
        self.buf = buf[start:]

    def event(self, ev):
        if not ev.startswith(b"data: "):
            return
        payload = ev[6:]
        if payload == b"[DONE]":
            self.done = True
            return
        if not self.got_first:
            try:
                doc = json.loads(payload)
                ch = doc.get("choices") or []
                c = ch[0] if ch else {}
                content = c.get("text") or (c.get("delta") or {}).get("content")
            except (ValueError, AttributeError, IndexError):
                content = None
            if content:
                self.got_first = True
                self.res.ttft_ms = (self.loop.time() - self.t_base) * 1e3
                self.res.chunks += 1
            return
        if b'"usage":{' in payload:
            try:
                u = json.loads(payload).get("usage") or {}
                self.res.prompt_tokens = u.get("prompt_tokens")
                self.res.output_tokens = u.get("completion_tokens")
            except ValueError:
                pass
            return
        self.res.chunks += 1


async def one_request(a, pool, path, host_header, spec, t0, loop):
    res = Result(spec)
    t_sched = t0 + spec["t"]
    body = request_body(a, spec)
    head = ["POST %s HTTP/1.1" % path, "Host: %s" % host_header,
            "Content-Type: application/json", "Accept: text/event-stream",
            "Content-Length: %d" % len(body)]
    if spec["objective"]:
        head.append("x-gateway-inference-objective: %s" % spec["objective"])
    if a.fairness_header and spec.get("user"):
        head.append("x-gateway-inference-fairness-id: %s" % spec["user"])
    for h in a.header:
        head.append(h)
    req = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    for attempt in (0, 1):
        conn = None
        got_bytes = False
        reusable = False
        reused = False
        try:
            r, w, reused = await pool.acquire()
            conn = (r, w)
            if res.wait_ms is None:
                res.wait_ms = (loop.time() - t_sched) * 1e3
            w.write(req)
            line = await r.readuntil(b"\r\n\r\n")
            got_bytes = True
            lines = line.decode("latin-1").split("\r\n")
            res.status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                if k:
                    headers[k.strip().lower()] = v.strip()
            res.server = headers.get("x-sim-server", "")
            res.region = headers.get("x-sim-region", "")
            res.retry_after = headers.get("retry-after", "")
            sse = SSE(res, t_sched, loop)
            complete = await read_body(r, headers, sse.feed)
            res.e2e_ms = (loop.time() - t_sched) * 1e3
            if res.status != 200:
                text = b"".join(sse.body)[:300].decode("utf-8", "replace")
                try:
                    err = json.loads(text).get("error") or {}
                    res.error = str(err.get("message", text))[:200]
                except (ValueError, AttributeError):
                    res.error = text[:200]
            elif not sse.done:
                res.error = "stream ended without [DONE]"
            res.done = res.status == 200 and sse.done
            reusable = complete and "close" not in headers.get("connection", "").lower()
            return res
        except asyncio.CancelledError:
            res.error = res.error or "timeout"
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as e:
            if conn is not None and reused and not got_bytes and attempt == 0:
                pool.release(conn, False)
                conn = None
                continue      # a keep-alive connection closed by the peer: retry once
            res.error = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
            if res.e2e_ms is None:
                res.e2e_ms = (loop.time() - t_sched) * 1e3
            return res
        finally:
            if conn is not None:
                pool.release(conn, reusable)
    return res


# ----------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------

def pct(values, q):
    """Percentile with linear interpolation between closest ranks."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values):
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "mean": None}
    r = lambda x: None if x is None else round(x, 3)
    return {"n": len(values), "p50": r(pct(values, 50)), "p90": r(pct(values, 90)),
            "p99": r(pct(values, 99)), "mean": r(sum(values) / len(values))}


def tpot_ms(r):
    if r.ttft_ms is None or r.e2e_ms is None or not r.output_tokens or r.output_tokens < 2:
        return None
    return (r.e2e_ms - r.ttft_ms) / (r.output_tokens - 1)


def meets_slo(a, r):
    if not r.done:
        return False
    if a.slo_ttft_ms is not None and (r.ttft_ms is None or r.ttft_ms > a.slo_ttft_ms):
        return False
    if a.slo_e2e_ms is not None and r.e2e_ms > a.slo_e2e_ms:
        return False
    if a.slo_tpot_ms is not None:
        t = tpot_ms(r)
        if t is not None and t > a.slo_tpot_ms:
            return False
    return True


def status_key(r):
    if r.status == 200 and not r.done:
        return "200_incomplete"       # the stream was cut before [DONE]
    if r.status:
        return str(r.status)
    return "timeout" if r.error == "timeout" else "error"


def summarize(a, results, wall_s, scheduled):
    ok = [r for r in results if r.done]
    status = collections.Counter(status_key(r) for r in results)
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    good = [r for r in results if meets_slo(a, r)]
    tp = [t for t in (tpot_ms(r) for r in ok) if t is not None]

    def group(key):
        g = collections.defaultdict(list)
        for r in results:
            g[key(r) or "(none)"].append(r)
        return {k: {"count": len(v),
                    "status": dict(collections.Counter(status_key(r) for r in v)),
                    "ttft_ms": dist([r.ttft_ms for r in v if r.done and r.ttft_ms is not None]),
                    "e2e_ms": dist([r.e2e_ms for r in v if r.done])}
                for k, v in sorted(g.items())}

    return {
        "url": a.url, "api": a.api, "workload": a.workload, "seed": a.seed,
        "rate": None if a.concurrency else a.rate, "concurrency": a.concurrency,
        "duration_s": a.duration, "max_requests": a.requests,
        "scheduled": scheduled, "sent": len(results), "completed": len(ok),
        "wall_s": round(wall_s, 3),
        "status": dict(sorted(status.items())),
        "ttft_ms": dist([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        "e2e_ms": dist([r.e2e_ms for r in ok]),
        "tpot_ms": dist(tp),
        "connection_wait_ms": dist([r.wait_ms for r in results if r.wait_ms is not None]),
        "output_tokens": out_tokens,
        "output_tokens_per_s": round(out_tokens / wall_s, 2) if wall_s > 0 else None,
        "requests_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else None,
        "slo": {"ttft_ms": a.slo_ttft_ms, "e2e_ms": a.slo_e2e_ms, "tpot_ms": a.slo_tpot_ms},
        "goodput": {"requests": len(good),
                    "per_s": round(len(good) / wall_s, 3) if wall_s > 0 else None,
                    "fraction": round(len(good) / len(results), 4) if results else None},
        "by_server": dict(sorted(collections.Counter(r.server or "(none)" for r in results).items())),
        "by_region": dict(sorted(collections.Counter(r.region or "(none)" for r in results).items())),
        "by_objective": group(lambda r: r.objective),
        "by_group": group(lambda r: r.group) if a.workload != "sharegpt" else {},
    }


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

async def run(a, schedule):
    u = urllib.parse.urlsplit(a.url)
    if u.scheme != "http":
        raise SystemExit("loadgen: only http:// URLs are supported")
    host, port = u.hostname, u.port or 80
    base = u.path.rstrip("/")
    if base.endswith("/v1/chat/completions") or base.endswith("/v1/completions"):
        path = base
    else:
        path = base + ("/v1/chat/completions" if a.api == "chat" else "/v1/completions")
    host_header = u.netloc
    loop = asyncio.get_running_loop()
    pool = Pool(host, port, a.connections)
    results = []
    tasks = []
    t0 = loop.time() + 0.05
    deadline = t0 + a.duration + a.timeout

    async def guarded(spec):
        res = Result(spec)
        try:
            res = await asyncio.wait_for(
                one_request(a, pool, path, host_header, spec, t0, loop), a.timeout)
        except asyncio.TimeoutError:
            res.error = "timeout"
            res.e2e_ms = a.timeout * 1e3
        except asyncio.CancelledError:
            res.error = "cancelled at the end of the run"
        results.append(res)

    if a.concurrency:
        # closed loop: each client sends its next request when the last one
        # is answered, until --duration has passed; a request's time is when
        # it is sent
        end = t0 + a.duration

        async def client():
            while loop.time() < end:
                spec = next(schedule, None)
                if spec is None:
                    return
                spec["t"] = max(0.0, loop.time() - t0)
                await guarded(spec)

        delay = t0 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks = [asyncio.ensure_future(client()) for _ in range(a.concurrency)]
        deadline = end + a.timeout
    else:
        for spec in schedule:
            delay = t0 + spec["t"] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(guarded(spec)))
    if tasks:
        left = max(0.0, deadline - loop.time())
        done, pending = await asyncio.wait(tasks, timeout=left + 1.0)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
    wall = loop.time() - t0
    pool.close()
    results.sort(key=lambda r: r.i)
    return results, wall


def build_parser():
    ap = argparse.ArgumentParser(
        description="Open-loop Poisson load generator (streamed OpenAI requests).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--url", default="http://127.0.0.1:8080",
                    help="gateway (or server) base URL; /v1/... is appended")
    ap.add_argument("--api", choices=("chat", "completions"), default="chat")
    ap.add_argument("--model", default="meta-llama/Llama-3.1-8B-Instruct")
    ap.add_argument("--rate", type=float, default=5.0, help="arrivals per second")
    ap.add_argument("--concurrency", type=int, default=0, metavar="N",
                    help="closed loop instead: N clients, each sending its next "
                         "request once the last is answered (as ab -c N), for "
                         "--duration seconds and at most --requests requests")
    ap.add_argument("--duration", type=float, default=30.0,
                    help="arrival window in seconds (bounded)")
    ap.add_argument("--requests", type=int, default=1000,
                    help="at most this many requests")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="per request, from its scheduled arrival")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--connections", type=int, default=2048,
                    help="keep-alive pool size (large: the loop stays open)")
    ap.add_argument("--workload", choices=("sharegpt", "shared-prefix", "lora"),
                    default="sharegpt")
    ap.add_argument("--in-median", type=float, default=160)
    ap.add_argument("--in-sigma", type=float, default=1.0)
    ap.add_argument("--out-median", type=float, default=128)
    ap.add_argument("--out-sigma", type=float, default=0.8)
    ap.add_argument("--prefixes", type=int, default=4, help="shared-prefix: system prompts")
    ap.add_argument("--prefix-tokens", type=int, default=2048)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--question-median", type=float, default=48)
    ap.add_argument("--adapters", default="", help="comma-separated LoRA adapter names")
    ap.add_argument("--adapter-dist", choices=("uniform", "zipf"), default="uniform")
    ap.add_argument("--adapters-any", action="store_true",
                    help="draw adapters for the other workloads too")
    ap.add_argument("--objective", action="append", default=[], metavar="NAME=FRACTION",
                    help="tag this fraction with x-gateway-inference-objective")
    ap.add_argument("--fairness-header", action="store_true",
                    help="send x-gateway-inference-fairness-id: user-N (shared-prefix)")
    ap.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                    help="extra request header")
    ap.add_argument("--no-ignore-eos", action="store_true",
                    help="let the server pick output lengths")
    ap.add_argument("--slo-ttft-ms", type=float)
    ap.add_argument("--slo-e2e-ms", type=float)
    ap.add_argument("--slo-tpot-ms", type=float)
    ap.add_argument("--csv", help="per-request CSV output file")
    ap.add_argument("--json", help="summary JSON output file")
    ap.add_argument("--dump-schedule", action="store_true",
                    help="print the schedule as JSON lines and exit")
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    if a.rate <= 0 or a.duration <= 0 or a.requests < 0 or a.timeout <= 0:
        raise SystemExit("loadgen: --rate, --duration and --timeout must be > 0")
    if a.concurrency < 0:
        raise SystemExit("loadgen: --concurrency must be >= 0")
    if a.concurrency and not a.dump_schedule:
        next(iter_schedule(a, True), None)      # its errors before the run
        schedule = iter_schedule(a, True)
    else:
        schedule = build_schedule(a)
    if a.dump_schedule:
        for spec in schedule:
            print(dumps({"i": spec["i"], "t": round(spec["t"], 6),
                         "objective": spec["objective"], "model": spec["model"],
                         "group": spec["group"], "max_tokens": spec["max_tokens"],
                         "body_bytes": len(request_body(a, spec)),
                         "body_hash": "%016x" % (hash_bytes(request_body(a, spec)))}))
        return 0
    results, wall = asyncio.run(run(a, schedule))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(FIELDS)
            for r in results:
                row = []
                for k in FIELDS:
                    v = getattr(r, k)
                    if isinstance(v, float):
                        v = round(v, 3)
                    row.append("" if v is None else v)
                w.writerow(row)
    summary = summarize(a, results, wall,
                        len(results) if a.concurrency else len(schedule))
    text = json.dumps(summary, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
