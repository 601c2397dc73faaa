#!/usr/bin/python3
"""client.py — send one observation to `pi0 serve` (or any openpi policy server) and print the
action chunk and the timing.

    python3 examples/client.py --port 8000 [--host HOST] [--image KEY=FILE ...] [--state v1,v2,...]
                               [--prompt TEXT] [--config NAME] [--api-key KEY] [--repeat N]

The observation's keys come from the server's metadata (openpi's `config` name, or a lerobot
checkpoint's `cameras` and `state_dim`), or from --config: LIBERO configs take
observation/image, observation/wrist_image, observation/state; DROID configs
observation/exterior_image_1_left, observation/wrist_image_left, observation/joint_position (7)
and observation/gripper_position (1); ALOHA configs images/cam_high (+ wrists), state (14);
pi0.c's generic preset images/base_0_rgb, ..., state; lerobot checkpoints
observation.images.<camera>, observation.state, task. Cameras without --image get a generated
test picture, a state without --state zeros of the robot's length. A key may be given short
(`image`, `cam_high`, `top`). Options take `--opt value` or `--opt=value`; each at most once.

Speaks openpi's protocol (websocket; msgpack with numpy arrays as openpi_client.msgpack_numpy)
with Debian's python3-websockets, python3-msgpack, python3-numpy (python3-pil for --image). For
a robot program, openpi's own client does the same: `openpi_client.websocket_client_policy.
WebsocketClientPolicy(host, port).infer(obs)` (packages/openpi-client in openpi's repository).
"""
import argparse
import asyncio
import sys
import time

__version__ = "0.1.0"  # pi0.c's version (CMakeLists.txt project(); checked by the tests)

# openpi robot families: (cameras [key, required], state keys with their lengths)
FAMILIES = {
    "libero": ([("observation/image", True), ("observation/wrist_image", True)], [("observation/state", 8)]),
    "droid": ([("observation/exterior_image_1_left", True), ("observation/wrist_image_left", True)],
              [("observation/joint_position", 7), ("observation/gripper_position", 1)]),
    "aloha": ([("images/cam_high", True), ("images/cam_left_wrist", False), ("images/cam_right_wrist", False),
               ("images/cam_low", False)], [("state", 14)]),
    "generic": ([("images/base_0_rgb", True), ("images/left_wrist_0_rgb", False), ("images/right_wrist_0_rgb", False)],
                [("state", 7)]),
}


def family_of(config):
    for name in ("libero", "droid", "aloha"):
        if name in config:
            return name
    return "generic"


class Once(argparse.Action):
    """An option that may be given only once."""

    def __call__(self, parser, ns, values, option_string=None):
        if getattr(ns, "_seen_" + self.dest, False):
            parser.error(f"{option_string} given twice")
        setattr(ns, "_seen_" + self.dest, True)
        setattr(ns, self.dest, values)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="client.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example: python3 examples/client.py --port 8000 --prompt 'open the drawer'")
    p.add_argument("--host", default="127.0.0.1", action=Once, help="server host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, action=Once, help="server port (default 8000)")
    p.add_argument("--image", action="append", default=[], metavar="KEY=FILE",
                   help="a camera image (PNG/JPEG) by observation key; repeatable, once per key")
    p.add_argument("--state", action=Once, metavar="v1,v2,...", help="the robot state (default zeros)")
    p.add_argument("--prompt", action=Once, default="pick up the red block and place it in the bowl",
                   help="the instruction")
    p.add_argument("--config", action=Once, help="openpi config name for the keys (default: the server's metadata)")
    p.add_argument("--api-key", action=Once, help="sent as 'Authorization: Api-Key KEY'")
    p.add_argument("--repeat", type=int, default=1, action=Once, help="send the observation N times (timing)")
    p.add_argument("--format", choices=("table", "json"), default="table", action=Once)
    p.add_argument("--version", action="version", version=f"client.py (pi0.c) {__version__}")
    if not argv:
        p.print_usage(sys.stderr)
        print("client.py: give at least --port (see --help)", file=sys.stderr)
        sys.exit(2)
    a = p.parse_args(argv)
    images = {}
    for item in a.image:
        key, eq, path = item.partition("=")
        if not eq or not key or not path:
            p.error(f"--image {item!r}: expected KEY=FILE")
        if key in images:
            p.error(f"--image {key}= given twice")
        images[key] = path
    a.images = images
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    if a.state is not None:
        try:
            a.state = [float(x) for x in a.state.split(",")]
        except ValueError:
            p.error(f"--state {a.state!r}: expected comma-separated numbers")
    return a


def die(msg):
    print(f"client.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def codec():
    import msgpack
    import numpy as np

    def pack(obj):
        if isinstance(obj, np.ndarray):
            return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
        if isinstance(obj, np.generic):
            return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
        return obj

    def unpack(obj):
        if b"__ndarray__" in obj:
            return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
        if b"__npgeneric__" in obj:
            return np.dtype(obj[b"dtype"]).type(obj[b"data"])
        return obj

    return (lambda x: msgpack.packb(x, default=pack)), (lambda b: msgpack.unpackb(b, object_hook=unpack))


def test_picture(np, seed):
    """A 224x224 RGB gradient with a square, different per camera."""
    y, x = np.mgrid[0:224, 0:224]
    img = np.stack([(x + 40 * seed) % 256, (y * 2) % 256, ((x + y) // 2) % 256], axis=-1).astype(np.uint8)
    img[80 + 10 * seed:140, 60:120] = (200, 30, 30)
    return img


def build_observation(a, md):
    import numpy as np
    images = dict(a.images)
    if md.get("pipeline") == "lerobot" and not a.config:
        cams = [(f"observation.images.{c}" if not c.startswith("observation.") else c, True) for c in md.get("cameras", [])]
        states = [("observation.state", int(md.get("state_dim", 0)) or 7)]
        prompt_key, short = "task", ("observation.images.",)
    else:
        config = a.config or md.get("config") or "generic"
        cams, states = FAMILIES[family_of(config)]
        prompt_key, short = "prompt", ("observation/", "images/")
    known = [k for k, _ in cams]
    resolved = {}
    for key, path in images.items():
        full = key if key in known else next((p + key for p in short if p + key in known), None)
        if full is None:
            die(f"--image {key}: not a camera of this server (cameras: {', '.join(known)})")
        if full in resolved:
            die(f"--image {key}: the camera {full} is given twice")
        resolved[full] = path
    obs = {}
    for i, (key, required) in enumerate(cams):
        if key in resolved:
            try:
                from PIL import Image
                obs[key] = np.asarray(Image.open(resolved[key]).convert("RGB"))
            except ImportError:
                die("--image needs python3-pil (PIL)")
            except OSError as e:
                die(f"--image {key}={resolved[key]}: {e}")
        elif required or not images:
            obs[key] = test_picture(np, i)
    n_state = sum(n for _, n in states)
    if a.state is not None and len(a.state) != n_state:
        die(f"--state has {len(a.state)} values; this robot's state has {n_state} "
            f"({' + '.join(f'{k} {n}' for k, n in states)})")
    values = a.state if a.state is not None else [0.0] * n_state
    at = 0
    for key, n in states:
        obs[key] = np.asarray(values[at:at + n], dtype=np.float32)
        at += n
    obs[prompt_key] = a.prompt
    return obs


async def run(a):
    import websockets
    packb, unpackb = codec()
    headers = {"Authorization": f"Api-Key {a.api_key}"} if a.api_key else None
    url = f"ws://{a.host}:{a.port}"
    t0 = time.perf_counter()
    try:
        ws = await websockets.connect(url, max_size=None, compression=None, extra_headers=headers, open_timeout=10)
    except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as e:
        die(f"cannot connect to {url}: {e} (is `pi0 serve` running on that port?)")
    md = unpackb(await ws.recv())
    connect_ms = 1e3 * (time.perf_counter() - t0)
    obs = build_observation(a, md)
    times = []
    for _ in range(a.repeat):
        t1 = time.perf_counter()
        await ws.send(packb(obs))
        reply = await ws.recv()
        times.append(1e3 * (time.perf_counter() - t1))
        if isinstance(reply, str):
            die(f"the server refused the observation: {reply}")
        r = unpackb(reply)
    await ws.close()
    return md, obs, r, connect_ms, times


def main(argv):
    a = parse_args(argv)
    try:
        import msgpack  # noqa: F401
        import numpy  # noqa: F401
        import websockets  # noqa: F401
    except ImportError as e:
        die(f"{e.name} is missing: apt-get install python3-websockets python3-msgpack python3-numpy")
    md, obs, r, connect_ms, times = asyncio.run(run(a))
    actions = r["actions"]
    st = r.get("server_timing", {})
    if a.format == "json":
        import json
        print(json.dumps({"metadata": {k: v for k, v in md.items() if isinstance(v, (str, int, float, list))},
                          "keys": sorted(obs), "actions": actions.tolist(), "round_trip_ms": times,
                          "server_infer_ms": st.get("infer_ms")}))
        return 0
    print(f"server: {md.get('server', '?')} {md.get('model', '?')} config {md.get('config', md.get('pipeline', '?'))}, "
          f"backend {md.get('backend', '?')}")
    print("sent: " + ", ".join(f"{k} {getattr(v, 'shape', '')}".strip() if not isinstance(v, str) else f"{k} {v!r}"
                              for k, v in obs.items()))
    print(f"actions: {actions.shape[0]} steps x {actions.shape[1]} dims ({actions.dtype})")
    print("step " + "".join(f"{'a%d' % j:>11}" for j in range(actions.shape[1])))
    for i, row in enumerate(actions):
        print(f"{i:4d} " + "".join(f"{v:11.5f}" for v in row))
    best = min(times)
    infer = st.get("infer_ms")
    print(f"timing: connect {connect_ms:.1f} ms; round trip {times[0]:.1f} ms" +
          (f" (best of {len(times)}: {best:.1f} ms)" if len(times) > 1 else "") +
          (f"; server infer {infer:.1f} ms" if isinstance(infer, (int, float)) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
