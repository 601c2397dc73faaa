#!/usr/bin/python3
"""serve_client.py — an openpi-protocol client and the integration tests of `pi0 serve`.

Uses only Debian's python3-websockets, python3-msgpack and python3-numpy. The msgpack numpy
extension mirrors openpi_client.msgpack_numpy: ndarrays as {b"__ndarray__": True, b"data",
b"dtype", b"shape"}, numpy scalars as {b"__npgeneric__": True, b"data", b"dtype"}.

    serve_client.py test PORT MODEL_DIR PI0 TOKENIZER IMAGE   run the integration tests
    serve_client.py once PORT IMAGE PROMPT STATE              one request, print the actions
"""
import asyncio, json, os, struct, subprocess, sys, time
import msgpack, numpy as np, websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAIL, PASS, check  # noqa: E402


def pack_array(obj):
    if isinstance(obj, np.ndarray) and obj.dtype.kind not in ("V", "O", "c"):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(x):
    return msgpack.packb(x, default=pack_array)


def unpackb(b):
    return msgpack.unpackb(b, object_hook=unpack_array)


class Client:
    """Like openpi_client.websocket_client_policy.WebsocketClientPolicy, asyncio flavour."""

    def __init__(self, ws):
        self.ws = ws
        self.metadata = None

    @classmethod
    async def connect(cls, port):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None)
        c = cls(ws)
        c.metadata = unpackb(await ws.recv())
        return c

    async def infer(self, obs):
        await self.ws.send(packb(obs))
        reply = await self.ws.recv()
        if isinstance(reply, str):
            raise RuntimeError(reply)
        return unpackb(reply)


def load_png(path):
    # The server resizes; a PNG decoded by PIL gives the uint8 HWC array a robot would send.
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def observation(img, state, prompt="pick up the coffee cup"):
    return {"observation/image": img, "observation/wrist_image": img[::2, ::2].copy(),
            "observation/state": np.asarray(state, dtype=np.float32), "prompt": prompt}


async def expect_error(port, payload, needle, what, binary=True):
    """Sends one bad payload; expects a text frame naming the problem, then close code 1011."""
    c = await Client.connect(port)
    await c.ws.send(payload if binary else payload.decode("latin1"))
    try:
        msg = await asyncio.wait_for(c.ws.recv(), 20)
        ok_text = isinstance(msg, str) and needle in msg
        try:
            await asyncio.wait_for(c.ws.recv(), 20)
            closed_right = False
        except websockets.exceptions.ConnectionClosed as e:
            closed_right = e.code == 1011
        check(ok_text and closed_right, f"{what}: got {msg!r:.200}, 1011 close {closed_right}")
        print(f"  malformed: {what:32s} -> {msg[:90] if isinstance(msg, str) else msg!r}", flush=True)
    except websockets.exceptions.ConnectionClosed as e:
        check(False, f"{what}: closed without an error frame ({e.code})")


async def good_loop(port, obs, want, stop, counter):
    c = await Client.connect(port)
    while not stop.is_set():
        r = await c.infer(obs)
        check(np.array_equal(r["actions"], want), "well-behaved client got different actions during malformed traffic")
        counter[0] += 1
    await c.ws.close()


async def run_tests(port, model, pi0, tokenizer, image_path):
    img = load_png(image_path)
    state = [0.1, -0.2, 0.3, 0.05, 0.5, -0.6, 1.0, 0.25]

    # 1. metadata on connect
    c = await Client.connect(port)
    md = c.metadata
    check(md.get("model") == "pi0" and md.get("config") == "libero" and md.get("action_dim") == 7
          and "reset_pose" not in md, f"metadata {md}")
    print("  metadata:", md, flush=True)

    # 2. actions equal `pi0 infer` on the same observation and seed
    r1 = await c.infer(observation(img, state))
    r2 = await c.infer(observation(img, state))
    a = r1["actions"]
    check(a.shape == (50, 7) and a.dtype == np.float64, f"actions shape {a.shape} {a.dtype} (float64, as openpi sends)")
    check("infer_ms" in r1["server_timing"] and "prev_total_ms" not in r1["server_timing"], f"timing 1 {r1['server_timing']}")
    check("prev_total_ms" in r2["server_timing"] and "policy_timing" in r2, f"timing 2 {r2['server_timing']}")
    from PIL import Image
    wrist = os.environ.get("TMPDIR_SERVE", "/tmp") + f"/wrist_{port}.png"
    Image.fromarray(img[::2, ::2].copy()).save(wrist)
    out = subprocess.run([pi0, "infer", "--model", model, "--tokenizer", tokenizer, "--image", f"base_0_rgb={image_path}",
                          "--image", f"left_wrist_0_rgb={wrist}", "--prompt", "pick up the coffee cup",
                          "--state", ",".join(repr(float(np.float32(x))) for x in state), "--seed", "0",
                          "--action-dims", "7", "--format", "json"], capture_output=True, text=True)
    check(out.returncode == 0, f"pi0 infer failed: {out.stderr}")
    if out.returncode == 0:
        ref = np.asarray(json.loads(out.stdout)["actions"], dtype=np.float64)
        same = np.array_equal(ref, a)
        check(same, f"server and pi0 infer differ: max |diff| {np.abs(ref - a).max()}")
        print(f"  server vs pi0 infer: identical={same}", flush=True)
    await c.ws.close()

    # 3. 16 concurrent clients x 20 requests, each with its own state: no cross-talk
    base = {}
    for k in range(16):
        c = await Client.connect(port)
        base[k] = (await c.infer(observation(img, [x + 0.1 * k for x in state])))["actions"]
        await c.ws.close()

    async def client_loop(k):
        c = await Client.connect(port)
        ok = 0
        for _ in range(20):
            r = await c.infer(observation(img, [x + 0.1 * k for x in state]))
            ok += np.array_equal(r["actions"], base[k])
        await c.ws.close()
        return ok

    t0 = time.monotonic()
    oks = await asyncio.gather(*(client_loop(k) for k in range(16)))
    dt = time.monotonic() - t0
    check(sum(oks) == 320, f"concurrency: {sum(oks)}/320 answers correct")
    print(f"  16 clients x 20 requests: {sum(oks)}/320 correct in {dt:.2f} s", flush=True)

    # 4. malformed input while a well-behaved client keeps being served
    stop, counter = asyncio.Event(), [0]
    good = asyncio.create_task(good_loop(port, observation(img, state), a, stop, counter))
    await asyncio.sleep(0.2)
    await expect_error(port, b"\xc1\xc1 not msgpack", "not one valid msgpack", "invalid msgpack")
    await expect_error(port, packb([1, 2, 3]), "must be a msgpack map", "not a map")
    o = observation(img, state); del o["observation/state"]
    await expect_error(port, packb(o), "missing key 'observation/state'", "missing state")
    o = observation(img, state); del o["observation/image"]; del o["observation/wrist_image"]
    await expect_error(port, packb(o), "missing key 'observation/image'", "missing images")
    o = observation(img, state); del o["observation/wrist_image"]
    await expect_error(port, packb(o), "missing key 'observation/wrist_image'", "missing wrist image")
    o = observation(img, state); o["observation/image"] = img[:64, :64].astype(np.int32)
    await expect_error(port, packb(o), "must be uint8", "int32 image")
    o = observation(img, state); o["observation/image"] = img.reshape(-1)
    await expect_error(port, packb(o), "shape must be", "1-D image")
    o = observation(img, state); o["observation/state"] = np.zeros(40, np.float32)
    await expect_error(port, packb(o), "state has 40 values", "state too long")
    o = observation(img, state); o["prompt"] = 7
    await expect_error(port, packb(o), "'prompt' must be a string", "prompt not a string")
    o = observation(img, state)
    raw = packb(o).replace(b"<f4", b">f4")
    await expect_error(port, raw, "unsupported dtype", "big-endian state")
    await expect_error(port, packb({"observation/image": {b"__ndarray__": True, b"data": b"xyz", b"dtype": "|u1", b"shape": [5, 5, 3]},
                                    "observation/state": np.zeros(8, np.float32), "prompt": "x"}),
                       "data bytes for shape", "data/shape mismatch")
    await expect_error(port, b"text frame", "expected a binary", "text frame", binary=False)
    # hostile input (issue 8): an empty binary frame, a shape whose element count wraps, a
    # 5-byte map declaring 2^28 entries, a NaN in a float image
    await expect_error(port, b"", "empty message", "empty binary frame")
    o = observation(img, state)
    o["observation/state"] = {b"__ndarray__": True, b"data": b"", b"dtype": "<f8", b"shape": [2**30, 2**30, 2]}
    await expect_error(port, packb(o), "more elements than memory", "state shape [2^30, 2^30, 2]")
    await expect_error(port, b"\xdf\x10\x00\x00\x00", "declares 268435456 entries", "map32 of 2^28 entries")
    o = observation(img, state)
    o["observation/image"] = np.full((8, 8, 3), np.nan, np.float32)
    await expect_error(port, packb(o), "not a finite number", "NaN in a float image")
    await expect_error(port, b"\x00" * (3 << 20), "larger than the", "oversized frame")
    # a client that disconnects mid-request
    c = await Client.connect(port)
    await c.ws.send(packb(observation(img, state)))
    await c.ws.close()
    await asyncio.sleep(0.3)
    stop.set()
    await good
    check(counter[0] > 0, "the well-behaved client got no answers during the malformed traffic")
    print(f"  well-behaved client answered {counter[0]} times during malformed traffic", flush=True)

    # 5. a client that pipelines: three requests sent back to back are answered in order
    c = await Client.connect(port)
    sts = [[x + 0.1 * k for x in state] for k in range(3)]
    for st in sts:
        await c.ws.send(packb(observation(img, st)))
    got = [unpackb(await asyncio.wait_for(c.ws.recv(), 60))["actions"] for _ in sts]
    await c.ws.close()
    check(all(np.array_equal(g, base[k]) for k, g in enumerate(got)), "pipelined requests answered wrongly")
    print(f"  3 pipelined requests on one connection: answered in order", flush=True)

    # 6. latency overhead over the model's own time, on loopback, with a full-size and a
    #    32x32 camera image (the latter shows the per-request cost without the payload bytes)
    for label, im in (("600x400 image", img), ("32x32 image", img[:32, :32].copy())):
        await measure_overhead(port, observation(im, state), label)


async def measure_overhead(port, obs, label):
    c = await Client.connect(port)
    over = []
    for _ in range(30):
        t0 = time.perf_counter()
        r = await c.infer(obs)
        rt = (time.perf_counter() - t0) * 1e3
        over.append((rt - r["server_timing"]["infer_ms"], rt - r["policy_timing"]["infer_ms"]))
    await c.ws.close()
    t = sorted(o[0] for o in over)
    m = sorted(o[1] for o in over)
    print(f"  [{label}] overhead per request: round trip - server infer_ms (decode + preprocess + model) "
          f"median {t[len(t) // 2]:.3f} ms (min {t[0]:.3f}); round trip - model time median "
          f"{m[len(m) // 2]:.3f} ms", flush=True)


def main():
    if sys.argv[1] == "once":
        port, image, prompt, state = sys.argv[2:6]

        async def once():
            c = await Client.connect(int(port))
            r = await c.infer(observation(load_png(image), [float(x) for x in state.split(",")], prompt))
            print(json.dumps({"metadata": {k: str(v) for k, v in c.metadata.items()}, "actions": r["actions"].tolist(),
                              "server_timing": r["server_timing"]}))
            await c.ws.close()
        asyncio.run(once())
        return
    port, model, pi0, tok, image = sys.argv[2:7]
    asyncio.run(run_tests(int(port), model, pi0, tok, image))
    print(f"serve: {PASS[0]} passed, {FAIL[0]} failed")
    sys.exit(1 if FAIL[0] else 0)


if __name__ == "__main__":
    main()
