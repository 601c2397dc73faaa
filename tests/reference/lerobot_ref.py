"""lerobot_ref.py — lerobot's real PyTorch π0 / π0.5 policy built from a pi0.c-generated checkpoint.

The reusable half of the reference tests (tests/reference/): it builds lerobot's `PI0Policy` /
`PI05Policy` and its pre/post processors from a checkpoint directory in lerobot's layout (as
`pi0 gen-model --layout lerobot` writes it) the way a lerobot user does,

    policy = PI0Policy.from_pretrained(dir)
    pre, post = make_pre_post_processors(policy.config, pretrained_path=dir, preprocessor_overrides=...)

and runs it on a raw observation with given noise. Two things differ from a user's run, both
needed because the checkpoints are tiny random ones and nothing may come from the hub:

  * Architecture sizes. lerobot hard-codes PaliGemma's (gemma_2b / gemma_300m widths, SigLIP
    so400m, vocabulary 257152). `tiny_architecture()` patches, while the model is built, the
    three places lerobot takes them from: `get_gemma_config` (widths, depths, heads) and the two
    model classes' constructors (`PaliGemmaForConditionalGenerationWithPiGemma`,
    `PiGemmaForCausalLM`), whose Hugging Face configs get the checkpoint's vision tower, projector
    width and vocabulary just before lerobot's own constructor runs. Every forward line is
    lerobot's. pi0.c's config.json keeps its explicit architecture blocks (so tiny presets load
    in pi0.c); lerobot's config parser (draccus) refuses unknown keys, so lerobot reads a copy of
    the directory whose config.json has only lerobot's fields (`lerobot_view()`); every other
    file is the same (symlinked).
  * The tokenizer. The processor's `tokenizer_processor` step names the hub's PaliGemma
    tokenizer; lerobot's documented `preprocessor_overrides` hand it a local directory
    (tokenizer.json plus the hub's tokenizer_config.json fields) instead: AutoTokenizer loads
    it as it loads the hub's. HF_HUB_OFFLINE=1 is set: nothing is fetched.

Noise: lerobot's own argument — `policy.predict_action_chunk(batch, noise=...)` forwards it to
`PI0Pytorch.sample_actions(..., noise=None)` (lerobot/policies/pi0/modeling_pi0.py), which draws
its own only when none is given. Shape [1, chunk_size, max_action_dim], as pi0.c's `--noise`.

Used by lerobot_e2e.py and lerobot_components.py; the real-time-chunking tests reuse it.
"""
import contextlib
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

# pi0.c's explicit architecture blocks and markers in a generated config.json: not lerobot fields.
PI0C_KEYS = ("discrete_state_input", "random_weights", "action_dim", "state_dim", "action_horizon",
             "max_token_len", "num_steps", "time_min_period", "time_max_period", "vision", "vlm", "expert",
             "num_cameras", "text_embed_bf16", "pi05")


def versions():
    import lerobot
    import transformers
    return {"lerobot": lerobot.__version__ if hasattr(lerobot, "__version__") else _dist_version("lerobot"),
            "torch": torch.__version__, "transformers": transformers.__version__}


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


def lerobot_view(ckpt, out):
    """A copy of checkpoint directory `ckpt` at `out` that lerobot's config parser accepts:
    config.json without pi0.c's own keys, every other file symlinked. Returns (out, pi0c_config)."""
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for f in os.listdir(ckpt):
        if f != "config.json":
            os.symlink(os.path.abspath(os.path.join(ckpt, f)), os.path.join(out, f))
    lr = {k: v for k, v in cfg.items() if k not in PI0C_KEYS}
    json.dump(lr, open(os.path.join(out, "config.json"), "w"), indent=1)
    return out, cfg


def tokenizer_dir(tokenizer_json, out):
    """A local tokenizer directory AutoTokenizer loads like the hub's google/paligemma-3b-pt-224:
    its tokenizer.json (with PaliGemma's <bos> post-processor where it has none) and the special
    tokens / bos rule of the hub's tokenizer_config.json."""
    os.makedirs(out, exist_ok=True)
    tj = json.load(open(tokenizer_json, encoding="utf-8"))
    if tj.get("post_processor") is None:
        # The small test tokenizer has no post-processor; PaliGemma's tokenizer.json prepends
        # <bos> with this TemplateProcessing (the hub's, read from /work/main/.tok/tokenizer.json).
        bos = next(t["id"] for t in tj["added_tokens"] if t["content"] == "<bos>")
        tj["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [bos], "tokens": ["<bos>"]}}}
    json.dump(tj, open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    json.dump({"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>",
               "pad_token": "<pad>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
               "model_max_length": 1000000000000000019884624838656},
              open(os.path.join(out, "tokenizer_config.json"), "w"))
    return out


@contextlib.contextmanager
def tiny_architecture(cfg):
    """While active, lerobot's π0 / π0.5 model classes build the architecture of pi0.c config
    `cfg` (its vision / vlm / expert blocks) instead of PaliGemma's fixed sizes."""
    from lerobot.policies.pi0 import modeling_pi0
    from lerobot.policies.pi05 import modeling_pi05
    v, g, x = cfg["vision"], cfg["vlm"], cfg["expert"]
    sizes = {"gemma_2b": g, "gemma_300m": x}
    saved = []

    for mod in (modeling_pi0, modeling_pi05):
        real_gc, real_pg, real_ex = mod.get_gemma_config, mod.PaliGemmaForConditionalGenerationWithPiGemma, \
            mod.PiGemmaForCausalLM
        saved.append((mod, real_gc, real_pg, real_ex))

        def get_gemma_config(variant, _m=mod):
            s = sizes[variant]
            return _m.GemmaConfig(width=s["width"], depth=s["depth"], mlp_dim=s["mlp_dim"],
                                  num_heads=s["num_heads"], num_kv_heads=s["num_kv_heads"], head_dim=s["head_dim"])

        def paligemma(config, _real=real_pg):
            vc, tc = config.vision_config, config.text_config
            vc.hidden_size, vc.num_hidden_layers, vc.intermediate_size = v["width"], v["depth"], v["mlp_dim"]
            vc.num_attention_heads, vc.patch_size, vc.image_size = v["num_heads"], v["patch_size"], v["image_size"]
            vc.layer_norm_eps = v["norm_eps"]
            vc.projection_dim = config.projection_dim = g["width"]
            config.text_config.vocab_size = g["vocab_size"]
            config._vocab_size = g["vocab_size"]
            tc.rms_norm_eps, tc.rope_theta = g["norm_eps"], g["rope_theta"]
            return _real(config=config)

        def expert(config, _real=real_ex):
            config.vocab_size = g["vocab_size"]
            config.rms_norm_eps, config.rope_theta = x["norm_eps"], x["rope_theta"]
            return _real(config=config)

        mod.get_gemma_config = get_gemma_config
        mod.PaliGemmaForConditionalGenerationWithPiGemma = paligemma
        mod.PiGemmaForCausalLM = expert
    try:
        yield
    finally:
        for mod, gc, pg, ex in saved:
            mod.get_gemma_config, mod.PaliGemmaForConditionalGenerationWithPiGemma, mod.PiGemmaForCausalLM = gc, pg, ex


class Reference:
    """lerobot's policy and processors for one checkpoint directory."""

    def __init__(self, ckpt, tokenizer_json, work):
        from lerobot.policies.factory import make_pre_post_processors
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy
        from lerobot.policies.pi05.modeling_pi05 import PI05Policy
        view, self.cfg = lerobot_view(ckpt, os.path.join(work, "lerobot_view"))
        self.pi05 = self.cfg["type"] == "pi05"
        cls = PI05Policy if self.pi05 else PI0Policy
        with tiny_architecture(self.cfg), contextlib.redirect_stdout(open(os.devnull, "w")):
            self.policy = cls.from_pretrained(view)
        self.policy.eval()
        self._check_loaded(ckpt)
        tok = tokenizer_dir(tokenizer_json, os.path.join(work, "tokenizer"))
        self.pre, self.post = make_pre_post_processors(
            self.policy.config, pretrained_path=view,
            preprocessor_overrides={"tokenizer_processor": {"tokenizer_name": tok}})
        self.chunk = self.policy.config.chunk_size
        self.max_action_dim = self.policy.config.max_action_dim

    def _check_loaded(self, ckpt):
        """lerobot's from_pretrained prints and goes on with random weights when the state dict does
        not load: check that every checkpoint tensor is in the model with its value."""
        from safetensors.torch import load_file
        sd = self.policy.state_dict()
        for k, t in load_file(os.path.join(ckpt, "model.safetensors")).items():
            key = k if k.startswith("model.") else "model." + k
            if key not in sd:
                raise RuntimeError(f"lerobot model has no tensor {key}")
            if not torch.equal(sd[key].to(torch.float32), t.to(torch.float32)):
                raise RuntimeError(f"lerobot model's {key} differs from the checkpoint's (not loaded)")

    def batch(self, images, state, task):
        """A raw observation as a lerobot robot/env gives it: images {feature: uint8 HxWx3} as
        float32 [3, H, W] in [0, 1], state float32 [S], the task string."""
        b = {k: torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1))).float() / 255.0 for k, im in images.items()}
        b["observation.state"] = torch.from_numpy(np.asarray(state, np.float32))
        b["task"] = task
        return b

    @torch.no_grad()
    def actions(self, images, state, task, noise):
        """The action chunk [chunk_size, A] for a raw observation and noise [chunk_size, max_action_dim]."""
        self.policy.reset()
        obs = self.pre(self.batch(images, state, task))
        nz = torch.from_numpy(np.asarray(noise, np.float32))[None]
        chunk = self.policy.predict_action_chunk(obs, noise=nz)
        return self.post(chunk)[0].float().numpy()

    @torch.no_grad()
    def trace(self, images, state, task, noise):
        """The same forward as actions(), with lerobot's modules hooked: a dict of named
        intermediates in `pi0 run --dump`'s names and layouts (float32 numpy), plus "prefix_valid"
        (the prefix rows lerobot's pad mask keeps), the model inputs (images, image_masks, tokens,
        token_mask, state, as `pi0 run` takes them), "actions" (the model's output) and
        "actions_out" (after lerobot's postprocessor)."""
        m = self.policy.model
        pwe = m.paligemma_with_expert
        vt = pwe.paligemma.model.vision_tower.vision_model
        out, hooks, lists = {}, [], {k: [] for k in ("vision_patch", "vision_block0", "img_emb", "vlm_layer0",
                                                     "expert_layer0")}

        def first(o):
            return (o[0] if isinstance(o, (tuple, list)) else o)[0].detach().float().numpy().copy()

        def hook(name):
            return lambda mod, inp, o: lists[name].append(first(o))

        hooks.append(vt.embeddings.register_forward_hook(hook("vision_patch")))
        hooks.append(vt.encoder.layers[0].register_forward_hook(hook("vision_block0")))
        hooks.append(pwe.paligemma.model.multi_modal_projector.register_forward_hook(hook("img_emb")))
        hooks.append(pwe.paligemma.model.language_model.layers[0].register_forward_hook(hook("vlm_layer0")))
        hooks.append(pwe.gemma_expert.model.layers[0].register_forward_hook(hook("expert_layer0")))
        real = {n: getattr(m, n) for n in ("embed_prefix", "embed_suffix", "denoise_step", "sample_actions")}
        real_fwd = pwe.forward
        steps = {"suffix_emb": [], "adarms_cond": [], "v_t": []}

        def embed_prefix(*a, **k):
            r = real["embed_prefix"](*a, **k)
            out["prefix_emb"] = r[0][0].float().numpy().copy()
            out["prefix_valid"] = r[1][0].numpy().copy()
            return r

        def embed_suffix(*a, **k):
            r = real["embed_suffix"](*a, **k)
            steps["suffix_emb"].append(r[0][0].float().numpy().copy())
            if r[3] is not None:
                steps["adarms_cond"].append(r[3][0].float().numpy().copy())
            return r

        def denoise_step(*a, **k):
            r = real["denoise_step"](*a, **k)
            steps["v_t"].append(r[0].float().numpy().copy())
            return r

        def fwd(*a, **k):
            r = real_fwd(*a, **k)
            if k.get("use_cache") and r[1] is not None:  # the prefix pass: its K/V cache per layer
                for l, layer in enumerate(r[1].layers):
                    for n, t in (("prefix_k", layer.keys), ("prefix_v", layer.values)):
                        t = t[0].float()  # [kv heads, T, head_dim] -> [T, kv heads * head_dim]
                        out[f"{n}.{l}"] = t.permute(1, 0, 2).reshape(t.shape[1], -1).numpy().copy()
            return r

        def sample_actions(*a, **k):  # (images, img_masks, tokens, token_masks[, state (π0)], ...)
            out["images"] = torch.cat(a[0], 0).float().numpy().copy()  # [cameras, 3, S, S] in [-1, 1]
            out["image_masks"] = torch.cat(a[1], 0).numpy().astype(np.uint8)
            out["tokens"], out["token_mask"] = a[2][0].numpy().astype(np.int32), a[3][0].numpy().astype(np.uint8)
            if not self.pi05:
                out["state"] = a[4][0].float().numpy().copy()
            r = real["sample_actions"](*a, **k)
            out["actions"] = r[0].float().numpy().copy()  # the model's output, before the postprocessor
            return r

        m.embed_prefix, m.embed_suffix, m.denoise_step, m.sample_actions = embed_prefix, embed_suffix, denoise_step, \
            sample_actions
        pwe.forward = fwd
        try:
            out["actions_out"] = self.actions(images, state, task, noise)
        finally:
            for h in hooks:
                h.remove()
            for n, f in real.items():
                setattr(m, n, f)
            pwe.forward = real_fwd
        for name, vals in lists.items():
            if name == "vlm_layer0":
                out[name] = vals[0]
            else:
                out.update({f"{name}.{i}": v for i, v in enumerate(vals)})
        for name, vals in steps.items():
            out.update({f"{name}.{i}": v for i, v in enumerate(vals)})
        return out


# ---------------------------------------------------------------- pi0.c's side of a case

def gen_checkpoint(pi0, out, preset="tiny", pi05=False, cameras=None, dtype="f32", relative=False, S=None, A=None,
                   seed=1, lerobot_dtype=None):
    """`pi0 gen-model --layout lerobot` with a pi0.c preset, optionally with another camera count
    (1-3, through a config file) and lerobot's "dtype" field set in config.json."""
    import subprocess
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    cfg = preset
    if cameras is not None:
        base = out + ".preset"
        subprocess.run([pi0, "gen-model", "--config", preset, "--out", base] + (["--pi05"] if pi05 else []),
                       check=True, capture_output=True)
        c = json.load(open(os.path.join(base, "config.json")))
        c["num_cameras"] = cameras
        cfg = out + ".config.json"
        json.dump(c, open(cfg, "w"))
        shutil.rmtree(base)
    cmd = [pi0, "gen-model", "--config", cfg, "--layout", "lerobot", "--out", out, "--dtype", dtype,
           "--seed", str(seed)]
    cmd += ["--pi05"] if pi05 else []
    cmd += ["--relative-actions"] if relative else []
    cmd += ["--state-dim", str(S)] if S else []
    cmd += ["--action-dim", str(A)] if A else []
    subprocess.run(cmd, check=True, capture_output=True)
    if lerobot_dtype:
        c = json.load(open(os.path.join(out, "config.json")))
        c["dtype"] = lerobot_dtype
        json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=1)
    return out


def pi0_infer(pi0, ckpt, images, state, task, noise, tokenizer, work, backend="ref", extra=()):
    """`pi0 infer` on the same raw observation: images saved as PNG, the noise through --noise.
    Returns the action chunk [chunk_size, A] (float32)."""
    import subprocess
    from PIL import Image
    from safetensors.numpy import save_file
    os.makedirs(work, exist_ok=True)
    cmd = [pi0, "infer", "--model", ckpt, "--tokenizer", tokenizer, "--backend", backend, "--format", "json",
           "--prompt", task, "--state", ",".join(repr(float(s)) for s in state)]
    for i, (k, im) in enumerate(images.items()):
        path = os.path.join(work, f"cam{i}.png")
        Image.fromarray(im).save(path)
        cmd += ["--image", f"{k}={path}"]
    path = os.path.join(work, "noise.safetensors")
    save_file({"noise": np.ascontiguousarray(noise, np.float32)}, path)
    cmd += ["--noise", path, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pi0 infer failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return np.array(json.loads(r.stdout)["actions"], np.float32)


def compare(a, b):
    """(max |a - b|, max |b|, PCC) of two arrays of one shape."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    d = float(np.abs(a - b).max()) if a.size else 0.0
    pcc = 1.0 if np.array_equal(a, b) else float(np.corrcoef(a, b)[0, 1])
    return d, float(np.abs(b).max()) if b.size else 0.0, pcc
