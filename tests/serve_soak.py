#!/usr/bin/python3
"""serve_soak.py — soak test of `pi0 serve` (issue 8): 16 concurrent clients for SECONDS, about one
frame in four mutated or truncated, clients disconnecting mid-request and mid-frame.

    serve_soak.py PORT SERVER_PID SECONDS IMAGE [SEED]

Checks: every valid request is answered with exactly the actions the same observation got before
the soak; every mutated frame gets either a reply or an error text frame + close 1011 (never a
hang); the server process is alive and /healthz answers at the end; its RSS at the end is within
20 % of its RSS after warm-up (the first quarter of the run). Prints the counts and RSS figures.
Uses Debian's python3-websockets, python3-msgpack, python3-numpy (and serve_client.py's codec)."""
import asyncio, os, random, sys, time, urllib.request

import numpy as np
import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_client import Client, load_png, observation, packb, unpackb  # noqa: E402

CLIENTS = 16
RECV_TIMEOUT = 120  # a reply may wait behind 15 other clients' requests on one model


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Stats:
    def __init__(self):
        self.valid = self.valid_ok = self.valid_bad = 0
        self.mutated = self.mutated_error = self.mutated_answered = 0
        self.disconnects = self.partial_frames = self.reconnects = 0
        self.failures = []

    def fail(self, what):
        if len(self.failures) < 20:
            self.failures.append(what)


# Hostile frames of every issue-8 class, sent now and then in place of a random mutation.
HOSTILE = [
    b"",                                   # empty binary frame
    b"\xdf\x10\x00\x00\x00",               # map32 declaring 2^28 entries
    b"\xdd\xff\xff\xff\xff",               # array32 declaring 2^32-1 elements
    b"\xc1",                               # reserved byte
]


def mutate(rng, frame, state_obs):
    """Returns (payload, kind): a corrupted version of a valid frame."""
    r = rng.random()
    if r < 0.30:   # truncated
        return frame[:rng.randrange(0, len(frame))], "truncated"
    if r < 0.55:   # bytes flipped anywhere
        b = bytearray(frame)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b), "flipped"
    if r < 0.75:   # bytes flipped in the structure (keys, types, lengths), not the pixels
        b = bytearray(frame)
        head = min(len(b), 160)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(head)] = rng.randrange(256)
        return bytes(b), "header"
    if r < 0.85:   # a wrapping shape or a NaN image, as an attacker would send
        o = dict(state_obs)
        if rng.random() < 0.5:
            o["observation/state"] = {b"__ndarray__": True, b"data": b"", b"dtype": "<f8", b"shape": [2**30, 2**30, 2]}
        else:
            o["observation/image"] = np.full((8, 8, 3), np.nan, np.float32)
        return packb(o), "hostile"
    if r < 0.95:
        return rng.choice(HOSTILE), "hostile"
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), "random"


async def client_loop(k, port, frames, want, deadline, stats, rng):
    c = None
    while time.monotonic() < deadline:
        if c is None:
            c = await Client.connect(port)
            stats.reconnects += 1
        frame = frames[k]
        r = rng.random()
        if r < 0.04:  # disconnect right after sending a request
            await c.ws.send(frame)
            if rng.random() < 0.5:
                c.ws.transport.abort()  # TCP reset, no closing handshake
            else:
                await c.ws.close()
            stats.disconnects += 1
            c = None
            continue
        if r < 0.06:  # disconnect in the middle of a fragmented frame
            async def fragments():
                yield frame[:len(frame) // 2]
                await asyncio.sleep(3600)
                yield frame[len(frame) // 2:]
            task = asyncio.ensure_future(c.ws.send(fragments()))
            await asyncio.sleep(0.05)
            c.ws.transport.abort()
            task.cancel()
            try:
                await task
            except BaseException:
                pass
            stats.partial_frames += 1
            c = None
            continue
        if r < 0.31:  # one frame in four: mutated or truncated
            payload, kind = mutate(rng, frame, OBS[k])
            stats.mutated += 1
            await c.ws.send(payload)
            try:
                reply = await asyncio.wait_for(c.ws.recv(), RECV_TIMEOUT)
            except websockets.exceptions.ConnectionClosed as e:
                stats.fail(f"client {k}: {kind} frame: connection closed without an error frame ({e.code})")
                c = None
                continue
            except asyncio.TimeoutError:
                stats.fail(f"client {k}: {kind} frame: no answer in {RECV_TIMEOUT} s")
                c = None
                continue
            if isinstance(reply, str):
                stats.mutated_error += 1
                try:  # the error is followed by a close with code 1011
                    await asyncio.wait_for(c.ws.recv(), RECV_TIMEOUT)
                    stats.fail(f"client {k}: {kind} frame: error '{reply[:80]}' not followed by a close")
                except websockets.exceptions.ConnectionClosed as e:
                    if e.code != 1011:
                        stats.fail(f"client {k}: {kind} frame: close code {e.code}, expected 1011")
                except asyncio.TimeoutError:
                    stats.fail(f"client {k}: {kind} frame: error but no close")
                c = None
            else:  # the mutation left a valid observation (e.g. a flipped pixel): a well-formed reply
                stats.mutated_answered += 1
                a = unpackb(reply)["actions"]
                if a.shape != (50, 7) or a.dtype != np.float64:  # float64, as openpi sends
                    stats.fail(f"client {k}: {kind} frame answered with actions {a.shape} {a.dtype}")
            continue
        stats.valid += 1
        try:
            r = await asyncio.wait_for(c.infer(OBS[k]), RECV_TIMEOUT)
        except Exception as e:  # noqa: BLE001 — any failure of a valid request is a test failure
            stats.valid_bad += 1
            stats.fail(f"client {k}: valid request failed: {type(e).__name__}: {str(e)[:120]}")
            c = None
            continue
        if np.array_equal(r["actions"], want[k]):
            stats.valid_ok += 1
        else:
            stats.valid_bad += 1
            stats.fail(f"client {k}: valid request answered with different actions")
    if c is not None:
        await c.ws.close()


OBS = {}


async def main(port, pid, seconds, image, seed):
    img = load_png(image)[:224, :224].copy()
    state = [0.1, -0.2, 0.3, 0.05, 0.5, -0.6, 1.0, 0.25]
    for k in range(CLIENTS):
        OBS[k] = observation(img, [x + 0.05 * k for x in state], prompt=f"pick up cup number {k}")
    frames = {k: packb(OBS[k]) for k in range(CLIENTS)}
    # Reference actions, one request per client before the soak.
    want = {}
    c = await Client.connect(port)
    for k in range(CLIENTS):
        want[k] = (await c.infer(OBS[k]))["actions"]
    await c.ws.close()
    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + seconds
    rngs = [random.Random(seed * 1000 + k) for k in range(CLIENTS)]
    tasks = [asyncio.create_task(client_loop(k, port, frames, want, deadline, stats, rngs[k])) for k in range(CLIENTS)]
    await asyncio.sleep(seconds / 4)
    rss_warm = rss_kb(pid)
    warm_counts = (stats.valid, stats.mutated)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            stats.fail(f"client crashed: {type(r).__name__}: {r}")
    dt = time.monotonic() - t0
    await asyncio.sleep(1.0)
    alive = os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] not in ("Z", "X")
    rss_end = rss_kb(pid) if alive else 0
    try:
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read().decode()
    except Exception as e:  # noqa: BLE001
        health = f"error: {e}"
    growth = (rss_end - rss_warm) / rss_warm if rss_warm else 0.0
    print(f"soak: {CLIENTS} clients, {dt:.1f} s (seed {seed})")
    print(f"  valid requests: {stats.valid} sent, {stats.valid_ok} answered correctly, {stats.valid_bad} wrong or failed")
    print(f"  mutated/truncated frames: {stats.mutated} sent ({stats.mutated / max(1, stats.mutated + stats.valid):.0%} of "
          f"frames), {stats.mutated_error} refused with an error + close 1011, {stats.mutated_answered} still valid and answered")
    print(f"  disconnects mid-request: {stats.disconnects}, mid-frame: {stats.partial_frames}; connections opened: {stats.reconnects}")
    print(f"  server RSS: {rss_warm / 1024:.1f} MiB after warm-up ({warm_counts[0]} valid + {warm_counts[1]} mutated frames), "
          f"{rss_end / 1024:.1f} MiB at the end ({growth:+.1%}); alive: {alive}; /healthz: {health.strip()!r}")
    ok = True
    for f in stats.failures:
        print("FAIL:", f)
        ok = False
    if stats.valid_ok == 0 or stats.mutated == 0:
        print("FAIL: the soak sent no valid or no mutated requests")
        ok = False
    if not alive or health.strip() != "OK":
        print("FAIL: the server is not alive at the end")
        ok = False
    if growth > 0.20:
        print(f"FAIL: RSS grew by {growth:.1%} after warm-up (bound 20 %)")
        ok = False
    print("soak:", "passed" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    port, pid, seconds, image = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    sys.exit(0 if asyncio.run(main(port, pid, seconds, image, seed)) else 1)
