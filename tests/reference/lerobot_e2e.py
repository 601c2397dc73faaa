"""lerobot_e2e.py — pi0.c against lerobot's real PyTorch policy, end to end (issue 21 item 2).

For π0 and π0.5 checkpoints in lerobot's current layout (`pi0 gen-model --layout lerobot`),
float32 and bf16 weights, 1-3 cameras (one case with a camera missing), relative actions on
and off: lerobot's PI0Policy / PI05Policy with its pre/post processors (tests/reference/
lerobot_ref.py: from_pretrained + make_pre_post_processors, the tokenizer from a local
tokenizer.json, noise through predict_action_chunk's `noise` argument) and `pi0 infer` on the
same raw observation (uint8 images of another size than the model's, a raw state, a task) and
the same noise give the same action chunk:

  * float32 weights, ref backend: max |diff| <= 1e-4 * max |action|
  * bf16 weights, fast backend: PCC >= 0.999 (and with lerobot's "dtype": "bfloat16", lerobot
    computes in bf16 while pi0.c computes in float32)

lerobot 0.6 loads only its current layout: pi0.c's v0.4 and v1 variants have no lerobot
release on PyPI that this Python (and a stock transformers) can run, so they are not covered.

    lerobot_e2e.py PI0 TOKENIZER_JSON TMP
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lerobot_ref as L  # noqa: E402

PI0, TOK, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
CAMS = ["observation.images.top", "observation.images.wrist_left", "observation.images.wrist_right"]

# name, gen_checkpoint arguments, cameras given (indices into CAMS), backend, criterion
CASES = [
    ("pi0 f32 1cam", dict(pi05=False, cameras=1), [0], "ref", "rel"),
    ("pi0 f32 2cam relative S6 A5", dict(pi05=False, relative=True, S=6, A=5), [0, 1], "ref", "rel"),
    ("pi0 f32 3cam (2 given)", dict(pi05=False, cameras=3, S=4, A=4), [0, 2], "ref", "rel"),
    ("pi0 f32 3cam relative", dict(pi05=False, cameras=3, relative=True), [0, 1, 2], "ref", "rel"),
    ("pi05 f32 1cam", dict(pi05=True, cameras=1), [0], "ref", "rel"),
    ("pi05 f32 2cam relative S6 A5", dict(pi05=True, relative=True, S=6, A=5), [0, 1], "ref", "rel"),
    ("pi05 f32 3cam S5 A4", dict(pi05=True, cameras=3, S=5, A=4), [0, 1, 2], "ref", "rel"),
    ("pi0 bf16 small 3cam relative", dict(pi05=False, preset="small", dtype="bf16", relative=True), [0, 1, 2], "fast", "pcc"),
    ("pi05 bf16 2cam", dict(pi05=True, dtype="bf16"), [0, 1], "fast", "pcc"),
    ("pi0 bf16 dtype=bfloat16 2cam", dict(pi05=False, dtype="bf16", lerobot_dtype="bfloat16"), [0, 1], "fast", "pcc"),
    ("pi05 bf16 dtype=bfloat16 small 3cam relative", dict(pi05=True, preset="small", dtype="bf16", relative=True,
                                                          lerobot_dtype="bfloat16"), [0, 1, 2], "fast", "pcc"),
]


def main():
    v = L.versions()
    print(f"reference: lerobot {v['lerobot']}, torch {v['torch']}, transformers {v['transformers']}", flush=True)
    only = os.environ.get("PI0_REF_CASES")  # a substring: run only matching cases (debugging)
    fails, n = [], 0
    for ci, (name, gen, given, backend, crit) in enumerate(CASES):
        if only and only not in name:
            continue
        n += 1
        t0 = time.time()
        work = os.path.join(TMP, f"case{ci}")
        ckpt = L.gen_checkpoint(PI0, os.path.join(work, "ckpt"), seed=100 + ci, **gen)
        ref = L.Reference(ckpt, TOK, work)
        rng = np.random.default_rng(ci)
        img = ref.cfg["vision"]["image_size"]
        images = {CAMS[i]: rng.integers(0, 256, (img + 3 + 5 * i, img + 11 - 2 * i, 3), dtype=np.uint8) for i in given}
        S = ref.policy.config.input_features["observation.state"].shape[0]
        state = (rng.standard_normal(S) * 1.5).astype(np.float32)
        task = ["pick up the red block", "fold the towel", "open the drawer"][ci % 3]
        noise = rng.standard_normal((ref.chunk, ref.max_action_dim)).astype(np.float32)
        want = ref.actions(images, state, task, noise)
        got = L.pi0_infer(PI0, ckpt, images, state, task, noise, TOK, work, backend=backend)
        if got.shape != want.shape:
            fails.append(name)
            print(f"FAIL: {name}: pi0 infer gives {got.shape}, lerobot {want.shape}", flush=True)
            continue
        d, m, pcc = L.compare(got, want)
        ok = d <= 1e-4 * m if crit == "rel" else pcc >= 0.999
        bound = f"max|diff|/max|action| {d / m:.2e} <= 1e-4" if crit == "rel" else f"PCC >= 0.999"
        print(f"  {'ok  ' if ok else 'FAIL'} {name:46s} [{backend}] actions {got.shape[0]}x{got.shape[1]}  "
              f"max|diff| {d:.3e}  (max|action| {m:.3e})  PCC {pcc:.9f}  ({bound}; {time.time() - t0:.1f} s)", flush=True)
        if not ok:
            fails.append(name)
            print("    lerobot:", np.array2string(want[0], precision=5), "\n    pi0.c:  ",
                  np.array2string(got[0], precision=5), flush=True)
    print(f"{n - len(fails)} passed, {len(fails)} failed")
    return 1 if fails or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
