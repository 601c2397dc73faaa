#!/usr/bin/env python3
"""make_inputs.py CONFIG.json OUT.safetensors [--cameras N] [--tokens N] [--seed S]

Writes a synthetic observation in the `pi0 run` input format (stdlib only): N camera images
with smooth random content in [-1, 1], N valid prompt tokens, a random normalized state, and
noise. For benchmarks and smoke runs of generated checkpoints."""
import argparse, json, math, random, struct

ap = argparse.ArgumentParser()
ap.add_argument("config"); ap.add_argument("out")
ap.add_argument("--cameras", type=int, default=1)
ap.add_argument("--tokens", type=int, default=None)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
cfg = json.load(open(a.config))
S = cfg["vision"]["image_size"]; L = cfg["max_token_len"]; A = cfg["action_dim"]
H = cfg["action_horizon"]; SD = cfg.get("state_dim", A); V = cfg["vlm"]["vocab_size"]
ntok = L if a.tokens is None else min(a.tokens, L)
rng = random.Random(a.seed)
img = []
for c in range(a.cameras):
    fx, fy, ph = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.28)
    for ch in range(3):
        for y in range(S):
            for x in range(S):
                img.append(math.sin(fx * x / S * 6.28 + ph + ch) * math.cos(fy * y / S * 6.28))
tensors = [
    ("images", "F32", [a.cameras, 3, S, S], struct.pack(f"<{len(img)}f", *img)),
    ("image_masks", "U8", [a.cameras], bytes([1] * a.cameras)),
    ("tokens", "I32", [L], struct.pack(f"<{L}i", *([2] + [rng.randrange(3, V) for _ in range(ntok - 1)] + [0] * (L - ntok)))),
    ("token_mask", "U8", [L], bytes([1] * ntok + [0] * (L - ntok))),
    ("state", "F32", [SD], struct.pack(f"<{SD}f", *[rng.gauss(0, 1) for _ in range(SD)])),
    ("noise", "F32", [H, A], struct.pack(f"<{H*A}f", *[rng.gauss(0, 1) for _ in range(H * A)])),
]
header, off, blobs = {}, 0, []
for name, dt, shape, blob in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(blob)]}
    off += len(blob); blobs.append(blob)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(a.out, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for b in blobs: f.write(b)
