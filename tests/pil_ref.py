#!/usr/bin/python3
"""pil_ref.py OUT_DIR IMAGE... — the PIL reference for the image tests.

Writes synthetic test images of odd sizes and modes into OUT_DIR (PNG), then, for those and for
every IMAGE given (real photographs), openpi's resize_with_pad to 224x224 with PIL's BILINEAR
filter, as raw RGB bytes: OUT_DIR/<name>.rgb, listed in OUT_DIR/cases.txt as "<path> <name>".
Where PIL refuses a zero-sized side (e.g. 4000x10), the side is clamped to 1, as pi0.c does."""
import os, random, sys
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(7)

def synth(name, w, h, mode):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 255) // max(w - 1, 1) ^ rng.randrange(64), (y * 255) // max(h - 1, 1),
                        rng.randrange(256))
    if mode != "RGB":
        im = im.convert(mode)
    path = os.path.join(out, name + ".png")
    im.save(path)
    return path

cases = [synth(*c) for c in [("one", 1, 1, "RGB"), ("odd", 223, 225, "RGB"), ("wide", 4000, 10, "RGB"),
                             ("tall", 10, 4000, "RGB"), ("strip", 300, 50, "RGB"), ("column", 50, 300, "RGB"),
                             ("exact", 224, 224, "RGB"), ("near", 225, 224, "RGB"), ("up", 37, 91, "RGB"),
                             ("rgba", 640, 480, "RGBA"), ("gray", 333, 200, "L"), ("graya", 120, 90, "LA")]]
cases += sys.argv[2:]

def resize_with_pad(im, size=224):
    w, h = im.size
    if (w, h) == (size, size):
        return im
    ratio = max(w / size, h / size)
    rh, rw = max(1, int(h / ratio)), max(1, int(w / ratio))
    r = im.resize((rw, rh), resample=Image.BILINEAR)
    z = Image.new(r.mode, (size, size), 0)
    z.paste(r, (max(0, int((size - rw) / 2)), max(0, int((size - rh) / 2))))
    return z

with open(os.path.join(out, "cases.txt"), "w") as f:
    for path in cases:
        name = os.path.splitext(os.path.basename(path))[0]
        im = Image.open(path).convert("RGB")
        open(os.path.join(out, name + ".rgb"), "wb").write(resize_with_pad(im).tobytes())
        f.write(f"{path} {name}\n")
