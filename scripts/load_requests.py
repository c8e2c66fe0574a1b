#!/usr/bin/env python3
"""Helper for scripts/load: admin set-up, pre-signed request generation, scraping and analysis.

Standard library only. Subcommands:

  free-port                       print a free TCP port on 127.0.0.1
  setup      --base --tenants --keys --out [--plan] [--per-minute] [--prefix]
                                  create tenants and keys through the admin API (token in
                                  $KYCD_ADMIN_TOKEN); write keys + the plan's rate budget as JSON
  generate   --keys --count --threads --out-dir --host [--mix] [--ts-shift] [--seed]
                                  pre-sign COUNT unique requests (each with its own X-API-NONCE),
                                  split into one slice per wrk thread, for scripts/load.lua
  scrape     --base --out         GET /metrics (operator token) into a file
  usage      --base --keys --out  GET /admin/v1/tenants/{id}/usage for each tenant in a keys file
  analyze    ...                  compare wrk's counts, the server's metrics, usage and the rate
                                  limit's expected bounds; print the summary; exit 1 on failure

Records (one file per wrk thread, fixed width, 87 bytes a line):
  nonce (22 chars: run id 8 hex + kind p|u|v + key index 3 digits + sequence 10 digits)
  signature (64 lowercase hex) and "\\n".
The nonce doubles as the X-Request-Id, which kycd echoes back, so the Lua script can attribute
every response to its key and kind without any shared state.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import random
import re
import socket
import sys
import time
import urllib.error
import urllib.request

MRZ_BODY = json.dumps(
    {
        "mrz": [
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ]
    },
    separators=(",", ":"),
)

# kind -> (method, path, body, label)
KINDS = {
    "p": ("GET", "/v1/ping", "", "GET /v1/ping"),
    "u": ("GET", "/v1/usage", "", "GET /v1/usage"),
    "v": ("POST", "/v1/document/validate", MRZ_BODY, "POST /v1/document/validate"),
}
ROUTE_OF_KIND = {k: (v[0], v[1]) for k, v in KINDS.items()}
PRE_LIMITER = ("401", "413", "503")
NONCE_LEN = 22
SIG_LEN = 64
RECORD_LEN = NONCE_LEN + SIG_LEN + 1


def token():
    t = os.environ.get("KYCD_ADMIN_TOKEN", "")
    if len(t) < 16:
        sys.exit("KYCD_ADMIN_TOKEN must be set (16+ characters)")
    return t


def http(method, url, body=None, tok=None, timeout=30):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if tok:
        headers["Authorization"] = "Bearer " + tok
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def admin(method, base, path, body=None, expect=(200, 201)):
    status, raw = http(method, base + path, body, token())
    if status not in expect:
        sys.exit(f"{method} {path} -> {status}: {raw[:500]!r}")
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------------------------------------
def cmd_free_port(_a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_setup(a):
    plan = admin("GET", a.base, f"/admin/v1/plans/{a.plan}")
    if a.per_minute:
        plan["rate_limit"]["per_minute"] = a.per_minute
        plan = admin("PUT", a.base, f"/admin/v1/plans/{a.plan}", plan) or plan
        plan = admin("GET", a.base, f"/admin/v1/plans/{a.plan}")
    rl = plan["rate_limit"]
    if rl.get("endpoints"):
        print(f"warning: plan {a.plan} has per-endpoint budgets {rl['endpoints']}; "
              "the expected counts assume the shared budget only", file=sys.stderr)
    tenants = []
    for t in range(a.tenants):
        ten = admin("POST", a.base, "/admin/v1/tenants",
                    {"name": f"{a.prefix} tenant {t + 1}", "plan": a.plan})
        tenants.append(ten["id"])
    keys = []
    for i in range(a.keys):
        tid = tenants[i % a.tenants]
        k = admin("POST", a.base, f"/admin/v1/tenants/{tid}/keys",
                  {"label": f"{a.prefix}-{i}", "permissions": ["results:read", "usage:read"]})
        keys.append({"index": i, "id": k["id"], "secret": k["secret"], "tenant": tid})
    # The effective plan of every tenant must carry the same budget (no overrides).
    for tid in tenants:
        eff = admin("GET", a.base, f"/admin/v1/tenants/{tid}/plan")["effective"]["rate_limit"]
        if (eff["per_minute"], eff["per_day"]) != (rl["per_minute"], rl["per_day"]):
            sys.exit(f"tenant {tid}: effective rate limit {eff} differs from plan {rl}")
    out = {
        "plan": a.plan,
        "per_minute": rl["per_minute"],
        "per_day": rl["per_day"],
        "endpoints": rl.get("endpoints", {}),
        "tenants": tenants,
        "keys": keys,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    os.chmod(a.out, 0o600)
    print(f"{len(tenants)} tenants, {len(keys)} keys on plan {a.plan}: "
          f"{rl['per_minute']}/min (burst {rl['per_minute']}), {rl['per_day']}/day per key")


# ---------------------------------------------------------------------------------------------
def cmd_generate(a):
    started = time.time()
    cfg = json.load(open(a.keys))
    keys = cfg["keys"]
    if len(keys) > 999:
        sys.exit("at most 999 keys")
    weights = [int(x) for x in a.mix.split(":")]
    if len(weights) != 3 or sum(weights) <= 0:
        sys.exit("--mix is ping:usage:validate, e.g. 80:10:10")
    kinds = [k for k, w in zip("puv", weights) if w > 0]
    kw = [w for w in weights if w > 0]
    ts = str(int(time.time()) + a.ts_shift)
    run_id = os.urandom(4).hex()
    # Per (key, kind): an HMAC already fed with "ts\nMETHOD\npath\nbodyhash\n"; the nonce is the
    # fifth line.
    base = {}
    for k in keys:
        for kind in kinds:
            method, path, body, _ = KINDS[kind]
            prefix = "\n".join([ts, method, path, hashlib.sha256(body.encode()).hexdigest()]) + "\n"
            base[(k["index"], kind)] = hmac.new(k["secret"].encode(), prefix.encode(), hashlib.sha256)
    rng = random.Random(a.seed)
    per_thread = -(-a.count // a.threads)
    nk = len(keys)
    seq = 0
    os.makedirs(a.out_dir, exist_ok=True)
    for t in range(a.threads):
        lines = []
        kind_seq = rng.choices(kinds, weights=kw, k=per_thread)
        # Round-robin over keys, each thread starting at a different key so both threads spread
        # their demand evenly.
        offset = (t * nk) // a.threads
        for i in range(per_thread):
            ki = (i + offset) % nk
            kind = kind_seq[i]
            nonce = f"{run_id}{kind}{ki:03d}{seq:010d}"
            seq += 1
            h = base[(ki, kind)].copy()
            h.update(nonce.encode())
            lines.append(nonce + h.hexdigest() + "\n")
        with open(os.path.join(a.out_dir, f"req.{t + 1}"), "w") as f:
            f.write("".join(lines))
    # What the Lua script needs besides the records: key ids, timestamp, host, bodies.
    with open(os.path.join(a.out_dir, "meta"), "w") as f:
        f.write(f"ts {ts}\n")
        f.write(f"host {a.host}\n")
        f.write(f"count {per_thread}\n")
        f.write(f"get_content_length_zero {1 if a.get_content_length_zero else 0}\n")
        for k in keys:
            f.write(f"key {k['index']} {k['id']}\n")
        for kind in kinds:
            method, path, body, _ = KINDS[kind]
            f.write(f"kind {kind} {method} {path} {body}\n")
    took = time.time() - started
    print(f"generated {per_thread * a.threads} signed requests ({a.threads} x {per_thread}), "
          f"run id {run_id}, X-API-TIMESTAMP {ts} (now{a.ts_shift:+d} s), in {took:.1f} s")


# ---------------------------------------------------------------------------------------------
def cmd_scrape(a):
    status, raw = http("GET", a.base + "/metrics", tok=token())
    if status != 200:
        sys.exit(f"GET /metrics -> {status}")
    open(a.out, "wb").write(raw)


def cmd_usage(a):
    cfg = json.load(open(a.keys))
    out = {}
    for tid in cfg["tenants"]:
        u = admin("GET", a.base, f"/admin/v1/tenants/{tid}/usage")
        out[tid] = {m["module"]: m["used"] for m in u["modules"]}
    json.dump(out, open(a.out, "w"), indent=1)


# ---------------------------------------------------------------------------------------------
METRIC_RE = re.compile(r'^kycd_http_requests_total\{([^}]*)\}\s+([0-9.eE+]+)')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(path):
    """{(method, route, status): count} from kycd_http_requests_total."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    for line in open(path):
        m = METRIC_RE.match(line)
        if not m:
            continue
        labels = dict(LABEL_RE.findall(m.group(1)))
        key = (labels.get("method"), labels.get("route"), labels.get("status"))
        out[key] = out.get(key, 0) + int(float(m.group(2)))
    return out


def parse_counter(path, name):
    out = {}
    if not path or not os.path.exists(path):
        return out
    rx = re.compile(r'^' + name + r'\{([^}]*)\}\s+([0-9.eE+]+)')
    for line in open(path):
        m = rx.match(line)
        if m:
            out[tuple(sorted(LABEL_RE.findall(m.group(1))))] = float(m.group(2))
    return out


def parse_wrk(path):
    """The LOAD lines printed by load.lua's done(), plus wrk's own text."""
    res = {"counts": {}, "codes": {}, "summary": {}, "latency": {}, "errors": {},
           "threads": [], "text": ""}
    text = open(path).read()
    res["text"] = text
    for line in text.splitlines():
        if not line.startswith("LOAD "):
            continue
        parts = line.split()
        kv = dict(p.split("=", 1) for p in parts[2:])
        what = parts[1]
        if what == "count":
            res["counts"][(kv["key"], kv["kind"], kv["status"], kv.get("limiter", "?"))] = \
                int(kv["n"])
        elif what == "code":
            res["codes"][(kv["status"], kv["code"])] = int(kv["n"])
        elif what == "summary":
            res["summary"] = {k: float(v) for k, v in kv.items()}
        elif what == "latency":
            res["latency"] = {k: float(v) for k, v in kv.items()}
        elif what == "errors":
            res["errors"] = {k: int(v) for k, v in kv.items()}
        elif what == "thread":
            res["threads"].append({k: int(v) for k, v in kv.items()})
    return res


def fmt_ms(us):
    return f"{us / 1000:.2f} ms"


def cmd_analyze(a):
    cfg = json.load(open(a.keys))
    w = parse_wrk(a.wrk)
    before = parse_metrics(a.metrics_before)
    after = parse_metrics(a.metrics_after)
    failures, warnings, lines = [], [], []
    say = lines.append

    if not w["summary"]:
        failures.append("wrk printed no LOAD summary (did load.lua's done() run?)")
        print("\n".join(lines + ["FAIL: " + f for f in failures]))
        sys.exit(1)

    dur = w["summary"]["duration_us"] / 1e6
    wrk_total = int(w["summary"]["requests"])
    lua_total = sum(w["counts"].values())
    issued = sum(t["issued"] for t in w["threads"])
    overflow = sum(t["overflow"] for t in w["threads"])
    slice_len = max((t["slice"] for t in w["threads"]), default=0)
    er = w["errors"]

    # --- status classes, client side ---------------------------------------------------------
    by_status = {}
    for (_k, _kind, st, _h), n in w["counts"].items():
        by_status[st] = by_status.get(st, 0) + n
    c2 = sum(n for s, n in by_status.items() if s.isdigit() and 200 <= int(s) < 300)
    c4 = sum(n for s, n in by_status.items() if s.isdigit() and 400 <= int(s) < 500)
    c5 = sum(n for s, n in by_status.items() if s.isdigit() and int(s) >= 500)
    overloaded = w["codes"].get(("503", "overloaded"), 0)
    say(f"wrk: {wrk_total} responses in {dur:.2f} s = {wrk_total / dur:.0f} req/s "
        f"(load.lua counted {lua_total}; requests issued {issued}, "
        f"unused pre-signed {max(0, a.generated - issued)} of {a.generated})")
    say(f"status (client): " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items()))
        + f"  -> 2xx {c2}, 4xx {c4}, 5xx {c5} (503 overloaded: {overloaded})")
    for (st, code), n in sorted(w["codes"].items()):
        say(f"  error code {st} {code}: {n}")
    say(f"socket errors: connect {er.get('connect', 0)}, read {er.get('read', 0)}, "
        f"write {er.get('write', 0)}, timeout (>{a.timeout}) {er.get('timeout', 0)}")
    lat = w["latency"]
    say(f"latency (wrk, corrected): p50 {fmt_ms(lat['p50'])}, p90 {fmt_ms(lat['p90'])}, "
        f"p99 {fmt_ms(lat['p99'])}, p99.9 {fmt_ms(lat['p999'])}, max {fmt_ms(lat['max'])}, "
        f"mean {fmt_ms(lat['mean'])}")

    if lua_total != wrk_total:
        failures.append(f"load.lua counted {lua_total} responses, wrk {wrk_total}")
    if overflow:
        failures.append(f"ran out of pre-signed requests ({overflow} overflow requests sent to "
                        "/healthz instead): generate more (SAFETY)")
    if c5:
        failures.append(f"{c5} responses >= 500 ({overloaded} of them 503 overloaded)")
    other = {s: n for s, n in by_status.items() if s not in ("200", "429")}
    if other:
        failures.append(f"statuses other than 200/429: {other}")
    bad429 = {c: n for (s, c), n in w["codes"].items() if s == "429" and c != "rate_limited"}
    if bad429:
        failures.append(f"429s that are not rate_limited: {bad429}")
    unattributed = sum(n for (k, _kind, _s, _h), n in w["counts"].items() if k == "?")
    # Which responses went through the rate limiter (they carry X-RateLimit-*): every 200 and
    # 429 should; admission (503 overloaded, 413) and authentication refusals come before it.
    odd = {(s, h): n for (k, _kind, s, h), n in w["counts"].items()
           if k != "?" and ((s in ("200", "429")) != (h == "1"))}
    if odd:
        warnings.append(f"responses whose X-RateLimit-* presence is unexpected "
                        f"(status, limiter header): {odd}")
    pre = {}
    for (k, _kind, s, h), n in w["counts"].items():
        if h != "1" and k != "?":
            pre[s] = pre.get(s, 0) + n
    if pre:
        say(f"refused before the rate limiter (no X-RateLimit-* headers): {pre}")
    if unattributed:
        failures.append(f"{unattributed} responses without our X-Request-Id")
    if er.get("connect") or er.get("read") or er.get("write"):
        warnings.append(f"socket errors: {er}")
    if er.get("timeout"):
        warnings.append(f"{er['timeout']} responses slower than wrk's --timeout {a.timeout}")

    # --- server side: metrics deltas -----------------------------------------------------------
    routes = {v[:2] for v in ROUTE_OF_KIND.values()}
    delta = {}
    for key in set(before) | set(after):
        d = after.get(key, 0) - before.get(key, 0)
        if d:
            delta[key] = d
    srv_v1 = {k: n for k, n in delta.items() if k[1] and k[1].startswith("/v1")}
    srv_total = sum(srv_v1.values())
    say(f"server kycd_http_requests_total (run delta, /v1): {srv_total}")
    for (m, r, s), n in sorted(srv_v1.items()):
        say(f"  {m} {r} {s}: {n}")
    others = {k: n for k, n in delta.items() if k not in srv_v1 and k[1] not in ("/metrics",)}
    if others:
        say(f"  other routes in the run: {others}")
    # Server-side time per route and status (request_id middleware: admission waits included).
    ds_b = parse_counter(a.metrics_before, "kycd_http_request_duration_seconds_sum")
    ds_a = parse_counter(a.metrics_after, "kycd_http_request_duration_seconds_sum")
    for lk, v in sorted(ds_a.items()):
        lab = dict(lk)
        key = (lab.get("method"), lab.get("route"), lab.get("status"))
        if key in srv_v1:
            secs_ = v - ds_b.get(lk, 0.0)
            say(f"  server mean time {' '.join(key)}: {secs_ / srv_v1[key] * 1000:.2f} ms")
    srv5 = sum(n for (m, r, s), n in delta.items() if s.isdigit() and int(s) >= 500)
    if srv5:
        failures.append(f"server counted {srv5} responses >= 500")
    # Per route and status: the server saw every response wrk counted, plus at most one
    # in-flight request per connection when wrk stopped.
    client_rs = {}
    for (_k, kind, st, _h), n in w["counts"].items():
        if kind in ROUTE_OF_KIND:
            m, r = ROUTE_OF_KIND[kind]
            client_rs[(m, r, st)] = client_rs.get((m, r, st), 0) + n
    for key in sorted(set(client_rs) | set(srv_v1)):
        c, s = client_rs.get(key, 0), srv_v1.get(key, 0)
        if s < c:
            failures.append(f"{' '.join(key)}: server counted {s} < client {c}")
    if not (0 <= srv_total - lua_total <= a.connections):
        failures.append(f"server total {srv_total} vs client {lua_total}: difference outside "
                        f"[0, {a.connections}] (in-flight at stop)")
    say(f"server - client = {srv_total - lua_total} (requests in flight when wrk stopped; "
        f"bound 0..{a.connections})")
    # wrk calls request() once in thread 1 before the run to check the script's output; that
    # record is never sent.
    if srv_total != issued - 1:
        warnings.append(f"the server counted {srv_total} /v1 requests, wrk sent {issued - 1}: "
                        "some requests written by wrk were never answered (connections cut?)")
    else:
        say(f"every request wrk sent ({issued - 1}) was answered and counted by the server")
    af = parse_counter(a.metrics_after, "kycd_auth_failures_total")
    bf = parse_counter(a.metrics_before, "kycd_auth_failures_total")
    authd = {dict(k).get("code"): v - bf.get(k, 0) for k, v in af.items() if v - bf.get(k, 0)}
    if authd:
        failures.append(f"auth failures during the run: {authd}")
    adm_a = parse_counter(a.metrics_after, "kycd_admission_refused_total")
    adm_b = parse_counter(a.metrics_before, "kycd_admission_refused_total")
    admd = {dict(k).get("budget"): v - adm_b.get(k, 0) for k, v in adm_a.items()
            if v - adm_b.get(k, 0)}
    if admd:
        warnings.append(f"admission refusals (503 overloaded / 413) during the run: {admd}")

    # --- rate limit: expected vs observed allowed per key ------------------------------------
    B = cfg["per_minute"]
    T = 60.0 / B
    ideal = B + math.floor(dur / T)
    upper = B + math.floor((dur + a.grace) / T) + 1
    say(f"rate limit: {B}/min per key = burst {B}, then 1 per {T * 1000:.0f} ms; "
        f"{cfg['per_day']}/day; run {dur:.2f} s")
    say(f"  expected allowed (non-429) per key under saturation: {B} + floor({dur:.2f}/{T:g}) = "
        f"{ideal}; accepted {B} + floor(({dur:.2f} - {a.grace:g})/{T:g}) .. {upper} "
        f"(grace {a.grace:g} s; upper = {B} + floor(({dur:.2f} + {a.grace:g})/{T:g}) + 1)")
    per_key = {}
    for (k, kind, st, h), n in w["counts"].items():
        if k == "?":
            continue
        d = per_key.setdefault(int(k), {"total": 0, "allowed": 0, "limited": 0, "v200": 0,
                                        "pre": 0})
        d["total"] += n
        if st == "429":
            d["limited"] += n
        elif h == "1":
            d["allowed"] += n
        else:
            d["pre"] += n
        if kind == "v" and st == "200":
            d["v200"] += n
    keys = cfg["keys"]
    say(f"  {'key':>3} {'tenant':<21} {'sent':>7} {'allowed':>7} {'429':>7} {'pre':>5} "
        f"{'lower':>6} {'ideal':>6} {'upper':>6}   (allowed = passed the limiter: non-429 with "
        f"X-RateLimit-*; pre = refused before it)")
    sum_lower = sum_upper = sum_allowed = 0
    for k in keys:
        i = k["index"]
        d = per_key.get(i, {"total": 0, "allowed": 0, "limited": 0, "v200": 0, "pre": 0})
        # Under saturation the GCRA's theoretical arrival time stays ~tau ahead of the clock, so
        # a late request delays a cell but never loses one: a key is allowed exactly
        # B + floor(span / T) (+1) requests, span being the time from its first request to its
        # last. The span is wrk's run give or take start-up and the requests still in flight at
        # the stop (not counted by wrk): `grace` seconds either way. Never more than was sent.
        lower = min(B + math.floor(max(0.0, dur - a.grace) / T), d["total"] - d["pre"])
        ok = lower <= d["allowed"] <= upper
        sum_lower += lower
        sum_upper += upper
        sum_allowed += d["allowed"]
        say(f"  {i:>3} {k['tenant']:<21} {d['total']:>7} {d['allowed']:>7} {d['limited']:>7} "
            f"{d['pre']:>5} "
            f"{lower:>6} {ideal:>6} {upper:>6}{'' if ok else '  <-- OUT OF BOUNDS'}")
        if d["allowed"] > upper or (d["allowed"] < lower and not overflow):
            failures.append(f"key {i} ({k['id']}): {d['allowed']} allowed, expected "
                            f"{lower}..{upper}")
    # Server side: everything but 429 and the refusals that come before the limiter (401
    # authentication, 413/503 admission of the body).
    srv_allowed = sum(n for (m, r, s), n in srv_v1.items() if s not in PRE_LIMITER + ("429",))
    say(f"  all keys: client allowed {sum_allowed}, server allowed (metrics, not 429/401/413/503) "
        f"{srv_allowed}; expected {sum_lower}..{sum_upper} (ideal {ideal * len(keys)})")
    if srv_allowed > sum_upper:
        failures.append(f"server allowed {srv_allowed} > upper bound {sum_upper}")
    if overflow:
        say("  (lower bounds not judged: threads stopped early when they ran out of requests)")
    elif srv_allowed < sum_lower:
        failures.append(f"server allowed {srv_allowed} < lower bound {sum_lower}")

    # --- usage: billed validation units per tenant --------------------------------------------
    if a.usage_before and a.usage_after:
        ub, ua = json.load(open(a.usage_before)), json.load(open(a.usage_after))
        for tid in cfg["tenants"]:
            billed = ua[tid].get("validation", 0) - ub.get(tid, {}).get("validation", 0)
            client = sum(per_key.get(k["index"], {}).get("v200", 0) for k in keys
                         if k["tenant"] == tid)
            flag = ""
            if not (0 <= billed - client <= a.connections):
                flag = "  <-- MISMATCH"
                failures.append(f"tenant {tid}: {billed} validation units billed, "
                                f"{client} validate 200s seen by wrk")
            say(f"  usage {tid}: validation billed {billed}, validate 200s seen by wrk {client}"
                f"{flag}")

    # --- server log ---------------------------------------------------------------------------
    if a.server_log and os.path.exists(a.server_log):
        levels = {}
        msgs = {}
        logf = open(a.server_log, errors="replace")
        logf.seek(a.server_log_offset)
        for line in logf:
            lv = None
            try:
                j = json.loads(line)
                lv = str(j.get("level", "")).upper()
                msg = j.get("message") or j.get("fields", {}).get("message") or line[:160]
                if "status" in j:
                    msg += f" (status {j['status']})"
            except ValueError:
                for cand in ("ERROR", "WARN", "PANIC", "panicked"):
                    if cand in line:
                        lv = "ERROR" if cand in ("PANIC", "panicked") else cand
                        break
                msg = line.strip()[:160]
            if lv in ("WARN", "ERROR"):
                levels[lv] = levels.get(lv, 0) + 1
                msgs[(lv, msg)] = msgs.get((lv, msg), 0) + 1
        say(f"server log during the run ({a.server_log} from byte {a.server_log_offset}): "
            f"{levels.get('WARN', 0)} WARN, "
            f"{levels.get('ERROR', 0)} ERROR lines")
        for (lv, msg), n in sorted(msgs.items(), key=lambda x: -x[1])[:10]:
            say(f"  {n:>6} x {lv}: {msg}")
        if levels.get("ERROR"):
            warnings.append(f"{levels['ERROR']} ERROR lines in the server log")
        if levels.get("WARN"):
            warnings.append(f"{levels['WARN']} WARN lines in the server log")

    summary = {
        "duration_s": dur, "requests": wrk_total, "rps": wrk_total / dur if dur else 0,
        "status": by_status, "2xx": c2, "4xx": c4, "5xx": c5, "overloaded_503": overloaded,
        "socket_errors": er, "latency_us": lat, "server_v1_total": srv_total,
        "server_allowed": srv_allowed, "client_allowed": sum_allowed,
        "expected_allowed_per_key": {"ideal": ideal, "upper": upper},
        "expected_allowed_total": [sum_lower, sum_upper],
        "generated": a.generated, "issued": issued, "overflow": overflow,
        "failures": failures, "warnings": warnings,
    }
    if a.json_out:
        json.dump(summary, open(a.json_out, "w"), indent=1)
    print("\n".join(lines))
    for wmsg in warnings:
        print("WARN: " + wmsg)
    for f in failures:
        print("FAIL: " + f)
    print("RESULT: " + ("PASS" if not failures else f"FAIL ({len(failures)} problems)"))
    sys.exit(1 if failures else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    s = sub.add_parser("setup")
    s.add_argument("--base", required=True)
    s.add_argument("--tenants", type=int, default=4)
    s.add_argument("--keys", type=int, default=20)
    s.add_argument("--plan", default="enterprise")
    s.add_argument("--per-minute", type=int, default=0)
    s.add_argument("--prefix", default="load")
    s.add_argument("--out", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--keys", required=True)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--out-dir", required=True)
    g.add_argument("--host", required=True)
    g.add_argument("--mix", default="80:10:10")
    g.add_argument("--ts-shift", type=int, default=0)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--get-content-length-zero", action="store_true",
                   help="send Content-Length: 0 on GETs (default: no Content-Length, like curl)")
    sc = sub.add_parser("scrape")
    sc.add_argument("--base", required=True)
    sc.add_argument("--out", required=True)
    u = sub.add_parser("usage")
    u.add_argument("--base", required=True)
    u.add_argument("--keys", required=True)
    u.add_argument("--out", required=True)
    an = sub.add_parser("analyze")
    an.add_argument("--keys", required=True)
    an.add_argument("--wrk", required=True)
    an.add_argument("--metrics-before")
    an.add_argument("--metrics-after")
    an.add_argument("--usage-before")
    an.add_argument("--usage-after")
    an.add_argument("--server-log")
    an.add_argument("--server-log-offset", type=int, default=0)
    an.add_argument("--connections", type=int, required=True)
    an.add_argument("--generated", type=int, default=0)
    an.add_argument("--timeout", default="")
    an.add_argument("--grace", type=float, default=1.0)
    an.add_argument("--json-out")
    a = p.parse_args()
    {
        "free-port": cmd_free_port, "setup": cmd_setup, "generate": cmd_generate,
        "scrape": cmd_scrape, "usage": cmd_usage, "analyze": cmd_analyze,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
