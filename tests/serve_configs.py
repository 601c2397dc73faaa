#!/usr/bin/python3
"""serve_configs.py — `pi0 serve --config NAME` for every config in pi0.c's table, driven by
openpi's own client (PyPI openpi-client: websocket_client_policy.WebsocketClientPolicy,
action_chunk_broker.ActionChunkBroker, msgpack_numpy; run by the virtual environment of
tests/requirements-client.txt), with the expected actions computed HERE from the model's raw
output with openpi's formulas (written out below from openpi's transforms.py and
policies/*_policy.py; nothing of pi0.c's post-processing is used):

  * every config: the served actions are float64, as openpi's server sends them, and equal openpi's
    output transforms applied in float64 to `pi0 infer --raw`'s output for the same observation
    and seed (max |diff| <= 1e-9); the norm stats' state statistics are longer than the state
    (32 values), as openpi accepts them (Normalize slices them), said once in the server's log;
    ActionChunkBroker steps through a chunk row by row and asks the server again after it;
    metadata (reset_pose for openpi's ALOHA inference configs, the horizon openpi's config sets);
    each required camera missing -> the error text naming it; a repeated request with --seed
    gives identical actions; the default prompt when the observation has none;
  * the state shifted by +1.0 => the actions shifted by exactly +1.0 on the delta mask's dims and
    unchanged on the others (delta configs), unchanged everywhere (the others). The test's norm
    stats make the model blind to such a shift (π0: state std 1e9; π0.5: quantile ranges of 1e4
    centred so that the discretized state stays in its bin), so any change comes from the output
    transforms alone;
  * error texts quoting what a request sent reach openpi's client as text (valid UTF-8, the bytes
    that are not shown escaped): a camera key b"\\xff\\xfe" (ALOHA configs), a dtype '|u\\xff';
  * the server: listening on 0.0.0.0 by default, fresh noise per request without --seed, an 80 MB
    frame answered under the default cap, a frame over --max-message-mb answered with the error
    text and then closed (1011), --api-key (no key / wrong key: HTTP 401, right key: served);
  * refusals: a pi0-FAST config, a config of the other model kind, missing asset norm stats, norm
    stats longer than the model's action_dim (openpi's Unnormalize cannot use them).

    serve_configs.py PI0 TOKENIZER TMP [CONFIG ...]
"""
import concurrent.futures, json, os, signal, socket, subprocess, sys, time, types
import numpy as np
import websockets
import websockets.sync.client
from openpi_client import action_chunk_broker, msgpack_numpy, websocket_client_policy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAIL, PASS, SMALL_MODEL, check  # noqa: E402

packb, unpackb = msgpack_numpy.packb, msgpack_numpy.unpackb
STATS_LEN = 32  # the state statistics written: longer than every robot's state, = the model's action_dim


# ---------------------------------------------------------------- openpi's formulas

def make_bool_mask(*dims):  # transforms.make_bool_mask
    out = []
    for d in dims:
        out += [d > 0] * abs(d)
    return np.array(out, dtype=bool)


def normalize(x, st, quantile):  # transforms.Normalize: stats sliced to x's length, float64
    n = x.shape[-1]
    if quantile:
        return (x - st["q01"][:n]) / (st["q99"][:n] - st["q01"][:n] + 1e-6) * 2.0 - 1.0
    return (x - st["mean"][:n]) / (st["std"][:n] + 1e-6)


def unnormalize(x, st, quantile):  # transforms.Unnormalize
    if quantile:
        q01, q99 = st["q01"], st["q99"]
        d = q01.shape[-1]
        if d < x.shape[-1]:
            return np.concatenate([(x[..., :d] + 1.0) / 2.0 * (q99 - q01 + 1e-6) + q01, x[..., d:]], axis=-1)
        return (x + 1.0) / 2.0 * (q99 - q01 + 1e-6) + q01
    pad = x.shape[-1] - st["mean"].shape[-1]
    mean = np.pad(st["mean"], (0, pad), constant_values=0.0)
    std = np.pad(st["std"], (0, pad), constant_values=1.0)
    return x * (std + 1e-6) + mean


FLIP = np.array([1, -1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1])  # aloha_policy._joint_flip_mask


def gripper_to_angular(v):  # aloha_policy._gripper_to_angular
    lin = v * (0.05800 - 0.01844) + 0.01844
    c = (0.022 ** 2 + lin ** 2 - 0.036 ** 2) / (2 * 0.022 * lin)
    return (np.arcsin(np.clip(c, -1.0, 1.0)) - 0.5476) / (1.6296 - 0.5476)


def gripper_from_angular(v):  # aloha_policy._gripper_from_angular
    return (v + 0.5476 - -0.6213) / (1.4910 - -0.6213)


def aloha_state_to_pi(s):  # _decode_state(adapt_to_pi=True)
    s = FLIP * s
    s[[6, 13]] = gripper_to_angular(s[[6, 13]])
    return s


def aloha_actions_from_pi(a):  # _encode_actions(adapt_to_pi=True)
    a = FLIP * a
    a[:, [6, 13]] = gripper_from_angular(a[:, [6, 13]])
    return a


def openpi_outputs(raw, robot_state, c, stats, model_action_dim):
    """Policy.infer's output side on the model output `raw` [H, A]: outputs = {"state": the state
    after the input transforms (normalized, padded to A; float64 on openpi's PyTorch path, which
    serves a model.safetensors checkpoint), "actions": raw} -> Unnormalize (both) ->
    [AbsoluteActions] -> robot Outputs."""
    q = c["model"] == "pi05"
    s = np.asarray(robot_state, dtype=np.float64).copy()
    if c["robot"] == "aloha":
        s = aloha_state_to_pi(s)                                    # AlohaInputs
    s = normalize(s, stats["state"], q)                              # Normalize
    s = np.pad(s, (0, model_action_dim - len(s)))                    # PadStatesAndActions
    state = unnormalize(s, stats["state"], q)
    actions = unnormalize(raw.astype(np.float64), stats["actions"], q)
    if c["delta"]:                                                   # AbsoluteActions
        mask = make_bool_mask(*c["delta"])
        actions[..., :len(mask)] += np.expand_dims(np.where(mask, state[:len(mask)], 0), axis=-2)
    if c["robot"] == "aloha":                                        # AlohaOutputs
        actions = aloha_actions_from_pi(actions[:, :14])
    return actions[..., :c["dims"]] if c["dims"] else actions


# ---------------------------------------------------------------- the configs, as openpi defines them

ALOHA_CAMS = ["images/cam_high", "images/cam_left_wrist", "images/cam_right_wrist"]
LIBERO_CAMS = ["observation/image", "observation/wrist_image"]
DROID_CAMS = ["observation/exterior_image_1_left", "observation/wrist_image_left"]
RESET = [0, -1.5, 1.5, 0, 0, 0]


def cfg(model, robot, delta, asset, horizon, prompt=None, reset=False, required=None, dims=None):
    req = required if required is not None else {"aloha": ALOHA_CAMS[:1], "libero": LIBERO_CAMS, "droid": DROID_CAMS,
                                                 "generic": []}[robot]
    return {"model": model, "robot": robot, "delta": delta, "asset": asset, "horizon": horizon, "prompt": prompt,
            "reset": reset, "required": req, "dims": dims if dims is not None else {"aloha": 14, "libero": 7, "droid": 8}.get(robot, 0)}


TROSSEN, LIBERO_ID, DROID_ID = "trossen", "physical-intelligence/libero", "droid"
CONFIGS = {  # training/config.py, training/misc/polaris_config.py
    "pi0_aloha": cfg("pi0", "aloha", (6, -1, 6, -1), TROSSEN, 50, reset=True),
    "pi05_aloha": cfg("pi05", "aloha", (6, -1, 6, -1), TROSSEN, 50, reset=True),
    "pi0_aloha_towel": cfg("pi0", "aloha", (6, -1, 6, -1), TROSSEN, 50, "fold the towel", True),
    "pi0_aloha_tupperware": cfg("pi0", "aloha", (6, -1, 6, -1), TROSSEN, 50,
                                "open the tupperware and put the food on the plate", True),
    "pi0_aloha_pen_uncap": cfg("pi0", "aloha", (6, -1, 6, -1), TROSSEN, 50, "uncap the pen"),
    "pi05_aloha_pen_uncap": cfg("pi05", "aloha", (6, -1, 6, -1), TROSSEN, 50, "uncap the pen"),
    "pi0_aloha_sim": cfg("pi0", "aloha", None, "lerobot/aloha_sim_transfer_cube_human", 50, "Transfer cube"),
    "pi0_droid": cfg("pi0", "droid", None, DROID_ID, 10),
    "pi05_droid": cfg("pi05", "droid", None, DROID_ID, 15),
    "pi05_full_droid_finetune": cfg("pi05", "droid", (7, -1), DROID_ID, 16),
    "pi05_droid_finetune": cfg("pi05", "droid", None, DROID_ID, 16),
    "pi05_droid_jointpos_polaris": cfg("pi05", "droid", (7, -1), DROID_ID, 15),
    "pi0_droid_jointpos_polaris": cfg("pi0", "droid", (7, -1), DROID_ID, 10),
    "pi0_droid_jointpos_100k_polaris": cfg("pi0", "droid", (7, -1), DROID_ID, 10),
    "pi0_libero": cfg("pi0", "libero", (6, -1), LIBERO_ID, 50),
    "pi0_libero_low_mem_finetune": cfg("pi0", "libero", (6, -1), LIBERO_ID, 50),
    "pi05_libero": cfg("pi05", "libero", None, LIBERO_ID, 10),
    # pi0.c presets (no delta, model settings from config.json, --norm-stats given)
    "libero": cfg("pi0", "libero", None, LIBERO_ID, 50),
    "droid": cfg("pi0", "droid", None, DROID_ID, 50),
    "aloha": cfg("pi0", "aloha", None, TROSSEN, 50),
    "generic": cfg("pi0", "generic", None, LIBERO_ID, 50, dims=7),  # the libero stats: 7 action dims
}
PRESETS = {"libero", "droid", "aloha", "generic"}
STATE_LEN = {"aloha": 14, "libero": 8, "droid": 8, "generic": 8}
ACTION_LEN = {"aloha": 14, "libero": 7, "droid": 8, "generic": 7}
ROBOT_OF_ASSET = {TROSSEN: "aloha", "lerobot/aloha_sim_transfer_cube_human": "aloha", LIBERO_ID: "libero",
                  DROID_ID: "droid"}


def base_state(robot):
    n = STATE_LEN[robot]
    s = np.array([0.05 * i - 0.2 for i in range(n)], dtype=np.float64)
    if robot == "aloha":
        s[6], s[13] = 0.45, 0.7  # grippers, in Aloha's normalized linear range
    return s


def write_stats(model_dir):
    """Norm stats per asset id: the model blind to a +1 state shift (see the module docstring),
    the actions unnormalized with non-trivial statistics."""
    for asset, robot in ROBOT_OF_ASSET.items():
        n, na = STATE_LEN[robot], ACTION_LEN[robot]
        s0 = base_state(robot)
        p0 = aloha_state_to_pi(s0.copy()) if robot == "aloha" else s0
        R, n0 = 1e4, 0.0039  # quantile: the base state normalizes to 0.0039 (middle of bin 128)
        q01 = p0 - R * (1 + n0) / 2
        # longer than the state, as openpi accepts (Normalize slices to the state's length): values
        # past the state that would change the actions if they were used for it
        extra = STATS_LEN - n
        stats = {"state": {"mean": [0.0] * n + [5.0] * extra, "std": [1e9] * n + [0.01] * extra,
                           "q01": q01.tolist() + [3.0] * extra, "q99": (q01 + R).tolist() + [4.0] * extra},
                 "actions": {"mean": [0.3 * i - 1 for i in range(na)], "std": [0.5 + 0.1 * i for i in range(na)],
                             "q01": [-1 - 0.2 * i for i in range(na)], "q99": [1 + 0.3 * i for i in range(na)]}}
        d = os.path.join(model_dir, "assets", asset)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "norm_stats.json"), "w") as f:
            json.dump({"norm_stats": stats}, f)


def read_stats(path):
    ns = json.load(open(path))["norm_stats"]
    return {k: {q: np.asarray(v, dtype=np.float64) for q, v in ns[k].items()} for k in ("state", "actions")}


# ---------------------------------------------------------------- observations

def images(tmp):
    """Camera frames (uint8 HWC, from a photograph) and the PNGs `pi0 infer` reads: same pixels."""
    from PIL import Image
    photo = np.asarray(Image.open("/usr/lib/python3/dist-packages/skimage/data/coffee.png").convert("RGB"))
    frames = {"a": photo[::5, ::5].copy(), "b": photo[100:260:2, 200:420:2].copy(), "c": photo[::-7, ::6].copy(),
              "d": photo[50:90, 50:120].copy()}
    paths = {}
    for k, v in frames.items():
        paths[k] = os.path.join(tmp, f"cam_{k}.png")
        Image.fromarray(v).save(paths[k])
    return frames, paths


def observation(name, c, frames, state, prompt=True):
    """The observation openpi's example robots send for this config (keys, layouts, dtypes)."""
    r = c["robot"]
    if r == "aloha":  # examples/aloha_real: images CHW uint8 under "images", cam_low included
        obs = {"images": {"cam_high": frames["a"].transpose(2, 0, 1).copy(),
                          "cam_left_wrist": frames["b"].transpose(2, 0, 1).copy(),
                          "cam_right_wrist": frames["c"].transpose(2, 0, 1).copy(),
                          "cam_low": frames["d"].transpose(2, 0, 1).copy()},
               "state": np.asarray(state, np.float64)}
    elif r == "libero":
        obs = {"observation/image": frames["a"], "observation/wrist_image": frames["b"],
               "observation/state": np.asarray(state, np.float64)}
    elif r == "droid":  # a scalar gripper (numpy float64), exterior_image_2_left sent and unused
        obs = {"observation/exterior_image_1_left": frames["a"], "observation/exterior_image_2_left": frames["c"],
               "observation/wrist_image_left": frames["b"],
               "observation/joint_position": np.asarray(state[:7], np.float64),
               "observation/gripper_position": np.float64(state[7])}
    else:
        obs = {"images": {"base_0_rgb": frames["a"], "left_wrist_0_rgb": frames["b"]},
               "state": np.asarray(state, np.float64)}
    if prompt:
        obs["prompt"] = f"do the {name} task"
    return obs


def infer_images(c, paths):
    r = c["robot"]
    if r == "aloha":
        return [f"images/cam_high={paths['a']}", f"cam_left_wrist={paths['b']}", f"cam_right_wrist={paths['c']}"]
    keys = {"libero": LIBERO_CAMS, "droid": DROID_CAMS, "generic": ["base_0_rgb", "left_wrist_0_rgb"]}[r]
    return [f"{keys[0]}={paths['a']}", f"{keys[1]}={paths['b']}"]


def without(obs, key):
    o = dict(obs)
    if key.startswith("images/"):
        o["images"] = {k: v for k, v in obs["images"].items() if k != key[len("images/"):]}
    else:
        del o[key]
    return o


# ---------------------------------------------------------------- servers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, pi0, args, log):
        self.port = free_port()
        self.log = log
        self.proc = subprocess.Popen([pi0, "serve", "--port", str(self.port), *args], stderr=open(log, "w"))
        for _ in range(600):
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {open(log).read()}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        check(rc == 0, f"server exited with {rc}: {open(self.log).read()[-500:]}")
        return open(self.log).read()


def connect(port, host="127.0.0.1", **kw):
    """openpi's client, as a robot makes it (it reads the metadata on connect)."""
    return websocket_client_policy.WebsocketClientPolicy(host=host, port=port, **kw)


def close_code(cl, timeout=60):
    """The code the server closes cl's connection with (None: no close within the time)."""
    try:
        cl._ws.recv(timeout=timeout)
        return None
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    except TimeoutError:
        return None


def send_frame(cl, frame):
    """Makes cl's next infer() send `frame` as it is (for frames no packer writes), through the
    client's own send and receive."""
    cl._packer = types.SimpleNamespace(pack=lambda obs: frame)


def expect_error(port, obs, needle, what, frame=None):
    """One bad request through openpi's client: its RuntimeError carries the server's text naming
    the problem (a text frame that is not UTF-8 would close the connection with 1007 instead),
    then close code 1011."""
    cl = connect(port)
    if frame is not None:
        send_frame(cl, frame)
    try:
        cl.infer(obs)
        msg = None
    except RuntimeError as e:
        msg = str(e).removeprefix("Error in inference server:\n")
    except websockets.exceptions.ConnectionClosed as e:
        msg = f"connection closed with {e.rcvd.code if e.rcvd else None} ({e})"
    code = close_code(cl)
    ok = check(msg is not None and needle in msg and code == 1011, f"{what}: got {msg!r:.300} close {code}")
    return msg if ok else None


def raw_actions(pi0, model, name, c, paths, tok, state, seed, extra):
    out = subprocess.run([pi0, "infer", "--model", model, "--config", name, "--tokenizer", tok, "--raw", "--seed", str(seed),
                          "--format", "json", "--state", ",".join(repr(float(x)) for x in state), "--prompt",
                          f"do the {name} task", *sum((["--image", i] for i in infer_images(c, paths)), []), *extra],
                         capture_output=True, text=True)
    if not check(out.returncode == 0, f"{name}: pi0 infer --raw failed: {out.stderr}"):
        return None
    return np.asarray(json.loads(out.stdout)["actions"], dtype=np.float32)


class Counting:
    """A policy between ActionChunkBroker and openpi's client that counts the server calls."""

    def __init__(self, policy):
        self.policy, self.calls = policy, 0

    def infer(self, obs):
        self.calls += 1
        return self.policy.infer(obs)

    def reset(self):
        self.policy.reset()


def test_config(pi0, tok, tmp, models, frames, paths, name, results, pool):
    c = CONFIGS[name]
    model = models[c["model"]]
    extra = ["--norm-stats", os.path.join(model, "assets", c["asset"], "norm_stats.json")] if name in PRESETS else []
    stats = read_stats(os.path.join(model, "assets", c["asset"], "norm_stats.json"))
    s0 = base_state(c["robot"])
    s1 = s0 + 1.0
    seed = 7
    # the model's raw output for the same observation and seed, while the server starts
    raw_f = pool.submit(raw_actions, pi0, model, name, c, paths, tok, s0, seed, extra)
    srv = Server(pi0, ["--model", model, "--config", name, "--tokenizer", tok, "--seed", str(seed), "--host", "127.0.0.1",
                       *extra], os.path.join(tmp, f"serve_{name.replace('/', '_')}.log"))
    try:
        cl = connect(srv.port)
        md = cl.get_server_metadata()
        H = c["horizon"]
        check(md.get("config") == name and md.get("action_horizon") == H and md.get("action_dim") == (c["dims"] or 32),
              f"{name}: metadata {md}")
        if c["reset"]:
            check(md.get("reset_pose") == RESET, f"{name}: reset_pose {md.get('reset_pose')} != openpi's {RESET}")
        else:
            check("reset_pose" not in md, f"{name}: no reset_pose expected, got {md.get('reset_pose')}")
        a1 = cl.infer(observation(name, c, frames, s0))["actions"]
        a1b = cl.infer(observation(name, c, frames, s0))["actions"]
        a2 = cl.infer(observation(name, c, frames, s1))["actions"]
        check(a1.dtype == np.float64 and a2.dtype == np.float64, f"{name}: actions are {a1.dtype}, openpi sends float64")
        check(np.array_equal(a1, a1b), f"{name}: --seed: two identical requests gave different actions")
        # ActionChunkBroker, as openpi's robot runtimes use it: one row per step, a new chunk after H
        broker_calls = Counting(cl)
        broker = action_chunk_broker.ActionChunkBroker(broker_calls, action_horizon=H)
        rows = [broker.infer(observation(name, c, frames, s0))["actions"] for _ in range(H + 1)]
        check(np.array_equal(np.stack(rows[:H]), a1) and np.array_equal(rows[H], a1[0]) and broker_calls.calls == 2,
              f"{name}: ActionChunkBroker: {broker_calls.calls} server calls for {H + 1} steps, rows == the chunk: "
              f"{np.array_equal(np.stack(rows[:H]), a1)}")
        if c["prompt"]:  # the config's default prompt when the observation has none
            ad = cl.infer(observation(name, c, frames, s0, prompt=False))["actions"]
            o = observation(name, c, frames, s0)
            o["prompt"] = c["prompt"]
            ap = cl.infer(o)["actions"]
            check(np.array_equal(ad, ap) and not np.array_equal(ad, a1),
                  f"{name}: without a prompt the default prompt {c['prompt']!r} must be used")
        cl._ws.close()
        for key in c["required"]:  # openpi raises on a missing required camera
            expect_error(srv.port, without(observation(name, c, frames, s0), key), f"missing key '{key}'",
                         f"{name}: without {key}")
        if c["robot"] == "aloha":  # AlohaInputs: images must be among EXPECTED_CAMERAS
            o = observation(name, c, frames, s0)
            o["images"]["cam_front"] = o["images"]["cam_high"]
            expect_error(srv.port, o, "unknown camera 'images/cam_front'", f"{name}: unknown camera")
            o = observation(name, c, frames, s0)  # a key that is not UTF-8: shown escaped
            o["images"][b"\xff\xfe"] = o["images"]["cam_high"]
            msg = expect_error(srv.port, o, "unknown camera 'images/\\xff\\xfe'", f"{name}: camera key b'\\xff\\xfe'")
            if msg:
                print(f"  {name}: camera key b'\\xff\\xfe' -> {msg[:70]}...", flush=True)
    finally:
        log = srv.stop()
    n_note = log.count(f"norm_stats.state has {STATS_LEN} values and the state {len(s0)}")
    check(n_note == 1, f"{name}: the sliced state statistics must be said once in the log, not {n_note} times: "
          f"{log[-600:]}")
    raw = raw_f.result()
    if raw is None:
        return
    A = raw.shape[1]
    check(raw.shape[0] == H and a1.shape == (H, c["dims"] or A), f"{name}: raw {raw.shape}, served {a1.shape}")
    e1 = openpi_outputs(raw, s0, c, stats, A)
    e2 = openpi_outputs(raw, s1, c, stats, A)
    d1, d2 = np.abs(a1 - e1).max(), np.abs(a2 - e2).max()
    shift = a2 - a1
    mask = np.zeros(a1.shape[1], bool)
    if c["delta"]:
        m = make_bool_mask(*c["delta"])
        mask[:len(m)] = m[:a1.shape[1]]
    ds = max(np.abs(shift[:, mask] - 1.0).max() if mask.any() else 0.0, np.abs(shift[:, ~mask]).max())
    results.append((name, d1, d2, ds, int(mask.sum())))
    print(f"  {name:33s} {c['model']:4s} {a1.shape[0]:2d}x{a1.shape[1]:<2d} {a1.dtype} served vs openpi's formulas on the "
          f"raw output: max |diff| {d1:.2e} (state +1: {d2:.2e}); state +1 -> +1 on {int(mask.sum()):2d} dims, 0 on the "
          f"rest: max error {ds:.2e}", flush=True)
    check(d1 <= 1e-9 and d2 <= 1e-9, f"{name}: served actions differ from openpi's formulas: {d1:.3g}, {d2:.3g}")
    check(ds <= 1e-9, f"{name}: a +1 state shift moved the actions by {shift[0].round(6).tolist()} (mask {mask.astype(int).tolist()})")


# ---------------------------------------------------------------- server behaviour

def listening_on_all(port):
    """/proc/net/tcp: a LISTEN socket (state 0A) on 0.0.0.0:port."""
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[1] == f"00000000:{port:04X}":
            return True
    return False


def local_ip():
    """A non-loopback address of this machine, or None."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent
        ip = s.getsockname()[0]
        s.close()
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


def send_then_read(port, frame, **kw):
    """One frame through openpi's client (it sends the whole frame, then reads the answer):
    (actions or the error text or how the connection ended, the close code after an error)."""
    cl = connect(port, **kw)
    send_frame(cl, frame)
    try:
        r = cl.infer(None)
    except RuntimeError as e:
        return str(e).removeprefix("Error in inference server:\n"), close_code(cl)
    except websockets.exceptions.ConnectionClosed as e:
        return f"closed without an answer ({e})", e.rcvd.code if e.rcvd else None
    cl._ws.close()
    return r, None


def http_status(port, headers):
    """The HTTP status of a WebSocket handshake with these headers (101: accepted)."""
    try:
        websockets.sync.client.connect(f"ws://127.0.0.1:{port}", additional_headers=headers).close()
        return 101
    except websockets.exceptions.InvalidStatus as e:
        return e.response.status_code


def test_server(pi0, tok, tmp, models, frames):
    c = CONFIGS["pi0_libero"]
    model = models["pi0"]
    big = np.zeros((4000, 6667, 3), np.uint8)  # 80 MB: more than three 1080p cameras (18.7 MB)
    big[::7, ::5] = 200
    obs_big = observation("pi0_libero", c, frames, base_state("libero"))
    obs_big["observation/image"] = big
    frame_big = packb(obs_big)
    # defaults: every interface, fresh noise, a 256 MB cap
    srv = Server(pi0, ["--model", model, "--config", "pi0_libero", "--tokenizer", tok], os.path.join(tmp, "serve_default.log"))
    try:
        check(listening_on_all(srv.port), f"default host: no LISTEN socket on 0.0.0.0:{srv.port}")
        ip = local_ip()
        if ip:
            cl = connect(srv.port, host=ip)
            check(cl.get_server_metadata().get("config") == "pi0_libero", f"no metadata through {ip}")
            cl._ws.close()
        print(f"  default host: LISTEN on 0.0.0.0:{srv.port}; reached through {ip or '(no non-loopback address)'}", flush=True)
        cl = connect(srv.port)
        o = observation("pi0_libero", c, frames, base_state("libero"))
        r1, r2 = cl.infer(o)["actions"], cl.infer(o)["actions"]
        d = float(np.abs(r1 - r2).max())
        print(f"  no --seed: two identical requests differ by max |diff| {d:.3g} (fresh noise)", flush=True)
        check(d > 1e-3, f"without --seed two identical requests must get fresh noise (max |diff| {d})")
        t0 = time.monotonic()
        r, _ = send_then_read(srv.port, frame_big)
        ok = isinstance(r, dict) and r["actions"].shape == (50, 7)
        print(f"  {len(frame_big) / 1e6:.1f} MB frame under the default cap: {'answered with actions' if ok else r!r:.200} "
              f"in {time.monotonic() - t0:.1f} s", flush=True)
        check(ok, f"an 80 MB observation must be answered: {r!r:.300}")
        cl._ws.close()
        # error texts quoting a request's bytes reach openpi's client as text (UTF-8, escaped)
        fields = {"observation/image": {b"__ndarray__": True, b"data": bytes(12), b"dtype": b"|u\xff",
                                        b"shape": [2, 2, 3]}, "observation/state": np.zeros(8), "prompt": "x"}
        raw = msgpack_numpy.packb(fields)
        frame = raw.replace(b"\xc4\x03|u\xff", b"\xa3|u\xff")  # the dtype as a msgpack str, as numpy's packer sends it
        check(frame != raw, "the test frame carries the dtype as a str")
        msg, code = send_then_read(srv.port, frame)
        print(f"  dtype '|u\\xff' (a str that is not UTF-8) -> {msg!r:.110}, close {code}", flush=True)
        check(isinstance(msg, str) and "unsupported dtype '|u\\xff'" in msg and code == 1011,
              f"a dtype that is not UTF-8 must come back escaped in a text frame, then 1011: {msg!r:.200} {code}")
        long_key = {"observation/" + "\xe9" * 300: 1, "observation/state": np.zeros(8)}
        frame = msgpack_numpy.packb({k.encode("latin-1") if k != "observation/state" else k: v
                                     for k, v in long_key.items()})
        msg, code = send_then_read(srv.port, frame)
        print(f"  a 312-byte key of latin-1 bytes -> {msg!r:.110}, close {code}", flush=True)
        check(isinstance(msg, str) and "a key of more than 256 bytes" in msg and "\\xe9" in msg and code == 1011,
              f"a long non-UTF-8 key: {msg!r:.200} {code}")
    finally:
        log = srv.stop()
    check(f"listening on ws://0.0.0.0:{srv.port}" in log, f"the start line must print the address: {log[-400:]}")
    # a cap, an API key, a fixed seed
    srv = Server(pi0, ["--model", model, "--config", "pi0_libero", "--tokenizer", tok, "--max-message-mb", "4",
                       "--api-key", "s3cret", "--seed", "3", "--host", "127.0.0.1"], os.path.join(tmp, "serve_key.log"))
    try:
        for label, key in (("no key", None), ("wrong key", "nope")):
            try:
                connect(srv.port, api_key=key)._ws.close()
                status = 101
            except websockets.exceptions.InvalidStatus as e:
                status = e.response.status_code
            print(f"  --api-key, {label}: HTTP {status}", flush=True)
            check(status == 401, f"--api-key: {label} must get HTTP 401, got {status}")
        status = http_status(srv.port, {"Authorization": "Bearer s3cret"})
        print(f"  --api-key, bearer: HTTP {status}", flush=True)
        check(status == 401, f"--api-key: 'Bearer KEY' must get HTTP 401, got {status}")
        cl = connect(srv.port, api_key="s3cret")
        md = cl.get_server_metadata()
        r = cl.infer(observation("pi0_libero", c, frames, base_state("libero")))
        check(md.get("config") == "pi0_libero" and r["actions"].shape == (50, 7),
              f"--api-key: the right key must be served: {md} {r['actions'].shape}")
        cl._ws.close()
        print("  --api-key, right key (openpi's client, api_key=...): metadata and actions", flush=True)
        msg, code = send_then_read(srv.port, frame_big, api_key="s3cret")
        print(f"  {len(frame_big) / 1e6:.1f} MB frame over --max-message-mb 4: {msg!r:.110}, close {code}", flush=True)
        check(isinstance(msg, str) and "larger than the 4194304-byte limit" in msg and code == 1011,
              f"a frame over the cap must be answered with the error text, then 1011: {msg!r:.200} {code}")
        msg, code = send_then_read(srv.port, b"\x00" * (5 << 20), api_key="s3cret")
        check(isinstance(msg, str) and "larger than" in msg and code == 1011, f"5 MB over the cap: {msg!r:.200} {code}")
    finally:
        srv.stop()


def test_refusals(pi0, tok, tmp, models):
    cases = [
        (["--config", "pi0_fast_droid", "--model", models["pi0"]], "pi0-FAST"),
        (["--config", "pi05_libero", "--model", models["pi0"]], "is a pi0.5 policy but"),
        (["--config", "pi0_libero", "--model", models["bare"]], "assets/physical-intelligence/libero/norm_stats.json"),
        (["--config", "pi0_libro", "--model", models["pi0"]], "did you mean 'pi0_libero'"),
    ]
    # statistics longer than the model's action_dim (32): openpi's Unnormalize cannot broadcast them
    # onto the 32 values of "actions" or of the padded "state" (transforms.py _unnormalize)
    for key, needle in (("state", "norm_stats.state has 40 values, more than the model's action_dim 32"),
                        ("actions", "norm_stats.actions has 40 values, more than the model's action_dim 32")):
        ns = json.load(open(os.path.join(models["pi0"], "assets", LIBERO_ID, "norm_stats.json")))
        ns["norm_stats"][key] = {q: (v * 40)[:40] for q, v in ns["norm_stats"][key].items()}
        path = os.path.join(tmp, f"long_{key}.json")
        with open(path, "w") as f:
            json.dump(ns, f)
        cases.append((["--config", "pi0_libero", "--model", models["pi0"], "--norm-stats", path], needle))
    for args, needle in cases:
        out = subprocess.run([pi0, "serve", "--tokenizer", tok, "--port", str(free_port()), *args], capture_output=True,
                             text=True, timeout=120)
        line = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
        print(f"  serve {' '.join(args[:2])}: exit {out.returncode}: {line[:150]}", flush=True)
        check(out.returncode == 2 and needle in out.stderr, f"serve {args}: exit {out.returncode}, {out.stderr!r:.300}")


def main():
    pi0, tok, tmp = sys.argv[1:4]
    only = sys.argv[4:] or list(CONFIGS)
    os.makedirs(tmp, exist_ok=True)
    t0 = time.monotonic()
    models = {"pi0": os.path.join(tmp, "pi0"), "pi05": os.path.join(tmp, "pi05"), "bare": os.path.join(tmp, "bare")}
    for kind in models:  # small models (56-pixel images, a 512-token vocabulary), 32 action dims
        spec = dict(SMALL_MODEL, type="pi05" if kind == "pi05" else "pi0")
        with open(os.path.join(tmp, f"{kind}.json"), "w") as f:
            json.dump(spec, f)
        subprocess.run([pi0, "gen-model", "--config", os.path.join(tmp, f"{kind}.json"), "--dtype", "bf16", "--seed", "21",
                        "--out", models[kind]], check=True, capture_output=True)
    write_stats(models["pi0"])
    write_stats(models["pi05"])
    frames, paths = images(tmp)
    results = []

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        for name in only:
            test_config(pi0, tok, tmp, models, frames, paths, name, results, pool)
    if sys.argv[4:] == []:
        test_server(pi0, tok, tmp, models, frames)
    if sys.argv[4:] == []:
        test_refusals(pi0, tok, tmp, models)
    if results:
        print(f"configs: {len(results)}, worst served-vs-openpi max |diff| {max(r[1] for r in results):.2e}, "
              f"worst shift error {max(r[3] for r in results):.2e}")
    print(f"serve_configs: {PASS[0]} passed, {FAIL[0]} failed in {time.monotonic() - t0:.0f} s")
    sys.exit(1 if FAIL[0] else 0)


if __name__ == "__main__":
    main()
