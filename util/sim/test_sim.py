"""Tests of util/sim: the vLLM fleet simulator and the load generator.

Run from the repository root:
    /usr/bin/python3 -m unittest util/sim/test_sim.py

One simulator process (a fleet of small servers on free loopback ports in
18000-18999) is shared by the tests; each test uses its own servers so that
faults and load do not leak between tests.  Timing assertions compare
quantities that differ by large factors (a 0.8 s prefill against a few ms),
never tight absolute thresholds, so a loaded 2-core machine passes too.
"""

import csv
import gzip
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "vllm_sim.py")
LOADGEN = os.path.join(HERE, "loadgen.py")
PY = sys.executable or "/usr/bin/python3"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

# Prometheus text format, one line at a time (comments, or a sample with
# optional labels and a float value)
SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? '
    r'([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$')
COMMENT_RE = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?$")


def port_is_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(n, rng):
    ports = []
    while len(ports) < n:
        p = rng.randrange(18000, 19000)
        if p not in ports and port_is_free(p):
            ports.append(p)
    return ports


class SimProcess:
    """A vllm_sim.py subprocess started from a fleet document."""

    def __init__(self, doc, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="vllm_sim_test_")
        self.path = os.path.join(self.dir, "fleet.json")
        with open(self.path, "w") as f:
            json.dump(doc, f)
        self.err = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [PY, SIM, "--fleet", self.path] + list(extra_args),
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.ready_line = self._wait_ready(15.0)

    def _wait_ready(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()))
        t.daemon = True
        t.start()
        t.join(timeout)
        line = box[0] if box else ""
        if not line.startswith("vllm_sim ready"):
            self.stop()
            self.err.seek(0)
            raise RuntimeError("simulator did not start: %r %s" % (line, self.err.read()))
        return line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def start_fleet(make_doc, tries=3):
    """Starts a fleet on free ports; retries if a port was taken meanwhile."""
    rng = random.Random()
    last = None
    for _ in range(tries):
        doc, ports = make_doc(rng)
        try:
            return SimProcess(doc), ports
        except RuntimeError as e:
            last = e
    raise last


# ----------------------------------------------------------------------------
# HTTP helpers
# ----------------------------------------------------------------------------

def call(port, method, path, body=None, headers=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, data, h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def stream(port, path, body, timeout=20):
    """Sends a streamed request; returns (status, headers, events, ttft,
    complete) where events are the SSE data payloads (bytes) and complete
    says whether the chunked body ended properly."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request("POST", path, json.dumps(body).encode(),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        events, ttft, complete = [], None, True
        while True:
            try:
                line = r.readline()
            except (http.client.IncompleteRead, ConnectionError):
                complete = False
                break
            if not line:
                break
            line = line.rstrip(b"\n")
            if not line.startswith(b"data: "):
                continue
            payload = line[6:]
            if ttft is None and payload != b"[DONE]":
                doc = json.loads(payload)
                ch = doc.get("choices") or [{}]
                if ch and (ch[0].get("text") or (ch[0].get("delta") or {}).get("content")):
                    ttft = time.monotonic() - t0
            events.append(payload)
        if complete and r.chunked and r.chunk_left is not None:
            complete = False
        return r.status, headers, events, ttft, complete
    finally:
        c.close()


def parse_metrics(text):
    """Parses a Prometheus page line by line; fails on any bad line.
    Returns ({family: type}, [(name, labels dict, value)])."""
    types, samples, helped = {}, [], set()
    for line in text.split("\n"):
        if not line:
            continue
        m = COMMENT_RE.match(line)
        if m:
            if m.group(1) == "TYPE":
                types[m.group(2)] = m.group(3).strip()
            else:
                helped.add(m.group(2))
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a Prometheus line: %r" % line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3).replace("Inf", "inf"))))
    return types, samples, helped


def metric(samples, name, **labels):
    vals = [v for n, l, v in samples if n == name
            and all(l.get(k) == str(x) for k, x in labels.items())]
    return vals


# ----------------------------------------------------------------------------
# The shared fleet
# ----------------------------------------------------------------------------

NAMES = ["basic", "prefix", "kv", "batch", "faults", "dp", "v0", "legacy", "loadgen",
         "far"]
FLEET = None
PORTS = {}
ADMIN = None


def make_doc(rng):
    ports = free_ports(len(NAMES) + 1, rng)
    by = dict(zip(NAMES, ports))
    admin = ports[-1]
    s = lambda name, **kw: dict({"listen": "127.0.0.1:%d" % by[name]}, **kw)
    doc = {
        "seed": 7,
        "admin": "127.0.0.1:%d" % admin,
        "defaults": {"kv_blocks": 4096, "max_num_seqs": 64, "time_scale": 0.2},
        "regions": {"europe-west3": {"network_delay_ms": 0},
                    "us-east1": {"network_delay_ms": 5},
                    "asia-east1": {"network_delay_ms": 400}},
        "servers": [
            s("basic", region="europe-west3", adapters=["food-review-1", "sql-lora"],
              max_lora=2, enable_prompt_tokens_details=True),
            # prefill is made slow (200 us/token) so a cached prefix shows
            s("prefix", region="europe-west3", prefill_us_per_token=200.0,
              time_scale=1.0, enable_prompt_tokens_details=True),
            # 48 blocks = 768 tokens of KV, decode slowed 10x
            s("kv", region="us-east1", kv_blocks=48, time_scale=10.0),
            s("batch", region="us-east1", max_num_seqs=2, time_scale=10.0),
            s("faults", region="europe-west3"),
            s("dp", region="us-east1", dp=2),
            s("v0", region="us-east1", metrics_variant="v0", adapters=["a"]),
            s("legacy", region="us-east1", metrics_variant="v1-legacy"),
            s("loadgen", region="europe-west3"),
            s("far", region="asia-east1"),
        ],
    }
    return doc, (by, admin)


def setUpModule():
    global FLEET, PORTS, ADMIN
    FLEET, (PORTS, ADMIN) = start_fleet(make_doc)


def tearDownModule():
    if FLEET is not None:
        FLEET.stop()


def admin(path):
    status, _, body = call(ADMIN, "POST", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def server_state(name):
    return json.loads(call(PORTS[name], "GET", "/sim/state")[2])


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------

class EndpointsTest(unittest.TestCase):

    def test_health_models_version(self):
        p = PORTS["basic"]
        status, h, body = call(p, "GET", "/health")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(h["x-sim-server"], "127.0.0.1:%d" % p)
        self.assertEqual(h["x-sim-region"], "europe-west3")
        status, _, body = call(p, "GET", "/v1/models")
        doc = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(doc["object"], "list")
        ids = [m["id"] for m in doc["data"]]
        self.assertEqual(ids, [MODEL, "food-review-1", "sql-lora"])
        self.assertEqual(doc["data"][1]["parent"], MODEL)
        self.assertEqual(json.loads(call(p, "GET", "/version")[2])["version"][:2], "0.")

    def test_completion_json(self):
        p = PORTS["basic"]
        status, h, body = call(p, "POST", "/v1/completions", {
            "model": MODEL, "prompt": "The capital of France is", "max_tokens": 7,
            "ignore_eos": True})
        self.assertEqual(status, 200, body)
        self.assertTrue(h["content-type"].startswith("application/json"))
        doc = json.loads(body)
        self.assertEqual(doc["object"], "text_completion")
        self.assertTrue(doc["id"].startswith("cmpl-"))
        self.assertEqual(doc["choices"][0]["finish_reason"], "length")
        self.assertEqual(doc["usage"]["completion_tokens"], 7)
        self.assertEqual(doc["usage"]["prompt_tokens"], 6)   # 24 bytes / 4
        self.assertEqual(doc["usage"]["total_tokens"], 13)
        self.assertTrue(doc["choices"][0]["text"])

    def test_chat_json_and_natural_stop(self):
        p = PORTS["basic"]
        status, _, body = call(p, "POST", "/v1/chat/completions", {
            "model": "food-review-1", "max_tokens": 5000,
            "messages": [{"role": "user", "content": "Is the pizza good?"}]})
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["object"], "chat.completion")
        self.assertEqual(doc["model"], "food-review-1")
        msg = doc["choices"][0]["message"]
        self.assertEqual(msg["role"], "assistant")
        # without ignore_eos the output stops by itself before 5000 tokens
        self.assertEqual(doc["choices"][0]["finish_reason"], "stop")
        self.assertLess(doc["usage"]["completion_tokens"], 5000)
        self.assertEqual(len(msg["content"].split()), doc["usage"]["completion_tokens"])

    def test_chat_stream(self):
        p = PORTS["basic"]
        status, h, events, ttft, complete = stream(p, "/v1/chat/completions", {
            "model": MODEL, "stream": True, "max_tokens": 6, "ignore_eos": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hello"}]})
        self.assertEqual(status, 200)
        self.assertTrue(complete)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        self.assertEqual(events[-1], b"[DONE]")
        docs = [json.loads(e) for e in events[:-1]]
        self.assertEqual(docs[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        content = [d for d in docs if d["choices"] and d["choices"][0]["delta"].get("content")]
        self.assertEqual(len(content), 6)
        self.assertEqual(content[-1]["choices"][0]["finish_reason"], "length")
        self.assertTrue(all(d["object"] == "chat.completion.chunk" for d in docs))
        self.assertEqual(docs[-1]["choices"], [])
        self.assertEqual(docs[-1]["usage"]["completion_tokens"], 6)
        self.assertIsNotNone(ttft)

    def test_completion_stream_without_usage(self):
        p = PORTS["basic"]
        status, _, events, _, complete = stream(p, "/v1/completions", {
            "model": "sql-lora", "prompt": [1, 2, 3, 4, 5], "stream": True,
            "max_tokens": 3, "ignore_eos": True})
        self.assertEqual(status, 200)
        self.assertTrue(complete)
        self.assertEqual(events[-1], b"[DONE]")
        docs = [json.loads(e) for e in events[:-1]]
        self.assertEqual(len(docs), 3)
        self.assertTrue(all("usage" not in d for d in docs))
        self.assertEqual(docs[-1]["choices"][0]["finish_reason"], "length")

    def test_bad_requests(self):
        p = PORTS["basic"]
        cases = [
            (b"{not json", 400, "BadRequestError"),
            ({"prompt": "x"}, 400, "BadRequestError"),
            ({"model": 5, "prompt": "x"}, 400, "BadRequestError"),
            ({"model": "nope", "prompt": "x"}, 404, "NotFoundError"),
            ({"model": MODEL, "prompt": "x", "max_tokens": 0}, 400, "BadRequestError"),
            ({"model": MODEL, "prompt": "x", "max_tokens": 10 ** 7}, 400, "BadRequestError"),
        ]
        for body, want, etype in cases:
            status, h, raw = call(p, "POST", "/v1/completions", body)
            self.assertEqual(status, want, (body, raw))
            err = json.loads(raw)["error"]
            self.assertEqual(set(err), {"message", "type", "param", "code"})
            self.assertEqual(err["type"], etype)
            self.assertEqual(err["code"], want)
            self.assertEqual(h["x-sim-server"], "127.0.0.1:%d" % p)
        status, _, raw = call(p, "POST", "/v1/chat/completions", {"model": MODEL})
        self.assertEqual(status, 400)
        self.assertEqual(call(p, "GET", "/v1/completions")[0], 405)
        self.assertEqual(call(p, "GET", "/nowhere")[0], 404)

    def test_keepalive_and_pipelining(self):
        p = PORTS["basic"]
        s = socket.create_connection(("127.0.0.1", p), timeout=10)
        try:
            one = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            s.sendall(one * 3)
            data = b""
            while data.count(b"HTTP/1.1 200") < 3:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 3)
        finally:
            s.close()


class MetricsTest(unittest.TestCase):

    def page(self, name, headers=None):
        status, h, body = call(PORTS[name], "GET", "/metrics", headers=headers)
        self.assertEqual(status, 200)
        if h.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        else:
            self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        return body.decode()

    def test_v1_page(self):
        call(PORTS["basic"], "POST", "/v1/completions",
             {"model": MODEL, "prompt": "warm up " * 40, "max_tokens": 3})
        text = self.page("basic")
        self.assertGreater(len(text), 20000)     # a realistic size, ~30-50 KB
        types, samples, helped = parse_metrics(text)
        for fam, typ in (("vllm:num_requests_running", "gauge"),
                         ("vllm:num_requests_waiting", "gauge"),
                         ("vllm:kv_cache_usage_perc", "gauge"),
                         ("vllm:prefix_cache_queries_total", "counter"),
                         ("vllm:prefix_cache_hits_total", "counter"),
                         ("vllm:lora_requests_info", "gauge"),
                         ("vllm:cache_config_info", "gauge"),
                         ("vllm:time_to_first_token_seconds", "histogram"),
                         ("vllm:e2e_request_latency_seconds", "histogram")):
            self.assertEqual(types.get(fam), typ, fam)
            self.assertIn(fam, helped)
        self.assertNotIn("vllm:gpu_cache_usage_perc", types)
        run = metric(samples, "vllm:num_requests_running", engine="0", model_name=MODEL)
        self.assertEqual(len(run), 1)
        kv = metric(samples, "vllm:kv_cache_usage_perc", engine="0")
        self.assertTrue(0.0 <= kv[0] <= 1.0)
        self.assertGreater(metric(samples, "vllm:prefix_cache_queries_total", engine="0")[0], 0)
        cfg = [l for n, l, v in samples if n == "vllm:cache_config_info"]
        self.assertEqual(cfg[0]["num_gpu_blocks"], "4096")
        self.assertEqual(cfg[0]["block_size"], "16")
        lora = [(l, v) for n, l, v in samples if n == "vllm:lora_requests_info"]
        self.assertTrue(lora)
        self.assertEqual(lora[0][0]["max_lora"], "2")
        self.assertEqual(set(lora[0][0]), {"max_lora", "running_lora_adapters",
                                           "waiting_lora_adapters"})
        self.assertGreater(max(v for _, v in lora), 1.6e9)   # a wall-clock time
        # histogram buckets are cumulative and end with +Inf == _count
        b = [(l["le"], v) for n, l, v in samples
             if n == "vllm:e2e_request_latency_seconds_bucket" and l["engine"] == "0"]
        self.assertEqual(b[-1][0], "+Inf")
        self.assertEqual([v for _, v in b], sorted(v for _, v in b))
        count = metric(samples, "vllm:e2e_request_latency_seconds_count", engine="0")
        self.assertEqual(b[-1][1], count[0])
        # gzip when asked, as prometheus_client does
        self.assertIn("vllm:kv_cache_usage_perc", self.page("basic", {"Accept-Encoding": "gzip"}))

    def test_name_filter(self):
        # what prometheus_client renders for ?name[]=...: those families only
        q = ("/metrics?name%5B%5D=vllm:num_requests_waiting"
             "&name%5B%5D=vllm:kv_cache_usage_perc&name%5B%5D=vllm:cache_config_info")
        status, h, body = call(PORTS["basic"], "GET", q)
        self.assertEqual(status, 200)
        types, samples, _ = parse_metrics(body.decode())
        self.assertEqual(set(types), {"vllm:num_requests_waiting",
                                      "vllm:kv_cache_usage_perc",
                                      "vllm:cache_config_info"})
        self.assertEqual({n for n, l, v in samples}, set(types))
        self.assertLess(len(body), 2000)

    def test_data_parallel_engines(self):
        for _ in range(4):
            call(PORTS["dp"], "POST", "/v1/completions",
                 {"model": MODEL, "prompt": "hello", "max_tokens": 2})
        _, samples, _ = parse_metrics(self.page("dp"))
        engines = {l["engine"] for n, l, v in samples if n == "vllm:kv_cache_usage_perc"}
        self.assertEqual(engines, {"0", "1"})
        cfg = {l["engine"] for n, l, v in samples if n == "vllm:cache_config_info"}
        self.assertEqual(cfg, {"0", "1"})

    def test_v0_and_legacy_names(self):
        types, samples, _ = parse_metrics(self.page("v0"))
        self.assertIn("vllm:gpu_cache_usage_perc", types)
        self.assertNotIn("vllm:kv_cache_usage_perc", types)
        self.assertIn("vllm:num_requests_swapped", types)
        self.assertIn("vllm:lora_requests_info", types)
        self.assertTrue(all("engine" not in l for n, l, v in samples if n.startswith("vllm:")
                            and n != "vllm:lora_requests_info"))
        types, _, _ = parse_metrics(self.page("legacy"))
        self.assertIn("vllm:gpu_cache_usage_perc", types)
        self.assertIn("vllm:kv_cache_usage_perc", types)


class PerformanceModelTest(unittest.TestCase):

    def test_prefix_sharing_lowers_ttft(self):
        p = PORTS["prefix"]
        system = "You are a careful assistant for a pizza review site. " * 300  # ~4000 tokens

        def ask(port, q):
            status, _, events, ttft, complete = stream(port, "/v1/chat/completions", {
                "model": MODEL, "stream": True, "max_tokens": 2, "ignore_eos": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": q}]})
            self.assertEqual(status, 200)
            usage = json.loads(events[-2])["usage"]
            return ttft, usage

        cold, u1 = ask(p, "Which pizza is best?")
        warm, u2 = ask(p, "Where is the oven?")
        self.assertEqual(u1["prompt_tokens_details"]["cached_tokens"], 0)
        self.assertGreater(u2["prompt_tokens_details"]["cached_tokens"], 3900)
        # ~4000 tokens x 200 us = 0.8 s of prefill, against a few ms
        self.assertGreater(cold, 0.6)
        self.assertLess(warm, cold / 3)
        # the cache belongs to that server: another one prefills everything
        status, _, body = call(PORTS["basic"], "POST", "/v1/chat/completions", {
            "model": MODEL, "max_tokens": 1, "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "Where is the oven?"}]})
        self.assertEqual(json.loads(body)["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        _, samples, _ = parse_metrics(call(p, "GET", "/metrics")[2].decode())
        self.assertGreater(metric(samples, "vllm:prefix_cache_hits_total", engine="0")[0], 3900)

    def _load_and_watch(self, name, n, prompt_tokens, max_tokens):
        """Sends n concurrent streamed requests, samples /metrics meanwhile;
        returns (statuses, max running, max waiting, max kv usage)."""
        p = PORTS[name]
        results = [None] * n

        def one(i):
            body = {"model": MODEL, "prompt": ("[%02d]" % i) + "y" * (prompt_tokens * 4 - 4),
                    "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
            results[i] = stream(p, "/v1/completions", body, timeout=60)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        peak = {"run": 0.0, "wait": 0.0, "kv": 0.0}
        while any(t.is_alive() for t in threads):
            _, samples, _ = parse_metrics(call(p, "GET", "/metrics")[2].decode())
            peak["run"] = max(peak["run"], metric(samples, "vllm:num_requests_running")[0])
            peak["wait"] = max(peak["wait"], metric(samples, "vllm:num_requests_waiting")[0])
            peak["kv"] = max(peak["kv"], metric(samples, "vllm:kv_cache_usage_perc")[0])
            time.sleep(0.03)
        for t in threads:
            t.join()
        _, samples, _ = parse_metrics(call(p, "GET", "/metrics")[2].decode())
        after = (metric(samples, "vllm:num_requests_running")[0],
                 metric(samples, "vllm:num_requests_waiting")[0],
                 metric(samples, "vllm:kv_cache_usage_perc")[0])
        return [r[0] for r in results], [r[4] for r in results], peak, after

    def test_kv_fills_and_requests_wait(self):
        # 48 blocks; each request needs 10 blocks for its prompt and grows
        # to 13: at most 4 run at once, the others wait for KV space.
        statuses, complete, peak, after = self._load_and_watch("kv", 8, 160, 40)
        self.assertEqual(statuses, [200] * 8)
        self.assertTrue(all(complete))
        self.assertGreater(peak["kv"], 0.6)
        self.assertGreaterEqual(peak["wait"], 1)
        self.assertLessEqual(peak["run"], 5)
        self.assertEqual(after, (0.0, 0.0, 0.0))     # all blocks given back

    def test_full_batch_makes_requests_wait(self):
        statuses, complete, peak, after = self._load_and_watch("batch", 5, 20, 30)
        self.assertEqual(statuses, [200] * 5)
        self.assertEqual(peak["run"], 2)             # max_num_seqs
        self.assertGreaterEqual(peak["wait"], 1)
        self.assertEqual(after, (0.0, 0.0, 0.0))

    def test_network_delay_of_a_region(self):
        t0 = time.monotonic()
        status, h, _ = call(PORTS["far"], "GET", "/health")
        self.assertGreater(time.monotonic() - t0, 0.35)
        self.assertEqual((status, h["x-sim-region"]), (200, "asia-east1"))
        _, _, _, ttft, _ = stream(PORTS["far"], "/v1/completions", {
            "model": MODEL, "prompt": "x", "max_tokens": 2, "stream": True})
        self.assertGreater(ttft, 0.35)

    def test_deterministic_output(self):
        body = {"model": MODEL, "prompt": "Tell me about ovens.", "max_tokens": 300}
        a = json.loads(call(PORTS["basic"], "POST", "/v1/completions", body)[2])
        b = json.loads(call(PORTS["faults"], "POST", "/v1/completions", body)[2])
        self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])
        self.assertEqual(a["usage"]["completion_tokens"], b["usage"]["completion_tokens"])
        # another process with the same seed says the same, another seed not
        texts = []
        for seed in (7, 8):
            def doc(rng, seed=seed):
                port = free_ports(1, rng)[0]
                return {"seed": seed, "servers": [{"listen": "127.0.0.1:%d" % port,
                                                   "time_scale": 0}]}, port
            sim, port = start_fleet(doc)
            try:
                texts.append(json.loads(call(port, "POST", "/v1/completions", body)[2])
                             ["choices"][0]["text"])
            finally:
                sim.stop()
        self.assertEqual(texts[0], a["choices"][0]["text"])
        self.assertNotEqual(texts[1], texts[0])


class FaultsTest(unittest.TestCase):

    def setUp(self):
        self.p = PORTS["faults"]
        self.target = "server=127.0.0.1:%d" % self.p

    def tearDown(self):
        admin("/up?" + self.target)
        admin("/clear?" + self.target)

    def test_health_and_errors(self):
        admin("/fault?%s&kind=health" % self.target)
        self.assertEqual(call(self.p, "GET", "/health")[0], 503)
        admin("/fault?%s&kind=error" % self.target)
        status, _, body = call(self.p, "POST", "/v1/completions",
                               {"model": MODEL, "prompt": "x", "max_tokens": 2})
        self.assertEqual(status, 500)
        self.assertEqual(json.loads(body)["error"]["code"], 500)
        admin("/clear?%s&kind=health" % self.target)
        self.assertEqual(call(self.p, "GET", "/health")[0], 200)
        admin("/clear?" + self.target)
        self.assertEqual(call(self.p, "POST", "/v1/completions",
                              {"model": MODEL, "prompt": "x", "max_tokens": 2})[0], 200)

    def test_slow_and_hang(self):
        t0 = time.monotonic()
        call(self.p, "GET", "/health")
        fast = time.monotonic() - t0
        admin("/fault?%s&kind=slow&delay_ms=700" % self.target)
        t0 = time.monotonic()
        self.assertEqual(call(self.p, "GET", "/health")[0], 200)
        self.assertGreater(time.monotonic() - t0, 0.65)
        self.assertLess(fast, 0.65)
        admin("/clear?" + self.target)
        admin("/fault?%s&kind=hang&scope=inference" % self.target)
        self.assertEqual(call(self.p, "GET", "/health")[0], 200)   # only inference hangs
        with self.assertRaises(socket.timeout):
            call(self.p, "POST", "/v1/completions",
                 {"model": MODEL, "prompt": "x", "max_tokens": 2}, timeout=0.5)

    def test_die_mid_stream(self):
        # through the server's own control endpoint this time
        self.assertEqual(call(self.p, "POST", "/sim/fault?kind=die&after=3")[0], 200)
        status, _, events, _, complete = stream(self.p, "/v1/completions", {
            "model": MODEL, "prompt": "x", "max_tokens": 20, "ignore_eos": True,
            "stream": True})
        self.assertEqual(status, 200)
        self.assertFalse(complete)
        self.assertNotIn(b"[DONE]", events)
        self.assertEqual(len(events), 3)

    def test_garbage_metrics(self):
        for mode, check in (("binary", lambda b: b"vllm:" not in b),
                            ("html", lambda b: b.startswith(b"<html>")),
                            ("truncated", lambda b: b"vllm:" in b and len(b) < 40000)):
            admin("/fault?%s&kind=garbage_metrics&mode=%s" % (self.target, mode))
            status, _, body = call(self.p, "GET", "/metrics")
            self.assertEqual(status, 200)
            self.assertTrue(check(body), mode)
        admin("/clear?" + self.target)
        parse_metrics(call(self.p, "GET", "/metrics")[2].decode())

    def test_down_and_up(self):
        call(self.p, "POST", "/v1/completions", {"model": MODEL, "prompt": "z" * 200,
                                                 "max_tokens": 2})
        admin("/down?" + self.target)
        with self.assertRaises(ConnectionRefusedError):
            call(self.p, "GET", "/health", timeout=2)
        st = admin("/up?" + self.target)
        self.assertTrue(st["servers"][0]["listening"])
        self.assertEqual(call(self.p, "GET", "/health")[0], 200)
        # a fresh process: counters restart
        self.assertEqual(server_state("faults")["engines"][0]["prefix_queries"], 0)

    def test_admin_state_and_region_selection(self):
        doc = json.loads(call(ADMIN, "GET", "/state")[2])
        self.assertEqual(len(doc["servers"]), len(NAMES))
        admin("/fault?region=us-east1&kind=health")
        try:
            self.assertEqual(call(PORTS["dp"], "GET", "/health")[0], 503)
            self.assertEqual(call(PORTS["basic"], "GET", "/health")[0], 200)
        finally:
            admin("/clear?region=us-east1")
        self.assertEqual(call(PORTS["dp"], "GET", "/health")[0], 200)
        self.assertEqual(call(ADMIN, "POST", "/fault?server=127.0.0.1:1&kind=health")[0], 404)
        self.assertEqual(call(ADMIN, "POST", "/fault?%s&kind=bogus" % self.target)[0], 400)


class LoadgenTest(unittest.TestCase):

    def run_loadgen(self, *args):
        out = subprocess.run([PY, LOADGEN] + list(args), capture_output=True,
                             text=True, timeout=40)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_schedule_is_deterministic(self):
        args = ["--rate", "50", "--duration", "2", "--workload", "shared-prefix",
                "--objective", "critical=0.25", "--dump-schedule"]
        a = self.run_loadgen("--seed", "3", *args)
        b = self.run_loadgen("--seed", "3", *args)
        c = self.run_loadgen("--seed", "4", *args)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        rows = [json.loads(l) for l in a.splitlines()]
        self.assertGreater(len(rows), 50)
        self.assertEqual(len({r["group"] for r in rows}), 4)
        self.assertTrue(any(r["objective"] == "critical" for r in rows))
        self.assertTrue(all(r["t"] < 2 for r in rows))

    def test_run_against_a_server(self):
        tmp = tempfile.mkdtemp(prefix="loadgen_test_")
        csv_path, json_path = os.path.join(tmp, "r.csv"), os.path.join(tmp, "s.json")
        p = PORTS["loadgen"]
        admin("/fault?server=127.0.0.1:%d&kind=error&status=503&rate=0.3" % p)
        try:
            self.run_loadgen("--url", "http://127.0.0.1:%d" % p, "--rate", "40",
                             "--duration", "1.5", "--requests", "40", "--seed", "1",
                             "--out-median", "8", "--in-median", "40",
                             "--objective", "critical=0.5", "--slo-ttft-ms", "5000",
                             "--csv", csv_path, "--json", json_path)
        finally:
            admin("/clear?server=127.0.0.1:%d" % p)
        with open(json_path) as f:
            s = json.load(f)
        with open(csv_path) as f:
            rows = f.read().splitlines()
        self.assertEqual(len(rows) - 1, s["sent"])
        self.assertLessEqual(s["sent"], 40)
        self.assertEqual(s["sent"], s["scheduled"])
        self.assertEqual(sum(s["status"].values()), s["sent"])
        self.assertGreater(s["status"].get("200", 0), 0)
        self.assertGreater(s["status"].get("503", 0), 0)
        self.assertEqual(s["completed"], s["status"]["200"])
        self.assertEqual(s["by_server"].get("127.0.0.1:%d" % p), s["sent"])
        self.assertEqual(s["by_region"].get("europe-west3"), s["sent"])
        self.assertEqual(sum(v["count"] for v in s["by_objective"].values()), s["sent"])
        self.assertIn("critical", s["by_objective"])
        for k in ("p50", "p90", "p99"):
            self.assertIsNotNone(s["ttft_ms"][k])
            self.assertIsNotNone(s["e2e_ms"][k])
        self.assertGreater(s["output_tokens"], 0)
        self.assertLessEqual(s["goodput"]["requests"], s["completed"])
        self.assertIn("ttft_ms", rows[0])

    def test_closed_loop(self):
        tmp = tempfile.mkdtemp(prefix="loadgen_test_")
        csv_path, json_path = os.path.join(tmp, "r.csv"), os.path.join(tmp, "s.json")
        p = PORTS["loadgen"]
        t = time.time()
        self.run_loadgen("--url", "http://127.0.0.1:%d" % p, "--concurrency", "3",
                         "--duration", "1", "--requests", "100000", "--seed", "2",
                         "--out-median", "4", "--out-sigma", "0", "--in-median", "16",
                         "--csv", csv_path, "--json", json_path)
        self.assertLess(time.time() - t, 10)
        with open(json_path) as f:
            s = json.load(f)
        with open(csv_path) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(s["concurrency"], 3)
        self.assertEqual(s["scheduled"], s["sent"])
        self.assertEqual(len(rows), s["sent"])
        self.assertEqual(s["status"], {"200": s["sent"]})
        # far more than an open loop at the default rate, never past the
        # duration, and never more than 3 requests at once
        self.assertGreater(s["sent"], 20)
        self.assertTrue(all(float(r["t_sched"]) <= 1.0 for r in rows))   # rounded
        # (the CSV's times are rounded to the millisecond)
        edges = sorted([(float(r["t_sched"]), 1) for r in rows]
                       + [(float(r["t_sched"]) + float(r["e2e_ms"]) / 1e3 - 0.002, -1)
                          for r in rows])
        now = most = 0
        for _, d in edges:
            now += d
            most = max(most, now)
        self.assertLessEqual(most, 3)


if __name__ == "__main__":
    unittest.main()
