#!/usr/bin/python3
"""lerobot_pipeline.py — lerobot checkpoints run with lerobot's pipeline (issue 13), end to end.

Generates lerobot-layout π0 (relative actions on) and π0.5 checkpoints (`pi0 gen-model --layout
lerobot`: config.json with features, processor JSONs, statistics safetensors) and checks, with
lerobot's formulas written out HERE (lerobot.md §3, §5; nothing of pi0.c's post-processing):

  * `pi0 infer` and `pi0 serve` take lerobot's keys (observation.images.<cam>, observation.state,
    task) and say that the lerobot pipeline runs (stderr, server metadata); the served actions
    equal `pi0 infer`'s for the same observation and seed;
  * the actions == slice to the action feature -> unnormalize (float32, lerobot's order) ->
    + raw state on the relative dims (π0), applied to `pi0 infer --raw`'s output;
  * the model's state input == (x - mean) / (std + 1e-8) in float32, zero-padded (π0);
    π0.5: a state change inside one bin of the normalized state gives the same tokens, across
    a bin edge different ones;
  * a masked camera changes nothing: the saved inputs with the masked slots rewritten give the
    same actions through `pi0 run`; statistics of a feature the checkpoint does not normalize
    (the cameras: VISUAL is IDENTITY; a feature outside `features`) change nothing, while the
    state's statistics do;
  * refusals: wrong state length, an openpi --config on a lerobot checkpoint.

    lerobot_pipeline.py PI0 TOKENIZER TMP
"""
import asyncio, json, os, shutil, socket, struct, subprocess, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import FAIL, PASS, SMALL_MODEL, check  # noqa: E402
from serve_client import Client  # noqa: E402

PI0, TOK, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = {**SMALL_MODEL, "action_dim": 12, "action_horizon": 6, "max_token_len": 48}
S, A = 6, 5
EPS = np.float32(1e-8)


# ---------------------------------------------------------------- safetensors (numpy only)

DT = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def st_read(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def st_write(path, tensors):
    head, blobs, off = {}, [], 0
    rev = {np.dtype(v): k for k, v in DT.items()}
    for k, a in tensors.items():
        a = np.ascontiguousarray(a)
        head[k] = {"dtype": rev[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- lerobot's formulas

def stats_file(model, pipe, registry):
    cfg = json.load(open(os.path.join(model, f"policy_{pipe}.json")))
    for i, step in enumerate(cfg["steps"]):
        if step["registry_name"] == registry:
            return os.path.join(model, step.get("state_file", f"policy_{pipe}_step_{i}_{registry}.safetensors")), step
    raise KeyError(registry)


def unnormalize(x, mode, st, key):  # normalize_processor._apply_transform, inverse, float32
    x = x.astype(np.float32)
    if mode == "MEAN_STD":
        return x * st[key + ".std"] + st[key + ".mean"]
    if mode == "QUANTILES":
        lo, hi = st[key + ".q01"], st[key + ".q99"]
        d = hi - lo
        d = np.where(d == 0, EPS, d).astype(np.float32)
        return (x + np.float32(1)) * d / np.float32(2) + lo
    raise ValueError(mode)


def normalize(x, mode, st, key):  # forward, float32, lerobot's order
    x = np.asarray(x, dtype=np.float32)
    if mode == "MEAN_STD":
        return (x - st[key + ".mean"]) / (st[key + ".std"] + EPS)
    if mode == "QUANTILES":
        lo, hi = st[key + ".q01"], st[key + ".q99"]
        d = hi - lo
        d = np.where(d == 0, EPS, d).astype(np.float32)
        return np.float32(2) * (x - lo) / d - np.float32(1)
    raise ValueError(mode)


def expected_actions(model, raw, state):
    cfg = json.load(open(os.path.join(model, "config.json")))
    path, step = stats_file(model, "postprocessor", "unnormalizer_processor")
    mode = step["config"]["norm_map"]["ACTION"]
    a = unnormalize(raw[:, :A], mode, st_read(path), "action")
    if cfg.get("use_relative_actions"):
        names = cfg.get("action_feature_names") or []
        excl = cfg.get("relative_exclude_joints", ["gripper"])
        mask = np.array([not (j < len(names) and any(t in names[j] for t in excl)) for j in range(A)])
        s = np.asarray(state, dtype=np.float32)[:A]
        a = a + np.where(mask[:len(s)], s, np.float32(0))
    return a


# ---------------------------------------------------------------- running pi0

def run(*args, ok=True):
    p = subprocess.run([PI0, *args], capture_output=True, text=True, timeout=300)
    if ok and p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        raise SystemExit(f"FAIL: pi0 {' '.join(args)} exited {p.returncode}")
    return p


def infer(model, image, state, task, *extra):
    p = run("infer", "--model", model, "--tokenizer", TOK, "--image", f"top={image}", "--state",
            ",".join(repr(float(v)) for v in state), "--prompt", task, "--format", "json", "--threads", "1", *extra)
    return np.array(json.loads(p.stdout)["actions"], dtype=np.float32), p.stderr


def pi0_run(model, inputs, out):
    run("run", "--model", model, "--inputs", inputs, "--out", out, "--threads", "1")
    return st_read(out)["actions"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve_once(port, obs):
    for _ in range(300):
        try:
            c = await Client.connect(port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise SystemExit("FAIL: pi0 serve did not start")
    r = await c.infer(obs)
    await c.ws.close()
    return c.metadata, r


def test_model(pi05):
    name = "pi05" if pi05 else "pi0"
    M = os.path.join(TMP, name)
    cfg_path = os.path.join(TMP, f"{name}.json")
    json.dump({**MODEL, "pi05": pi05}, open(cfg_path, "w"))
    gen = ["gen-model", "--config", cfg_path, "--layout", "lerobot", "--out", M, "--seed", "3",
           "--state-dim", str(S), "--action-dim", str(A)]
    run(*gen, *(["--pi05"] if pi05 else ["--relative-actions"]))
    img = os.path.join(TMP, "img.png")
    run("gen-image", "--out", img, "--width", "80", "--height", "60")
    state = [0.3, -0.2, 0.5, 0.1, -0.4, 0.25]
    task = "pick up the red block"

    acts, err = infer(M, img, state, task)
    check("pipeline lerobot (current)" in err, f"{name}: infer says the lerobot pipeline runs ({err.strip()[-300:]})")
    check(acts.shape == (MODEL["action_horizon"], A), f"{name}: actions are [chunk_size, A] = {acts.shape}")
    raw, _ = infer(M, img, state, task, "--raw")
    exp = expected_actions(M, raw, state)
    d = float(np.max(np.abs(acts - exp)))
    print(f"{name}: actions vs lerobot's formulas on the raw output: max |diff| {d:.3g}")
    check(d <= 1e-5, f"{name}: actions == lerobot's post-processing of the raw output (max |diff| {d})")

    # the model's inputs
    inp = os.path.join(TMP, f"{name}_in.safetensors")
    infer(M, img, state, task, "--save-inputs", inp)
    saved = st_read(inp)
    pre_path, pre_step = stats_file(M, "preprocessor", "normalizer_processor")
    pre = st_read(pre_path)
    smode = pre_step["config"]["norm_map"]["STATE"]
    ns = normalize(state, smode, pre, "observation.state")
    if not pi05:
        want = np.zeros(MODEL["action_dim"], np.float32)
        want[:S] = ns
        d = float(np.max(np.abs(saved["state"].reshape(-1) - want)))
        check(d == 0.0, f"{name}: model state == lerobot's float32 normalization, zero-padded (max |diff| {d})")
    else:  # a state change inside the normalized value's bin keeps the prompt, across an edge changes it
        lo, hi = pre["observation.state.q01"][0], pre["observation.state.q99"][0]
        def raw_of(v):  # the raw state whose normalized value is v (dim 0)
            return float((v + 1) / 2 * (hi - lo) + lo)
        b = int(np.floor((ns[0] + 1) * 128))
        inside = list(state)
        inside[0] = raw_of(-1 + (b + 0.5) / 128)
        across = list(state)
        across[0] = raw_of(-1 + (b + 1.5) / 128)
        toks = []
        for st_ in (inside, across):
            infer(M, img, st_, task, "--save-inputs", inp)
            toks.append(st_read(inp)["tokens"])
        infer(M, img, [raw_of(-1 + (b + 0.25) / 128)] + state[1:], task, "--save-inputs", inp)
        same = st_read(inp)["tokens"]
        check(np.array_equal(toks[0], same), f"{name}: a state change inside a bin keeps the prompt tokens")
        check(not np.array_equal(toks[0], toks[1]), f"{name}: a state change across a bin edge changes the prompt tokens")
        infer(M, img, state, task, "--save-inputs", inp)
        saved = st_read(inp)

    # a masked camera changes nothing (slots past the given cameras are masked)
    masks = saved["image_masks"].reshape(-1)
    check(list(masks) == [1, 0, 0], f"{name}: one camera given -> masks {list(masks)}")
    out = os.path.join(TMP, f"{name}_out.safetensors")
    a0 = pi0_run(M, inp, out)
    rng = np.random.default_rng(1)
    mod = dict(saved)
    im = mod["images"].copy().reshape(-1, *mod["images"].shape[-3:])  # [cameras, 3, R, R]
    im[1:] = rng.uniform(-1, 1, im[1:].shape).astype(np.float32)
    mod["images"] = im
    inp2 = os.path.join(TMP, f"{name}_in2.safetensors")
    st_write(inp2, mod)
    a1 = pi0_run(M, inp2, out)
    check(np.array_equal(a0, a1), f"{name}: rewriting the masked cameras changes nothing")
    im[0] = rng.uniform(-1, 1, im[0].shape).astype(np.float32)
    st_write(inp2, mod)
    a2 = pi0_run(M, inp2, out)
    check(not np.array_equal(a0, a2), f"{name}: rewriting the given camera changes the actions")

    # statistics of features the checkpoint does not normalize change nothing
    keep = dict(pre)
    changed = dict(pre)
    for k in list(changed):
        if k.startswith("observation.images."):
            changed[k] = changed[k] * 3 + 7
    changed["observation.velocity.mean"] = np.full(S, 5, np.float32)
    changed["observation.velocity.std"] = np.full(S, 9, np.float32)
    st_write(pre_path, changed)
    b1, _ = infer(M, img, state, task)
    check(np.array_equal(acts, b1), f"{name}: statistics of unnormalized features change nothing")
    changed = dict(pre)
    for k in list(changed):
        if k.startswith("observation.state."):
            changed[k] = changed[k] * np.float32(1.5) + np.float32(0.5)
    st_write(pre_path, changed)
    b2, _ = infer(M, img, state, task)
    check(not np.array_equal(acts, b2), f"{name}: the state's statistics do change the actions")
    st_write(pre_path, keep)

    # refusals
    p = run("infer", "--model", M, "--tokenizer", TOK, "--image", f"top={img}", "--state", "1,2,3", "--prompt", "x",
            ok=False)
    check(p.returncode == 2 and f"has {S}" in p.stderr, f"{name}: a wrong state length is refused naming S ({p.stderr.strip()})")
    p = run("infer", "--model", M, "--tokenizer", TOK, "--config", "pi0_libero", "--state", "1", ok=False)
    check(p.returncode == 2 and "lerobot" in p.stderr, f"{name}: an openpi config on a lerobot checkpoint is refused")

    # pi0 serve with lerobot's keys: the same actions as pi0 infer (both the noise of seed 0)
    port = free_port()
    srv = subprocess.Popen([PI0, "serve", "--model", M, "--tokenizer", TOK, "--port", str(port), "--host", "127.0.0.1",
                            "--seed", "0", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    try:
        from PIL import Image
        frame = np.asarray(Image.open(img).convert("RGB"))
        obs = {"observation.images.top": frame, "observation.state": np.asarray(state, dtype=np.float64), "task": task}
        meta, r = asyncio.run(serve_once(port, obs))
    finally:
        srv.terminate()
        serr = srv.communicate(timeout=30)[1]
    check(meta.get("pipeline") == "lerobot", f"{name}: server metadata says the lerobot pipeline ({meta})")
    check("pipeline lerobot (current)" in serr, f"{name}: pi0 serve prints the pipeline")
    sa = np.asarray(r["actions"], dtype=np.float32)
    d = float(np.max(np.abs(sa - acts))) if sa.shape == acts.shape else float("inf")
    print(f"{name}: served vs infer: max |diff| {d:.3g}")
    check(d == 0.0, f"{name}: pi0 serve == pi0 infer with lerobot's keys (max |diff| {d})")


def main():
    shutil.rmtree(TMP, ignore_errors=True)
    os.makedirs(TMP)
    test_model(False)
    test_model(True)
    # openpi checkpoints keep openpi's pipeline
    M = os.path.join(TMP, "openpi")
    run("gen-model", "--config", os.path.join(TMP, "pi0.json"), "--out", M)
    p = run("infer", "--model", M, "--tokenizer", TOK, "--image", f"base_0_rgb={os.path.join(TMP, 'img.png')}",
            "--state", "1,2", "--prompt", "x")
    check("pipeline openpi" in p.stderr, "an openpi checkpoint runs openpi's pipeline")
    print(f"lerobot pipeline: {PASS[0]} passed, {FAIL[0]} failed")
    return 1 if FAIL[0] else 0


if __name__ == "__main__":
    sys.exit(main())
