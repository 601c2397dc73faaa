"""lerobot_components.py — pi0.c against lerobot's real PyTorch policy, tensor by tensor (issue 21 item 3).

One observation through lerobot's PI0Policy / PI05Policy with its modules hooked
(lerobot_ref.Reference.trace: SigLIP patch embedding and block 0, the projector, the prefix
embedding, the PaliGemma layer 0 output, K/V of every layer, suffix embeddings, adaRMS
conditioning, expert layer 0 and v_t of every Euler step, the model inputs and output) and
through `pi0 infer --save-inputs` + `pi0 run --dump` (ref backend) on the same raw observation
and noise: max |diff| and PCC per named tensor, printed as test_golden prints them. Prefix
tensors are compared on the rows lerobot's pad mask keeps; a masked camera's tensors are
skipped (pi0.c leaves them out, lerobot computes them on a −1 image and masks them).
Each tensor: max |diff| <= 1e-4 * max(1, max |lerobot|) and PCC >= 0.99999.

    lerobot_components.py PI0 TOKENIZER_JSON TMP
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lerobot_ref as L  # noqa: E402

PI0, TOK, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
CAMS = ["observation.images.top", "observation.images.wrist_left", "observation.images.wrist_right"]
CASES = [  # name, gen_checkpoint arguments, cameras given
    ("pi0 tiny f32 2cam relative", dict(pi05=False, relative=True, S=6, A=5), [0, 1]),
    ("pi05 tiny f32 2cam", dict(pi05=True, S=5, A=6), [0, 1]),
    ("pi0 small f32 3cam (2 given)", dict(pi05=False, preset="small"), [0, 2]),
]


def order(name):
    """Sort key: inputs, vision, prefix, then per step, as the forward runs."""
    base, _, idx = name.partition(".")
    rank = ["images", "image_masks", "tokens", "token_mask", "state", "vision_patch", "vision_block0", "img_emb",
            "prefix_emb", "vlm_layer0", "prefix_k", "prefix_v", "adarms_cond", "suffix_emb", "expert_layer0", "v_t",
            "actions"]
    r = rank.index(base) if base in rank else len(rank)
    i = int(idx) if idx.isdigit() else 0
    return (r, i, 0) if r < 12 else (12, i, r) if base != "actions" else (13, 0, 0)


def main():
    from safetensors.numpy import load_file
    v = L.versions()
    print(f"reference: lerobot {v['lerobot']}, torch {v['torch']}, transformers {v['transformers']}", flush=True)
    fails, n_t = 0, 0
    for ci, (name, gen, given) in enumerate(CASES):
        work = os.path.join(TMP, f"case{ci}")
        ckpt = L.gen_checkpoint(PI0, os.path.join(work, "ckpt"), seed=200 + ci, **gen)
        ref = L.Reference(ckpt, TOK, work)
        rng = np.random.default_rng(50 + ci)
        img = ref.cfg["vision"]["image_size"]
        images = {CAMS[i]: rng.integers(0, 256, (img + 7, img - 3 + 4 * i, 3), dtype=np.uint8) for i in given}
        S = ref.policy.config.input_features["observation.state"].shape[0]
        state = rng.standard_normal(S).astype(np.float32)
        task = "put the cup on the plate"
        noise = rng.standard_normal((ref.chunk, ref.max_action_dim)).astype(np.float32)
        want = ref.trace(images, state, task, noise)
        inputs = os.path.join(work, "inputs.safetensors")
        L.pi0_infer(PI0, ckpt, images, state, task, noise, TOK, work, backend="ref", extra=["--save-inputs", inputs])
        dump = os.path.join(work, "dump.safetensors")
        r = subprocess.run([PI0, "run", "--model", ckpt, "--inputs", inputs, "--out", dump, "--dump", "--backend", "ref"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL: {name}: pi0 run --dump: {r.stderr.strip()[-400:]}")
            fails += 1
            continue
        got = {**load_file(inputs), **load_file(dump)}
        valid = want["prefix_valid"]
        n_img = (img // ref.cfg["vision"]["patch_size"]) ** 2
        print(f"{name} [lerobot vs pi0.c ref backend]:", flush=True)
        for k in sorted(got, key=order):
            if k == "noise":
                continue
            if k == "state" and ref.pi05:
                print(f"  {k:16s} skipped (π0.5: the state enters as prompt tokens)")
                continue
            if k not in want:
                print(f"  {k:16s} FAIL: not in lerobot's trace")
                fails += 1
                continue
            a, b = got[k].astype(np.float64), want[k].astype(np.float64)
            base, _, idx = k.partition(".")
            if base in ("vision_patch", "vision_block0", "img_emb") and not want["image_masks"][int(idx)]:
                print(f"  {k:16s} skipped (camera {idx} is masked: its rows are padding)")
                continue
            if base in ("prefix_emb", "vlm_layer0", "prefix_k", "prefix_v"):
                a, b = a[valid], b[valid]
            if base == "images":  # pi0.c pads the camera slots it was not given; compare lerobot's
                a = a[:b.shape[0]]
            if a.shape != b.shape:
                print(f"  {k:16s} FAIL: shape {a.shape} (pi0.c) vs {b.shape} (lerobot)")
                fails += 1
                continue
            d, m, pcc = L.compare(a, b)
            ok = d <= 1e-4 * max(1.0, m) and pcc >= 0.99999
            n_t += 1
            fails += not ok
            rows = a.shape[0] if a.ndim > 1 else 1
            print(f"  {k:16s} rows {rows:3d}  max|diff| {d:.3e}  (max|ref| {m:.3e})  PCC {pcc:.9f}"
                  f"{'' if ok else '  FAIL'}", flush=True)
        print(f"  ({n_img} image tokens per camera, {int(valid.sum())} valid prefix rows)")
    print(f"{n_t - fails} passed, {fails} failed")
    return 1 if fails or n_t == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
