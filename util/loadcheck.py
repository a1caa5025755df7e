#!/usr/bin/python3
"""loadcheck.py - pass/fail rules over one util/sim/loadgen.py run.

Used by util/faults.sh and util/soak.sh.  Reads the run's CSV and JSON, the
time the load generator started (--t0, seconds since the epoch, as written
by "loadcheck.py run") and the times of the faults injected during the run
(--event NAME=EPOCH, repeatable), then checks:

  accounting    every scheduled request has one row and one outcome:
                scheduled == sent == rows == sum of the status counts
  --allow S,..  outcomes allowed anywhere (loadgen's keys: 200,
                200_incomplete, 429, 502, 503, 504, timeout, error, ...)
  --window A:B:S,..   outcomes allowed for requests scheduled in [A, B)
  --inflight E:S,..[:SERVER]  outcomes allowed for requests in flight at
                event E (scheduled before it, answered after it), and only
                if answered by SERVER (a prefix: "127.0.5." is a region)
  --region A:B:REGION  the requests scheduled in [A, B) that got a 200
                were all answered in REGION
  --served-by A:B:SERVER  at least one request scheduled in [A, B) was
                answered by SERVER (prefix)
  --allow-closed-idle N  at most N requests that saw their connection
                closed before any byte of an answer ("IncompleteReadError: 0
                bytes read"): kept-alive connections closed by a worker that
                exits as the request arrived (nginx never read it; pair with
                --access-log, which shows that nothing it read was lost)
  --max K:N     at most N outcomes K (K may be "not200": all but 200)
  --min K:N     at least N outcomes K
  --access-log FILE  the gateway's access log (util/fleet-lib.sh format):
                the statuses nginx logged for /v1/ requests during the run
                must equal what the client saw (200 and 200_incomplete
                together); --access-log-le makes that "at most" (requests of
                a killed worker are never logged)
  --access-path PREFIX  the requests of the run in the access log: those
                whose path starts with PREFIX (default /v1/; a scenario on
                another location names its own, so that a request of the
                scenario before it, ending as this one starts, is not
                counted)

Times A, B are seconds from the run's start, or EVENT[+-SECONDS], or "end".
Outcomes 429 and 503 must carry "Retry-After: 1" (the module's documented
refusals).  Prints one line, "ok: ..." or "FAIL: ...", exit status 0 or 1.

"loadcheck.py run T0FILE -- LOADGEN-ARGS" runs util/sim/loadgen.py in this
process after writing its start time (the schedule's time 0) to T0FILE.
"""

import collections
import csv
import json
import os
import re
import sys
import time


def parse_time(text, events, end):
    text = text.strip()
    if text == "end":
        return end
    m = re.match(r"^([A-Za-z_]\w*)?\s*([+-]\s*[\d.]+)?$", text)
    if not m or (m.group(1) is None and m.group(2) is None):
        return float(text)
    base = 0.0
    if m.group(1):
        if m.group(1) not in events:
            raise SystemExit("loadcheck: unknown event %r" % m.group(1))
        base = events[m.group(1)]
    off = float(m.group(2).replace(" ", "")) if m.group(2) else 0.0
    return base + off


def key_of(row):
    st = row["status"]
    err = row["error"]
    if st == "200" and err:
        return "200_incomplete"       # the stream was cut before [DONE]
    if st and st != "0":
        return st
    return "timeout" if err == "timeout" else "error"


def main(argv):
    if argv and argv[0] == "run":
        # loadcheck.py run T0FILE -- loadgen args
        t0file = argv[1]
        args = argv[3:] if len(argv) > 2 and argv[2] == "--" else argv[2:]
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, os.path.join(here, "sim"))
        import loadgen  # noqa: E402
        # loadgen's time 0 is 50 ms after its event loop starts; the
        # schedule of a few thousand requests is built in milliseconds
        with open(t0file, "w") as f:
            f.write("%.6f\n" % (time.time() + 0.05))
        return loadgen.main(args)

    opts = collections.defaultdict(list)
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            raise SystemExit("loadcheck: unexpected %r" % a)
        if a in ("--access-log-le",):
            opts[a].append(True)
            i += 1
            continue
        opts[a].append(argv[i + 1])
        i += 2

    rows = list(csv.DictReader(open(opts["--csv"][0])))
    summary = json.load(open(opts["--json"][0]))
    t0 = float(open(opts["--t0"][0]).read())
    events = {}
    for e in opts["--event"]:
        name, _, when = e.partition("=")
        events[name] = float(when) - t0
    end = max([float(r["t_sched"]) for r in rows] + [0.0]) + 1e-6

    problems = []
    outcome = collections.Counter(key_of(r) for r in rows)

    # accounting: nothing sent without an outcome, nothing counted twice
    counted = sum(summary["status"].values())
    if not (summary["scheduled"] == summary["sent"] == len(rows) == counted):
        problems.append("unaccounted: scheduled %d sent %d rows %d counted %d"
                        % (summary["scheduled"], summary["sent"], len(rows), counted))
    if dict(outcome) != summary["status"]:
        problems.append("CSV and JSON disagree: %s vs %s" % (dict(outcome), summary["status"]))

    allow = set()
    for a in opts["--allow"]:
        allow |= set(a.split(","))
    windows = []
    for w in opts["--window"]:
        parts = w.split(":")
        a, b, s = parts[0], parts[1], parts[2]
        windows.append((parse_time(a, events, end), parse_time(b, events, end), set(s.split(","))))
    inflight = []
    for w in opts["--inflight"]:
        parts = w.split(":")
        ev = parse_time(parts[0], events, end)
        srv = parts[2] if len(parts) > 2 else ""
        if len(parts) > 3:
            srv = parts[2] + ":" + parts[3]
        inflight.append((ev, set(parts[1].split(",")), srv))

    bad = collections.Counter()
    examples = []
    closed_idle = int(opts["--allow-closed-idle"][0]) if opts["--allow-closed-idle"] else 0
    for r in rows:
        k = key_of(r)
        if k == "error" and closed_idle > 0 \
                and r["error"].startswith("IncompleteReadError: 0 bytes read"):
            closed_idle -= 1
            continue
        ts = float(r["t_sched"])
        e2e = float(r["e2e_ms"]) / 1e3 if r["e2e_ms"] else 0.0
        ok = k in allow
        for a, b, s in windows:
            if a <= ts < b and k in s:
                ok = True
        for ev, s, srv in inflight:
            if ts <= ev + 0.05 and ts + e2e >= ev - 0.05 and k in s \
                    and (not srv or r["server"].startswith(srv) or k in ("error", "timeout")):
                ok = True
        if k in ("429", "503") and r["retry_after"] != "1":
            problems.append("request %s: %s without Retry-After: 1" % (r["i"], k))
        if not ok:
            bad[k] += 1
            if len(examples) < 3:
                examples.append("#%s at %.2fs: %s %s %s" % (r["i"], ts, k, r["server"], r["error"][:60]))
    if bad:
        problems.append("outcomes not allowed: %s (%s)" % (dict(bad), "; ".join(examples)))

    for w in opts["--region"]:
        a, b, region = w.split(":")
        a, b = parse_time(a, events, end), parse_time(b, events, end)
        wrong = [r for r in rows if a <= float(r["t_sched"]) < b and r["status"] == "200"
                 and r["region"] != region]
        if wrong:
            problems.append("%d requests in [%.1f, %.1f) answered outside %s (first at %.2fs by %s)"
                            % (len(wrong), a, b, region, float(wrong[0]["t_sched"]), wrong[0]["server"]))
    for w in opts["--served-by"]:
        parts = w.split(":")
        a, b = parse_time(parts[0], events, end), parse_time(parts[1], events, end)
        srv = ":".join(parts[2:])
        if not any(a <= float(r["t_sched"]) < b and r["server"].startswith(srv) for r in rows):
            problems.append("nothing scheduled in [%.1f, %.1f) was answered by %s" % (a, b, srv))

    def count(k):
        if k == "not200":
            return sum(v for kk, v in outcome.items() if kk != "200")
        return outcome.get(k, 0)

    for m in opts["--max"]:
        k, n = m.rsplit(":", 1)
        if count(k) > int(n):
            problems.append("%d %s, at most %s allowed" % (count(k), k, n))
    for m in opts["--min"]:
        k, n = m.rsplit(":", 1)
        if count(k) < int(n):
            problems.append("%d %s, at least %s expected" % (count(k), k, n))

    if opts["--access-log"]:
        # the requests that started while the run sent (msec is their end)
        t_first = t0 - 0.2
        t_last = t0 + max([float(r["t_sched"]) for r in rows] + [0.0]) + 0.2
        prefix = (opts["--access-path"] or ["/v1/"])[-1]
        logged = collections.Counter()
        for line in open(opts["--access-log"][0], errors="replace"):
            f = line.split()
            if len(f) < 4 or not f[2].startswith(prefix):
                continue
            if t_first <= float(f[0]) - float(f[3]) <= t_last:
                logged[f[1]] += 1
        seen = collections.Counter()
        for r in rows:
            k = key_of(r)
            if k == "200_incomplete":
                k = "200"
            if k in ("error", "timeout"):
                continue
            seen[k] += 1
        le = bool(opts["--access-log-le"])
        for k in set(logged) | set(seen):
            # 499: the client gave up (timeouts); the client counts those
            if k == "499":
                continue
            if (logged[k] > seen[k]) if le else (logged[k] != seen[k]):
                problems.append("access log has %d %s, the client saw %d" % (logged[k], k, seen[k]))

    text = " ".join("%s=%d" % (k, v) for k, v in sorted(outcome.items()))
    answered = sum(v for k, v in outcome.items() if k not in ("error", "timeout"))
    head = "sent %d, answered %d (%s)" % (summary["sent"], answered, text)
    if problems:
        print("FAIL: %s; %s" % (head, "; ".join(problems)))
        return 1
    print("ok: %s" % head)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
