#!/usr/bin/python3
"""gen_corpus.py — writes the fuzzers' seed corpora (fuzz/corpus/<harness>/) and the regression
reproducers of issue 8 (fuzz/regress/<harness>/), replayed by scripts/fuzz.sh before each run.

    /usr/bin/python3 fuzz/gen_corpus.py [GOLDEN_DIR]     (default ../shared/golden)

Needs Debian's python3-pil, python3-msgpack, python3-numpy, and spm_train (sentencepiece) for the
tokenizer.model seed. The outputs are committed; rerun only to change them. Everything is small:
seeds are a few hundred bytes to ~20 KB each. Inputs the fuzzers found are not generated here:
they are libFuzzer's own artifacts, copied into fuzz/regress/<harness>/ under a descriptive name
(image/png_first_idat_empty.png, image/jpeg_scan_uses_undefined_table.jpg)."""
import io, json, os, shutil, struct, subprocess, sys, tempfile, zlib

import msgpack
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "golden")


def put(kind, harness, name, data):
    d = os.path.join(HERE, kind, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(kind, harness, name, src):
    with open(src, "rb") as f:
        put(kind, harness, name, f.read())


# ---------------------------------------------------------------- safetensors / inputs

def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


f32 = lambda a: np.asarray(a, np.float32).tobytes()
put("corpus", "safetensors", "small.safetensors", safetensors([
    ("w", "F32", [2, 3], f32(np.arange(6) / 7)),
    ("h", "BF16", [2], b"\x80\x3f\x00\xc0"),
    ("z", "U8", [0, 4], b""),
    ("i", "I64", [1], struct.pack("<q", -3)),
], {"format": "pt"}))
copy("corpus", "safetensors", "tiny_inputs.safetensors", os.path.join(GOLDEN, "tiny-f32", "inputs.safetensors"))
# [2^32, 2^32, 1] F32: 2^64 elements, whose byte count wraps to 0
put("regress", "safetensors", "shape_wraps_to_zero.safetensors", safetensors([("a", "F32", [1 << 32, 1 << 32, 1], b"")]))
put("regress", "safetensors", "shape_huge_times_zero.safetensors", safetensors([("a", "F64", [1 << 40, 1 << 40, 0], b"")]))

copy("corpus", "inputs", "tiny_golden.safetensors", os.path.join(GOLDEN, "tiny-f32", "inputs.safetensors"))
rng = np.random.default_rng(8)
put("corpus", "inputs", "batch2_f16_nonoise.safetensors", safetensors([
    ("images", "F16", [2, 2, 3, 28, 28], rng.uniform(-1, 1, (2, 2, 3, 28, 28)).astype(np.float16).tobytes()),
    ("image_masks", "BOOL", [2, 2], bytes([1, 0, 1, 1])),
    ("tokens", "I64", [2, 8], np.arange(16, dtype=np.int64).tobytes()),
    ("token_mask", "U8", [2, 8], bytes([1] * 5 + [0] * 3 + [1] * 8)),
    ("state", "F64", [2, 6], np.linspace(-1, 1, 12).tobytes()),
]))

# ---------------------------------------------------------------- config / norm stats

for case in ("tiny-f32", "small-bf16"):
    copy("corpus", "config", f"{case}.json", os.path.join(GOLDEN, case, "config.json"))
put("corpus", "config", "openpi.json", json.dumps({"paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m_lora",
                                                   "action_dim": 32, "action_horizon": 50, "max_token_len": 48}))
put("corpus", "config", "lerobot.json", json.dumps({"type": "pi0", "chunk_size": 50, "n_action_steps": 50, "max_state_dim": 32,
                                                    "max_action_dim": 32, "num_inference_steps": 10, "tokenizer_max_length": 48,
                                                    "num_cameras": 2, "random_weights": True}))

stats6 = {"mean": [0.1, -0.2, 0.3, 0.0, 0.5, 1.0], "std": [1.0, 0.5, 0.25, 2.0, 1.5, 0.1],
          "q01": [-1, -1, -2, -0.5, 0, 0], "q99": [1, 1, 2, 0.5, 1, 3]}
put("corpus", "norm_stats", "state6.json", json.dumps({"norm_stats": {"state": stats6, "actions": stats6}}, indent=1))
put("corpus", "norm_stats", "bare_quantile.json", json.dumps({"state": {"q01": [0, 1], "q99": [2, 3]},
                                                              "actions": {"q01": [0], "q99": [1e-3]}}))

# ---------------------------------------------------------------- tokenizers

put("corpus", "tokenizer_json", "pairs_merges.json", json.dumps({
    "added_tokens": [{"id": 0, "content": "<bos>", "special": True}, {"id": 4, "content": "<loc0000>", "special": False}],
    "model": {"type": "BPE", "vocab": {"<bos>": 0, "<unk>": 1, "\u2581": 2, "a": 3, "<0x61>": 5, "\u2581a": 6},
              "merges": [["\u2581", "a"], "a a"]}}, ensure_ascii=False))
base = '{"model":{"type":"BPE","vocab":{"<bos>":0,"a":1,"b":2},"merges":[]},'
put("regress", "tokenizer_json", "added_id_1e8.json", base + '"added_tokens":[{"id":100000000,"content":"<x>","special":true}]}')
put("regress", "tokenizer_json", "added_id_2p32.json", base + '"added_tokens":[{"id":4294967296,"content":"<x>"}]}')
put("regress", "tokenizer_json", "vocab_id_99999999.json", '{"model":{"type":"BPE","vocab":{"a":99999999},"merges":[]}}  ')

spm = shutil.which("spm_train")
if spm:
    with tempfile.TemporaryDirectory() as td:
        with open(os.path.join(td, "t.txt"), "w") as f:
            for i in range(30):
                f.write(f"pick up the red block and place it in the bowl {i}; open the drawer.\n")
        subprocess.run([spm, f"--input={td}/t.txt", f"--model_prefix={td}/m", "--model_type=bpe", "--vocab_size=300",
                        "--byte_fallback=true", "--normalization_rule_name=identity", "--minloglevel=2",
                        "--character_coverage=1.0"], check=True, capture_output=True)
        copy("corpus", "tokenizer_model", "bpe300.model", f"{td}/m.model")
# TrainerSpec{model_type: BPE} + a piece whose string is followed by a field of wire type 7
put("regress", "tokenizer_model", "piece_leak.model", bytes([0x12, 0x02, 0x18, 0x02, 0x0a, 0x05, 0x0a, 0x02, 0x61, 0x62, 0x0f]))

# ---------------------------------------------------------------- images


def pil(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


g = np.add.outer(np.arange(12) * 20, np.arange(16) * 9).astype(np.uint8)
rgb = np.stack([g, g[::-1], 255 - g], -1)
im_rgb = Image.fromarray(rgb)
put("corpus", "image", "rgb.png", pil(im_rgb, "PNG"))
put("corpus", "image", "gray.png", pil(Image.fromarray(g), "PNG"))
put("corpus", "image", "rgba.png", pil(Image.fromarray(np.dstack([rgb, g])), "PNG"))
put("corpus", "image", "palette.png", pil(im_rgb.convert("P", palette=Image.ADAPTIVE, colors=8), "PNG", transparency=0))
put("corpus", "image", "gray16.png", pil(Image.fromarray(g.astype(np.uint16) * 257), "PNG"))
put("corpus", "image", "bilevel.png", pil(Image.fromarray(g > 120), "PNG"))
put("corpus", "image", "baseline.jpg", pil(im_rgb, "JPEG", quality=80))
put("corpus", "image", "progressive.jpg", pil(im_rgb, "JPEG", quality=80, progressive=True))
put("corpus", "image", "gray.jpg", pil(Image.fromarray(g), "JPEG", quality=70))
put("corpus", "image", "rgb24.bmp", pil(im_rgb, "BMP"))
put("corpus", "image", "palette8.bmp", pil(im_rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "BMP"))
put("corpus", "image", "bilevel.bmp", pil(Image.fromarray(g > 120), "BMP"))


def png(w, h, ct, idat):
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ct, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg(w, h, scan, dht_extra=0):
    out = b"\xff\xd8" + b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    out += b"\xff\xc0\x00\x0b\x08" + struct.pack(">HH", h, w) + b"\x01\x01\x11\x00"
    for tc in (0, 1):
        extra = dht_extra if tc else 0
        counts = [1] + [0] * 15
        rest, l = extra, 15
        while rest > 0 and l >= 8:
            c = min(rest, 255)
            counts[l] = c
            rest -= c
            l -= 1
        n = 1 + extra - rest
        out += b"\xff\xc4" + struct.pack(">H", 2 + 1 + 16 + n) + bytes([tc << 4]) + bytes(counts) + bytes([0] + [(i & 0xff) or 1 for i in range(1, n)])
    out += b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * scan + b"\xff\xd9"
    return out


def bmp(w, h, pixel_bytes):
    return b"BM" + struct.pack("<IHHI", 54 + pixel_bytes, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0) + b"\x00" * pixel_bytes


tga = bytearray(30)
tga[2] = 10
tga[12:14] = struct.pack("<H", 32768)
tga[14:16] = struct.pack("<H", 32768)
tga[16] = 24
tga[18] = 0xff
put("regress", "image", "tga_30_bytes_32768x32768.tga", bytes(tga))
# a 64x64 gray PNG whose IDAT inflates to 4 MB (budget: about 1.1 MB)
put("regress", "image", "png_zlib_bomb_64x64.png", png(64, 64, 0, zlib.compress(b"\x00" * (4 << 20), 9)))
put("regress", "image", "png_30000x30000_60_bytes.png", png(30000, 30000, 2, zlib.compress(b"\x00")))
put("regress", "image", "png_4000x4000_60_bytes.png", png(4000, 4000, 2, zlib.compress(b"\x00")))
put("regress", "image", "jpeg_30000x30000_scan_8_bytes.jpg", jpeg(30000, 30000, 8))
put("regress", "image", "jpeg_4000x4000_scan_8_bytes.jpg", jpeg(4000, 4000, 8))
put("regress", "image", "jpeg_huffman_table_301_codes.jpg", jpeg(16, 16, 16, 300))
put("regress", "image", "bmp_16000x16000_70_bytes.bmp", bmp(16000, 16000, 16))
put("regress", "image", "bmp_height_int_min.bmp", bmp(16, -(1 << 31), 16))
put("regress", "image", "pnm_width_overflows_int.ppm", b"P6\n99999999999 1\n255\n\x01\x02\x03")
put("corpus", "image", "tiny_flat.jpg", jpeg(16, 16, 16))

# ---------------------------------------------------------------- protocol (serve frames)


def nd(a):
    a = np.asarray(a)
    return {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": a.dtype.str, b"shape": list(a.shape)}


packb = lambda o: msgpack.packb(o, use_bin_type=True)
img8 = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
state6 = np.array([0.1, -0.2, 0.3, 0.0, 0.5, 1.0], np.float32)
put("corpus", "protocol", "libero.msgpack", packb({"observation/image": nd(img8), "observation/wrist_image": nd(img8[::2, ::2].copy()),
                                                   "observation/state": nd(state6), "prompt": "pick up the cup"}))
put("corpus", "protocol", "droid.msgpack", packb({"observation/exterior_image_1_left": nd(img8),
                                                  "observation/wrist_image_left": nd(img8.transpose(2, 0, 1).copy()),
                                                  "observation/joint_position": nd(state6[:5].astype(np.float64)),
                                                  "observation/gripper_position": {b"__npgeneric__": True, b"data": 0.5, b"dtype": "<f8"},
                                                  "prompt": {b"__npgeneric__": True, b"data": "open the drawer", b"dtype": "<U15"}}))
put("corpus", "protocol", "aloha.msgpack", packb({"images": {"cam_high": nd(np.linspace(0, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)),
                                                             "cam_left_wrist": nd(img8[:, :, 0].copy())},
                                                  "state": nd(np.linspace(-0.5, 0.8, 14).astype(np.float32)), "prompt": "fold"}))
put("corpus", "protocol", "generic.msgpack", packb({"images": {"base_0_rgb": nd(np.dstack([img8, img8[:, :, :1]]))},
                                                    "state": [0.5, 1, -2, 3.25, 0, 1], "prompt": "the cup"}))
obs = {"observation/image": nd(img8), "observation/state": {b"__ndarray__": True, b"data": b"", b"dtype": "<f8",
                                                              b"shape": [1 << 30, 1 << 30, 2]}, "prompt": "x"}
put("regress", "protocol", "state_shape_wraps_to_0_bytes.msgpack", packb(obs))
put("regress", "protocol", "droid_gripper_shape_wraps.msgpack", packb({
    "observation/exterior_image_1_left": nd(img8), "observation/joint_position": nd(state6[:5]),
    "observation/gripper_position": {b"__ndarray__": True, b"data": b"", b"dtype": "<f4", b"shape": [1 << 30, 1 << 30, 4]},
    "prompt": "x"}))
put("regress", "protocol", "float_image_shape_wraps.msgpack", packb({
    "observation/image": {b"__ndarray__": True, b"data": b"", b"dtype": "<f4", b"shape": [1 << 30, 1 << 30, 4]},
    "observation/state": nd(state6), "prompt": "x"}))
put("regress", "protocol", "map32_of_2p28_entries.msgpack", b"\xdf\x10\x00\x00\x00")
put("regress", "protocol", "array32_of_2p32.msgpack", b"\xdd\xff\xff\xff\xff")
put("regress", "protocol", "empty_frame.msgpack", b"")
put("regress", "protocol", "nan_in_float_image.msgpack", packb({
    "observation/image": nd(np.full((4, 4, 3), np.nan, np.float32)), "observation/state": nd(state6), "prompt": "x"}))
print("corpus and regression inputs written under", HERE)
