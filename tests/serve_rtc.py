#!/usr/bin/python3
"""serve_rtc.py — real-time chunking through `pi0 serve` (issue 18).

A connection keeps the raw chunk (model space) it was last sent; a request's "rtc" map
({"executed", "inference_delay", ...}) guides the new chunk towards that chunk's leftover. With
a fixed seed, the served chunks equal the Python binding's (pi0.Policy.infer(obs, rtc=...)) on
the same sequence, bit for bit; a request without "rtc" is unchanged by an earlier RTC request;
the first RTC request of a connection (nothing sent yet) is a plain one; connections do not
share chunks; bad "rtc" fields are refused naming the field. lerobot and openpi checkpoints.

The server's own delay (`--control-hz`): a request with "inference_delay": "auto" (or none)
gets d = ceil(latency_ms * HZ / 1000) from the connection's latency estimate, cut to the
leftover, both reported in the reply's "rtc" map; the estimate lies where its definition puts it
(the EMA of the earlier requests' server-side times, each between that reply's infer_ms and the
client's round trip); the served chunk equals the binding's with that delay. Without the option
"auto" is refused and a missing delay is 0, as before; bad option values are refused at start.

    serve_rtc.py PI0 TOKENIZER_JSON TMP     (PYTHONPATH / PI0_LIBRARY: the binding)
"""
import asyncio
import os
import shutil
import math
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAIL, PASS, check  # noqa: E402
from serve_client import Client  # noqa: E402

PI0, TOK, TMP = sys.argv[1], sys.argv[2], sys.argv[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connect(port):
    for _ in range(300):
        try:
            return await Client.connect(port)
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("FAIL: pi0 serve did not start")


async def session(port, obs, rtcs):
    """One connection: a request per entry of rtcs (None: no "rtc" key); the actions, or the
    error text of a refused request (then the connection is closed)."""
    c = await connect(port)
    out = []
    for r in rtcs:
        o = dict(obs)
        if r is not None:
            o["rtc"] = r
        try:
            out.append(np.asarray((await c.infer(o))["actions"], np.float32).copy())
        except RuntimeError as e:
            out.append(str(e))
            break
    await c.ws.close()
    return out


def test(name, model, obs, serve_args=()):
    import pi0
    seq = [None, {"executed": 2, "inference_delay": 1}, {"executed": 1, "inference_delay": 2, "schedule": "EXP",
                                                          "max_guidance_weight": 3.0, "execution_horizon": 3}, None,
           {"executed": 1, "inference_delay": 2, "jacobian": "exact"}]
    pol = pi0.Policy(model, tokenizer=TOK, seed=7, backend="ref", threads=1)
    want = [pol.infer(obs, rtc=r)["actions"].copy() for r in seq]
    check(not np.array_equal(want[1], want[0]), f"{name}: the binding's RTC call changed the actions")
    pol = pi0.Policy(model, tokenizer=TOK, seed=7, backend="ref", threads=1)  # the same, lerobot's Jacobian last
    lr = [pol.infer(obs, rtc=r)["actions"].copy() for r in seq[:4] + [dict(seq[4], jacobian="lerobot")]]
    check(float(np.abs(lr[4] - want[4]).max()) > 1e-4, f"{name}: jacobian exact and lerobot give the same chunk")
    check(np.array_equal(want[3], want[0]), f"{name}: a call without rtc after RTC calls is a plain one")
    port = free_port()
    srv = subprocess.Popen([PI0, "serve", "--model", model, "--tokenizer", TOK, "--port", str(port), "--host",
                            "127.0.0.1", "--seed", "7", "--threads", "1", "--backend", "ref", *serve_args],
                           stderr=subprocess.PIPE, text=True)
    try:
        got = asyncio.run(session(port, obs, seq))
        for i, (g, w) in enumerate(zip(got, want)):
            ok = isinstance(g, np.ndarray) and g.shape == w.shape
            d = float(np.abs(g - w).max()) if ok else float("inf")
            print(f"{name}: request {i} (rtc {seq[i]}): served vs binding max |diff| {d:.3g}")
            check(d == 0.0, f"{name}: request {i}: served == the binding's ({g if not ok else d})")
        # a fresh connection's first RTC request has no chunk yet: a plain one
        first = asyncio.run(session(port, obs, [{"executed": 2, "inference_delay": 1}]))[0]
        check(isinstance(first, np.ndarray) and np.array_equal(first, want[0]),
              f"{name}: the first RTC request of a connection is a plain one")
        # two connections: each guided by its own chunk (the other's in between changes nothing)
        async def interleaved():
            a, b = await connect(port), await connect(port)
            o2 = dict(obs)
            await a.infer(obs)
            await b.infer(o2)
            o3 = dict(obs, rtc={"executed": 2, "inference_delay": 1})
            r = np.asarray((await a.infer(o3))["actions"], np.float32).copy()
            await a.ws.close()
            await b.ws.close()
            return r
        r = asyncio.run(interleaved())
        check(np.array_equal(r, want[1]), f"{name}: a connection's RTC uses its own last chunk")
        for bad, what in (({"inference_delay": 1}, "rtc/executed"), ({"executed": 1, "schedule": "CUBIC"}, "rtc/schedule"),
                          ({"executed": 1, "delay": 2}, "rtc/delay"), ({"executed": 9, "inference_delay": 0}, "executed = 9"),
                          ({"executed": 1, "max_guidance_weight": -1}, "max_guidance_weight"),
                          ({"executed": 1, "jacobian": "true"}, "rtc/jacobian")):
            g = asyncio.run(session(port, obs, [None, bad]))
            check(len(g) == 2 and isinstance(g[1], str) and what in g[1], f"{name}: rtc {bad} refused naming {what} ({g[-1]})")
    finally:
        srv.terminate()
        srv.communicate(timeout=30)


async def timed(c, obs):
    """One request: (the reply, the client's round trip in ms)."""
    t0 = time.monotonic()
    r = await c.infer(obs)
    return r, (time.monotonic() - t0) * 1000.0


def start(model, port, args):
    return subprocess.Popen([PI0, "serve", "--model", model, "--tokenizer", TOK, "--port", str(port), "--host",
                             "127.0.0.1", "--seed", "7", "--threads", "1", "--backend", "ref", *args],
                            stderr=subprocess.PIPE, text=True)


def test_estimate(name, model, obs):
    """--control-hz: the delay the server estimates, against its definition and the binding."""
    import pi0
    pol = pi0.Policy(model, tokenizer=TOK, seed=7, backend="ref", threads=1)
    plain = pol.infer(obs)["actions"].copy()
    H = plain.shape[0]
    for hz in (20.0, 1e5):  # 1e5 Hz: every estimate is longer than the leftover, cut to it
        port = free_port()
        srv = start(model, port, ("--control-hz", f"{hz:g}"))
        try:
            async def run():
                c = await connect(port)
                r0, rtt0 = await timed(c, obs)
                r1, rtt1 = await timed(c, dict(obs, rtc={"executed": 2, "inference_delay": "auto"}))
                r2, _ = await timed(c, dict(obs, rtc={"executed": 1}))  # no delay: estimated too
                r3, _ = await timed(c, obs)
                await c.ws.close()
                return (r0, rtt0), (r1, rtt1), r2, r3
            (r0, rtt0), (r1, rtt1), r2, r3 = asyncio.run(run())
            for i, r in ((0, r0), (3, r3)):
                check(sorted(r) == ["actions", "policy_timing", "server_timing"],
                      f"{name} {hz:g} Hz: request {i} without rtc: today's reply keys ({sorted(r)})")
                check(np.array_equal(np.asarray(r["actions"], np.float32), plain), f"{name} {hz:g} Hz: request {i} plain")
            e1, e2 = r1.get("rtc"), r2.get("rtc")
            if not check(isinstance(e1, dict) and isinstance(e2, dict), f"{name} {hz:g} Hz: the reply reports the delay ({e1}, {e2})"):
                continue
            # the first estimate is the first request's time, server side: between its reply's
            # infer_ms and the client's round trip; the second, the mean of it and the next one
            inf0, inf1 = r0["server_timing"]["infer_ms"], r1["server_timing"]["infer_ms"]
            l1, l2 = e1["latency_ms"], e2["latency_ms"]
            print(f"{name} {hz:g} Hz: latency estimates {l1:.2f} ms (infer {inf0:.2f}, round trip {rtt0:.2f}), "
                  f"{l2:.2f} ms; delays {e1['estimated_delay']} -> {e1['inference_delay']}, "
                  f"{e2['estimated_delay']} -> {e2['inference_delay']}")
            check(inf0 <= l1 <= rtt0, f"{name} {hz:g} Hz: first estimate {l1} in [infer {inf0}, round trip {rtt0}]")
            check((l1 + inf1) / 2 <= l2 <= (l1 + rtt1) / 2,
                  f"{name} {hz:g} Hz: second estimate {l2} in [({l1}+{inf1})/2, ({l1}+{rtt1})/2]")
            want = pi0.Policy(model, tokenizer=TOK, seed=7, backend="ref", threads=1)
            want.infer(obs)
            for i, (e, ex, r) in enumerate(((e1, 2, r1), (e2, 1, r2)), 1):
                est = math.ceil(e["latency_ms"] * hz / 1000)
                check(e["control_hz"] == hz and e["estimated_delay"] == est and e["inference_delay"] == min(est, H - ex),
                      f"{name} {hz:g} Hz: request {i}: delay {e} == min(ceil(latency * hz), leftover {H - ex})")
                if hz > 1000:
                    check(e["inference_delay"] == H - ex, f"{name}: a delay past the leftover is cut to it ({e})")
                w = want.infer(obs, rtc={"executed": ex, "inference_delay": e["inference_delay"]})["actions"]
                g = np.asarray(r["actions"], np.float32)
                check(np.array_equal(g, w), f"{name} {hz:g} Hz: request {i}: served == the binding's with the "
                      f"reported delay (max |diff| {np.abs(g - w).max():.3g})")
            # a bad delay is refused naming the field
            for bad in ("soon", 1.5):
                g = asyncio.run(session(port, obs, [None, {"executed": 1, "inference_delay": bad}]))
                check(len(g) == 2 and isinstance(g[1], str) and "rtc/inference_delay" in g[1],
                      f"{name}: inference_delay {bad!r} refused ({g[-1]})")
        finally:
            srv.terminate()
            srv.communicate(timeout=30)
    # without --control-hz: "auto" is refused naming the option, a missing delay is 0 (as before)
    port = free_port()
    srv = start(model, port, ())
    try:
        g = asyncio.run(session(port, obs, [None, {"executed": 1, "inference_delay": "auto"}]))
        check(len(g) == 2 and isinstance(g[1], str) and "--control-hz" in g[1], f"{name}: auto without --control-hz refused ({g[-1]})")
        async def no_delay():
            c = await connect(port)
            await c.infer(obs)
            r = await c.infer(dict(obs, rtc={"executed": 1}))
            await c.ws.close()
            return r
        r = asyncio.run(no_delay())
        want = pi0.Policy(model, tokenizer=TOK, seed=7, backend="ref", threads=1)
        want.infer(obs)
        w = want.infer(obs, rtc={"executed": 1, "inference_delay": 0})["actions"]
        check("rtc" not in r and np.array_equal(np.asarray(r["actions"], np.float32), w),
              f"{name}: without --control-hz a missing delay is 0 and nothing is reported")
    finally:
        srv.terminate()
        srv.communicate(timeout=30)
    # bad --control-hz values: refused before the model is read
    for v in ("0", "-5", "abc", "nan", "inf", "", "1e999"):
        for args in (["--control-hz", v], [f"--control-hz={v}"]):
            out = subprocess.run([PI0, "serve", "--model", model, "--port", str(free_port()), *args],
                                 capture_output=True, text=True, timeout=30)
            check(out.returncode != 0 and "--control-hz wants a number in 0.001..100000" in out.stderr
                  and "loaded" not in out.stderr, f"{name}: {args} refused ({out.returncode}: {out.stderr.strip()})")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    img = np.full((30, 26, 3), 90, np.uint8)
    img[::3] = 200
    for pi05 in (False, True):
        m = os.path.join(TMP, "pi05" if pi05 else "pi0")
        subprocess.run([PI0, "gen-model", "--config", "tiny", "--layout", "lerobot", "--out", m] +
                       (["--pi05"] if pi05 else []), check=True, capture_output=True)
        obs = {"observation.images.top": img, "observation.state": np.linspace(-1, 1, 6), "task": "stack the cups"}
        test(f"lerobot {'pi05' if pi05 else 'pi0'}", m, obs)
        test_estimate(f"lerobot {'pi05' if pi05 else 'pi0'}", m, obs)
    m = os.path.join(TMP, "openpi")
    subprocess.run([PI0, "gen-model", "--config", "tiny", "--out", m], check=True, capture_output=True)
    test("openpi pi0", m, {"images": {"base_0_rgb": img}, "state": np.linspace(-1, 1, 6), "prompt": "stack"},
         ("--config", "generic"))
    print(f"serve rtc: {PASS[0]} passed, {FAIL[0]} failed")
    return 1 if FAIL[0] else 0


if __name__ == "__main__":
    sys.exit(main())
