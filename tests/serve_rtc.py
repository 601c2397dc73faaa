#!/usr/bin/python3
"""serve_rtc.py — real-time chunking through `pi0 serve` (issue 18).

A connection keeps the raw chunk (model space) it was last sent; a request's "rtc" map
({"executed", "inference_delay", ...}) guides the new chunk towards that chunk's leftover. With
a fixed seed, the served chunks equal the Python binding's (pi0.Policy.infer(obs, rtc=...)) on
the same sequence, bit for bit; a request without "rtc" is unchanged by an earlier RTC request;
the first RTC request of a connection (nothing sent yet) is a plain one; connections do not
share chunks; bad "rtc" fields are refused naming the field. lerobot and openpi checkpoints.

    serve_rtc.py PI0 TOKENIZER_JSON TMP     (PYTHONPATH / PI0_LIBRARY: the binding)
"""
import asyncio
import os
import shutil
import socket
import subprocess
import sys

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
    m = os.path.join(TMP, "openpi")
    subprocess.run([PI0, "gen-model", "--config", "tiny", "--out", m], check=True, capture_output=True)
    test("openpi pi0", m, {"images": {"base_0_rgb": img}, "state": np.linspace(-1, 1, 6), "prompt": "stack"},
         ("--config", "generic"))
    print(f"serve rtc: {PASS[0]} passed, {FAIL[0]} failed")
    return 1 if FAIL[0] else 0


if __name__ == "__main__":
    sys.exit(main())
