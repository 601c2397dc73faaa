#!/usr/bin/env python3
"""gen_orbax.py SRC_DIR OUT_DIR [--value] [--vectors-f32] [--no-config]

Writes the π0 / π0.5 checkpoint in SRC_DIR (pi0.c's safetensors layout, as `pi0 gen-model`
writes it: model.safetensors + config.json) as openpi publishes its checkpoints: OUT_DIR/params
an Orbax PyTree checkpoint written by the real orbax-checkpoint (OCDBT, TensorStore zarr; the
handler's defaults, as openpi's training/checkpoints.py saves the "params" item) holding
{"params": <openpi's parameter tree>}, and OUT_DIR/assets copied from SRC_DIR/assets.

openpi's tree is the inverse of its examples/convert_jax_model_to_pytorch.py: layers stacked
along a leading scan axis, einsum-shaped attention kernels (q_einsum [L,N,D,H], kv_einsum
[L,2,K,D,H], attn_vec_einsum [L,N,H,D]), gating_einsum [L,2,D,F], the action expert's modules
suffixed _1, π0.5's adaRMS as <norm>_1/Dense_0, SigLIP as Flax's scanned encoderblock.

  --value        every leaf path ends in "value" (checkpoints saved from nnx.State by training)
  --vectors-f32  store 1-D / norm / bias arrays as float32 even when the source is bfloat16
                 (an exact upcast), so one checkpoint mixes bf16 and f32 arrays
  --no-config    do not copy config.json (openpi's checkpoints have none)
  --chunk-bytes=N  zarr chunks of at most about N bytes (orbax's SaveArgs.chunk_byte_size): arrays
                 split into several chunks, as checkpoints saved from sharded training hold them
  --drop=PATH    leave out one array (its openpi path, e.g. PaliGemma.llm.layers.mlp_1.linear): a
                 broken checkpoint for the error tests
Exit 77 when the Python packages are missing (the caller skips).
"""
import json
import mmap
import os
import shutil
import sys

try:
    import jax
    import jax.numpy as jnp
    import ml_dtypes
    import numpy as np
    import orbax.checkpoint as ocp
except ImportError as ex:  # pragma: no cover
    print(f"SKIP: {ex}", file=sys.stderr)
    sys.exit(77)

jax.config.update("jax_platforms", "cpu")

P = "paligemma_with_expert.paligemma.model."
X = "paligemma_with_expert.gemma_expert.model."
VT = P + "vision_tower.vision_model."


def read_safetensors(path):
    """Tensors as read-only views of the mapped file (a full-size model is not read into memory),
    and the mapping (its pages can be dropped from the resident set once copied)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = int.from_bytes(raw[:8].tobytes(), "little")
    hdr = json.loads(raw[8:8 + n].tobytes())
    base = 8 + n
    dt = {"F32": np.float32, "BF16": ml_dtypes.bfloat16, "F16": np.float16}
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k.removeprefix("model.")] = raw[base + b:base + e].view(dt[v["dtype"]]).reshape(v["shape"])
    return out, raw._mmap


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = args
    sd, src_map = read_safetensors(os.path.join(src, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    v, g, x = cfg["vision"], cfg["vlm"], cfg["expert"]
    pi05 = cfg.get("type") == "pi05"

    def vec(a):
        return a.astype(np.float32) if "--vectors-f32" in flags else a

    def drop_source_pages():
        """The mapped file's pages leave the resident set (they stay in the page cache): the
        process holds the model once (the arrays built from it), not twice."""
        if hasattr(mmap, "MADV_DONTNEED"):
            src_map.madvise(mmap.MADV_DONTNEED)

    def stack(fmt, n, fn=lambda a: a):
        out = np.stack([fn(sd[fmt.format(i)]) for i in range(n)])
        drop_source_pages()
        return out

    # SigLIP (Flax, scanned encoder)
    W, hv = v["width"], v["num_heads"]
    hdv = W // hv
    L = v["depth"]
    enc = VT + "encoder.layers.{}."
    blk = {
        "LayerNorm_0": {"scale": vec(stack(enc + "layer_norm1.weight", L)), "bias": vec(stack(enc + "layer_norm1.bias", L))},
        "LayerNorm_1": {"scale": vec(stack(enc + "layer_norm2.weight", L)), "bias": vec(stack(enc + "layer_norm2.bias", L))},
        "MlpBlock_0": {
            "Dense_0": {"kernel": stack(enc + "mlp.fc1.weight", L, np.transpose), "bias": vec(stack(enc + "mlp.fc1.bias", L))},
            "Dense_1": {"kernel": stack(enc + "mlp.fc2.weight", L, np.transpose), "bias": vec(stack(enc + "mlp.fc2.bias", L))},
        },
        "MultiHeadDotProductAttention_0": {},
    }
    for jn, pn in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        blk["MultiHeadDotProductAttention_0"][jn] = {
            "kernel": stack(enc + "self_attn." + pn + ".weight", L, lambda a: a.T.reshape(W, hv, hdv)),
            "bias": vec(stack(enc + "self_attn." + pn + ".bias", L, lambda a: a.reshape(hv, hdv))),
        }
    blk["MultiHeadDotProductAttention_0"]["out"] = {
        "kernel": stack(enc + "self_attn.out_proj.weight", L, lambda a: a.T.reshape(hv, hdv, W)),
        "bias": vec(stack(enc + "self_attn.out_proj.bias", L)),
    }
    img = {
        "embedding": {"kernel": sd[VT + "embeddings.patch_embedding.weight"].transpose(2, 3, 1, 0),
                      "bias": vec(sd[VT + "embeddings.patch_embedding.bias"])},
        "pos_embedding": sd[VT + "embeddings.position_embedding.weight"][None],
        "Transformer": {"encoderblock": blk,
                        "encoder_norm": {"scale": vec(sd[VT + "post_layernorm.weight"]),
                                         "bias": vec(sd[VT + "post_layernorm.bias"])}},
        "head": {"kernel": sd[P + "multi_modal_projector.linear.weight"].T,
                 "bias": vec(sd[P + "multi_modal_projector.linear.bias"])},
    }

    # Gemma: the VLM and the expert (suffix _1) share one "llm" module, layers stacked
    llm = {"embedder": {"input_embedding": sd["paligemma_with_expert.paligemma.lm_head.weight"]},
           "layers": {"attn": {}}}

    def gemma(prefix, c, sfx, adaptive):
        D, N, K, H, Lg = c["width"], c["num_heads"], c["num_kv_heads"], c["head_dim"], c["depth"]
        lay = prefix + "layers.{}."
        q = stack(lay + "self_attn.q_proj.weight", Lg, lambda a: a.reshape(N, H, D).transpose(0, 2, 1))
        k = stack(lay + "self_attn.k_proj.weight", Lg, lambda a: a.reshape(K, H, D).transpose(0, 2, 1))
        vv = stack(lay + "self_attn.v_proj.weight", Lg, lambda a: a.reshape(K, H, D).transpose(0, 2, 1))
        a = llm["layers"]["attn"]
        a["q_einsum" + sfx] = {"w": q}
        a["kv_einsum" + sfx] = {"w": np.stack([k, vv], axis=1)}
        a["attn_vec_einsum" + sfx] = {"w": stack(lay + "self_attn.o_proj.weight", Lg, lambda m: m.T.reshape(N, H, D))}
        llm["layers"]["mlp" + sfx] = {
            "gating_einsum": np.stack([stack(lay + "mlp.gate_proj.weight", Lg, np.transpose),
                                       stack(lay + "mlp.up_proj.weight", Lg, np.transpose)], axis=1),
            "linear": stack(lay + "mlp.down_proj.weight", Lg, np.transpose),
        }
        for jn, pn in (("pre_attention_norm", "input_layernorm"), ("pre_ffw_norm", "post_attention_layernorm")):
            if adaptive:
                llm["layers"][jn + sfx] = {"Dense_0": {"kernel": stack(lay + pn + ".dense.weight", Lg, np.transpose),
                                                       "bias": vec(stack(lay + pn + ".dense.bias", Lg))}}
            else:
                llm["layers"][jn + sfx] = {"scale": vec(stack(lay + pn + ".weight", Lg))}
        if adaptive:
            llm["final_norm" + sfx] = {"Dense_0": {"kernel": sd[prefix + "norm.dense.weight"].T,
                                                   "bias": vec(sd[prefix + "norm.dense.bias"])}}
        else:
            llm["final_norm" + sfx] = {"scale": vec(sd[prefix + "norm.weight"])}

    gemma(P + "language_model.", g, "", False)
    gemma(X, x, "_1", pi05)

    params = {"PaliGemma": {"img": img, "llm": llm}}
    projs = ["action_in_proj", "action_out_proj"]
    projs += ["time_mlp_in", "time_mlp_out"] if pi05 else ["state_proj", "action_time_mlp_in", "action_time_mlp_out"]
    for name in projs:
        params[name] = {"kernel": sd[name + ".weight"].T, "bias": vec(sd[name + ".bias"])}

    for f in flags:
        if f.startswith("--drop="):
            *parents, last = f[len("--drop="):].split(".")
            node = params
            for k in parents:
                node = node[k]
            del node[last]

    # Each leaf becomes a jax array (openpi saves jax arrays: the metadata says jax.Array; the
    # copy is jax's) in place, one at a time, so that its numpy original is freed at once. The
    # save then holds the model once plus its compressed chunks (one atomic OCDBT transaction, as
    # orbax's defaults write it): peak RSS about 1.8 times the model.
    def to_jax(node):
        for k, a in node.items():
            if isinstance(a, dict):
                to_jax(a)
            else:
                a = jnp.asarray(np.ascontiguousarray(a))
                node[k] = {"value": a} if "--value" in flags else a
                drop_source_pages()

    to_jax(params)
    tree = params
    os.makedirs(out, exist_ok=True)
    pdir = os.path.abspath(os.path.join(out, "params"))
    if os.path.exists(pdir):
        shutil.rmtree(pdir)
    # openpi's training/checkpoints.py: ocp.PyTreeCheckpointHandler() with its defaults (OCDBT
    # on), the item {"params": params}; restore_params reads it with ocp.PyTreeCheckpointer.
    chunk = [int(f.split("=")[1]) for f in flags if f.startswith("--chunk-bytes=")]
    save_args = jax.tree.map(lambda _: ocp.SaveArgs(chunk_byte_size=chunk[0]), {"params": tree}) if chunk else None
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(pdir, {"params": tree}, save_args=save_args)
    if os.path.isdir(os.path.join(src, "assets")):
        shutil.copytree(os.path.join(src, "assets"), os.path.join(out, "assets"), dirs_exist_ok=True)
    if "--no-config" not in flags:
        shutil.copy(os.path.join(src, "config.json"), os.path.join(out, "config.json"))
    n = len(jax.tree.leaves(tree))
    print(f"gen_orbax: wrote {n} arrays ({'pi0.5' if pi05 else 'pi0'}) to {pdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
