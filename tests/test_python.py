#!/usr/bin/python3
"""test_python.py — the Python binding (python/pi0) against `pi0 infer` (Debian's python3-numpy,
python3-pil; PYTHONPATH=python, PI0_LIBRARY=the built libpi0.so):

  * pi0.Policy(...).infer(obs) with openpi's keys gives the actions `pi0 infer` prints for the
    same observation and seed (identical), for an openpi config (pi0_libero: delta actions) and a
    nested-map one (pi0_aloha: reset_pose in metadata, images/cam_high CHW);
  * float images in [0, 1] give the actions of their uint8 values; noise= as openpi's infer;
  * errors raise pi0.Pi0Error carrying the library's message (missing camera, unknown config,
    a wrong-kind checkpoint, an unknown camera under images/);
  * contiguous arrays reach the library without a copy; fresh noise without a seed.

    test_python.py PI0 TOKENIZER TMP
"""
import json, os, subprocess, sys

import numpy as np
from PIL import Image

import pi0

from checks import FAIL, PASS, SMALL_MODEL as SMALL, check


def stats(n_state, n_act):
    return {"norm_stats": {
        "state": {"mean": [0.1 * i for i in range(n_state)], "std": [0.5 + 0.1 * i for i in range(n_state)]},
        "actions": {"mean": [0.2 * i - 1 for i in range(n_act)], "std": [1 + 0.05 * i for i in range(n_act)]}}}


def infer_cli(pi0_bin, model, tok, config, images, state, prompt, seed):
    args = [pi0_bin, "infer", "--model", model, "--config", config, "--tokenizer", tok, "--seed", str(seed),
            "--format", "json", "--prompt", prompt, "--state", ",".join(repr(float(x)) for x in state)]
    for k, path in images:
        args += ["--image", f"{k}={path}"]
    out = subprocess.run(args, capture_output=True, text=True)
    if not check(out.returncode == 0, f"pi0 infer: {out.stderr}"):
        return None
    return np.asarray(json.loads(out.stdout)["actions"], dtype=np.float64)


def main():
    pi0_bin, tok, tmp = sys.argv[1:4]
    os.makedirs(tmp, exist_ok=True)
    print(f"pi0 module: {pi0.__file__}, library {pi0.library_path()}")
    model = os.path.join(tmp, "model")
    with open(os.path.join(tmp, "small.json"), "w") as f:
        json.dump(SMALL, f)
    subprocess.run([pi0_bin, "gen-model", "--config", os.path.join(tmp, "small.json"), "--dtype", "bf16", "--seed", "31",
                    "--out", model], check=True, capture_output=True)
    for asset, ns, na in (("physical-intelligence/libero", 8, 7), ("trossen", 14, 14)):
        os.makedirs(os.path.join(model, "assets", asset), exist_ok=True)
        with open(os.path.join(model, "assets", asset, "norm_stats.json"), "w") as f:
            json.dump(stats(ns, na), f)
    photo = np.asarray(Image.open("/usr/lib/python3/dist-packages/skimage/data/coffee.png").convert("RGB"))
    frames = {"a": photo[::4, ::4].copy(), "b": photo[200:300, 100:260].copy()}
    paths = {}
    for k, v in frames.items():
        paths[k] = os.path.join(tmp, f"{k}.png")
        Image.fromarray(v).save(paths[k])
    state = np.array([0.1, -0.2, 0.3, 0.05, 0.5, -0.6, 1.0, 0.25], np.float32)

    # 1. an openpi config: the same actions as `pi0 infer`
    with pi0.Policy(model, "pi0_libero", tokenizer=tok, seed=5) as policy:
        obs = {"observation/image": frames["a"], "observation/wrist_image": frames["b"], "observation/state": state,
               "prompt": "put the bowl on the plate"}
        r = policy.infer(obs)
        a = r["actions"]
        # float64, as openpi's Policy.infer returns them (Unnormalize with float64 norm stats); the
        # same doubles as `pi0 infer --format json` prints (shortest round-trip decimals)
        check(a.dtype == np.float64 and a.shape == (50, 7) and "infer_ms" in r["policy_timing"], f"result {a.dtype} {r}")
        check(not np.array_equal(a, a.astype(np.float32)), "openpi's actions are float64 values, not float32 ones")
        ref = infer_cli(pi0_bin, model, tok, "pi0_libero", [("observation/image", paths["a"]),
                        ("observation/wrist_image", paths["b"])], state, "put the bowl on the plate", 5)
        if ref is not None:
            same = np.array_equal(ref, a)
            print(f"pi0_libero: Policy.infer vs pi0 infer: {a.shape}, identical={same} "
                  f"(max |diff| {np.abs(ref - a).max():.3g})")
            check(same, "Policy.infer and pi0 infer differ")
        md = policy.metadata
        print(f"metadata: {md}")
        check(md["config"] == "pi0_libero" and md["model"] == "pi0" and md["action_horizon"] == 50 and
              md["action_dim"] == 7 and "reset_pose" not in md, f"metadata {md}")
        # float images in [0, 1] (float32 and float64) give the actions of their uint8 values
        f_obs = dict(obs, **{"observation/image": frames["a"].astype(np.float32) / 255,
                             "observation/wrist_image": frames["b"].astype(np.float64) / 255})
        check(np.array_equal(policy.infer(f_obs)["actions"], a), "float images in [0, 1] must give the uint8 actions")
        # noise= as openpi's infer(obs, noise=...): the given noise, batch of one accepted
        noise = np.random.default_rng(0).standard_normal((1, 50, 32)).astype(np.float32)
        n1, n2 = policy.infer(obs, noise=noise)["actions"], policy.infer(obs, noise=noise[0])["actions"]
        check(np.array_equal(n1, n2) and not np.array_equal(n1, a), "noise= must be used")
        raw = policy.raw_actions()
        check(raw.shape == (50, 32), f"raw actions {raw.shape}")
        # errors carry the library's message
        for label, bad, needle in (
                ("missing camera", {k: v for k, v in obs.items() if k != "observation/wrist_image"},
                 "missing key 'observation/wrist_image'"),
                ("missing state", {k: v for k, v in obs.items() if k != "observation/state"},
                 "missing key 'observation/state'"),
                ("NaN image", dict(obs, **{"observation/image": np.full((8, 8, 3), np.nan, np.float32)}),
                 "not a finite number"),
                ("int image", dict(obs, **{"observation/image": frames["a"].astype(np.int32)}), "must be uint8"),
                ("prompt", dict(obs, prompt=7), "'prompt' must be a string")):
            try:
                policy.infer(bad)
                check(False, f"{label}: no exception")
            except pi0.Pi0Error as e:
                print(f"  {label:15s} -> Pi0Error: {e}")
                check(needle in str(e), f"{label}: {e}")
        # no copies: contiguous arrays of the right dtype are passed as they are
        img = frames["a"]
        check(pi0._c_array(img, np.uint8) is img, "a contiguous uint8 image must not be copied")
        check(pi0._c_array(img[:, ::2], np.uint8) is not img, "a strided view is made contiguous")
        st64 = state.astype(np.float64)
        check(pi0._c_array(st64, np.float64) is st64, "a contiguous float64 state must not be copied")
        # the library reads the caller's buffer: a changed pixel changes the answer
        img2 = frames["a"].copy()
        a_before = policy.infer(dict(obs, **{"observation/image": img2}))["actions"]
        img2[:] = 255 - img2
        check(not np.array_equal(policy.infer(dict(obs, **{"observation/image": img2}))["actions"], a_before),
              "the image buffer must be read where it is")

    # 2. fresh noise without a seed, as openpi
    with pi0.Policy(model, "pi0_libero", tokenizer=tok) as policy:
        d = np.abs(policy.infer(obs)["actions"] - policy.infer(obs)["actions"]).max()
        print(f"no seed: two identical calls differ by max |diff| {d:.3g}")
        check(d > 1e-3, "without a seed each call must draw fresh noise")

    # 3. nested maps (ALOHA: images/cam_high, CHW), reset_pose
    with pi0.Policy(model, "pi0_aloha", tokenizer=tok, seed=2) as policy:
        st14 = np.array([0.1 * i - 0.5 for i in range(14)])
        st14[6], st14[13] = 0.5, 0.9
        obs = {"images": {"cam_high": frames["a"].transpose(2, 0, 1), "cam_low": frames["b"].transpose(2, 0, 1)},
               "state": st14, "prompt": "fold the towel"}
        a = policy.infer(obs)["actions"]
        check(policy.metadata.get("reset_pose") == [0, -1.5, 1.5, 0, 0, 0], f"reset_pose {policy.metadata}")
        ref = infer_cli(pi0_bin, model, tok, "pi0_aloha", [("cam_high", paths["a"])], st14, "fold the towel", 2)
        if ref is not None:
            print(f"pi0_aloha: Policy.infer vs pi0 infer: {a.shape}, identical={np.array_equal(ref, a)}")
            check(np.array_equal(ref, a), "pi0_aloha: Policy.infer and pi0 infer differ")
        try:
            policy.infer({**obs, "images": {**obs["images"], "cam_top": obs["images"]["cam_high"]}})
            check(False, "unknown camera accepted")
        except pi0.Pi0Error as e:
            print(f"  unknown camera  -> Pi0Error: {e}")
            check("unknown camera 'images/cam_top'" in str(e), str(e))

    # 4. loading errors
    for label, kw, needle in (("unknown config", dict(config="pi0_libro"), "did you mean 'pi0_libero'"),
                              ("pi0-FAST", dict(config="pi0_fast_droid"), "pi0-FAST"),
                              ("model kind", dict(config="pi05_droid"), "is a pi0.5 policy but"),
                              ("no model", dict(config="generic"), "cannot open")):
        try:
            pi0.Policy(model if label != "no model" else os.path.join(tmp, "nope"), tokenizer=tok, **kw)
            check(False, f"{label}: no exception")
        except pi0.Pi0Error as e:
            print(f"  {label:15s} -> Pi0Error: {e}")
            check(needle in str(e), f"{label}: {e}")
    check(len(pi0.configs()) >= 20 and "pi0_libero" in pi0.configs(), f"configs {pi0.configs()}")

    # 5. a lerobot checkpoint: lerobot's pipeline, lerobot's keys, the actions of `pi0 infer`
    lr = os.path.join(tmp, "lerobot")
    subprocess.run([pi0_bin, "gen-model", "--config", os.path.join(tmp, "small.json"), "--layout", "lerobot",
                    "--state-dim", "6", "--action-dim", "5", "--relative-actions", "--seed", "4", "--out", lr], check=True, capture_output=True)
    st6 = [0.2, -0.1, 0.4, 0.0, 0.3, -0.5]
    with pi0.Policy(lr, tokenizer=tok, seed=3) as policy:
        md = policy.metadata
        check(md.get("pipeline") == "lerobot" and md.get("lerobot_version") == "current", f"lerobot metadata {md}")
        a = policy.infer({"observation.images.top": frames["a"], "observation.state": np.asarray(st6),
                          "task": "stack the cups"})["actions"]
        out = subprocess.run([pi0_bin, "infer", "--model", lr, "--tokenizer", tok, "--seed", "3", "--format", "json",
                              "--image", f"top={paths['a']}", "--prompt", "stack the cups", "--state",
                              ",".join(map(str, st6))], capture_output=True, text=True)
        if check(out.returncode == 0, f"pi0 infer (lerobot): {out.stderr}"):
            ref = np.asarray(json.loads(out.stdout)["actions"], dtype=np.float64)
            check(np.array_equal(a, a.astype(np.float32)), "lerobot's actions are float32 values (lerobot computes so)")
            print(f"lerobot: Policy.infer vs pi0 infer: {a.shape}, identical={np.array_equal(ref, a)}")
            check(a.shape == (50, 5) and np.array_equal(ref, a), "lerobot: Policy.infer and pi0 infer differ")
        # relative actions, per tick: the planning state gives infer's rows; a state moved by +1
        # moves the relative dims by exactly +1 and leaves the others
        check(np.array_equal(policy.relative_action(0, st6), a[0]), "relative_action(0, planning state) != actions[0]")
        d = policy.relative_action(3, np.asarray(st6) + 1.0) - a[3]
        n_rel = int(np.sum(np.abs(d - 1) < 1e-5))
        print(f"lerobot: relative_action with state + 1: {n_rel} dims +1, {int(np.sum(np.abs(d) < 1e-6))} unchanged")
        check(n_rel >= 1 and n_rel + int(np.sum(np.abs(d) < 1e-6)) == 5, f"relative_action shift {d}")
        try:
            policy.infer({"observation.images.top": frames["a"], "observation.state": np.zeros(3), "task": "x"})
            check(False, "lerobot: a wrong state length accepted")
        except pi0.Pi0Error as e:
            print(f"  lerobot state   -> Pi0Error: {e}")
            check("state feature has 6" in str(e), str(e))
    print(f"python: {PASS[0]} passed, {FAIL[0]} failed")
    sys.exit(1 if FAIL[0] else 0)


if __name__ == "__main__":
    main()
