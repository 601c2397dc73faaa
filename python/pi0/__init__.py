"""pi0 — pi0.c's policies from Python, with openpi's Policy interface.

A small layer over libpi0.so (ctypes + numpy, nothing to compile): a script written for openpi's
policy runs against pi0.c by changing how the policy is made.

    import pi0
    policy = pi0.Policy("checkpoint_dir", config="pi0_libero")   # openpi's config name
    result = policy.infer({
        "observation/image": frame,            # uint8 HWC (or CHW, or float in [0, 1])
        "observation/wrist_image": wrist,
        "observation/state": state,             # numbers
        "prompt": "put the bowl on the plate",
    })
    result["actions"]                            # np.float64 [action_horizon, action dims], as openpi
    policy.metadata                              # e.g. {"reset_pose": [...], ...} for ALOHA configs

Errors raise pi0.Pi0Error with the library's one-line message. libpi0.so is found through
$PI0_LIBRARY, then next to this package (an install prefix's lib directory), then a build tree
(build/ beside python/), then the system's loader.
"""
import ctypes
import ctypes.util
import json
import os

import numpy as np

__all__ = ["Policy", "Pi0Error", "configs", "library_path", "version"]


class Pi0Error(RuntimeError):
    """A call into libpi0 failed; the message is the library's."""


# ---------------------------------------------------------------- the library

def _candidates():
    env = os.environ.get("PI0_LIBRARY")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    d = here
    for _ in range(5):  # <prefix>/lib/python3/dist-packages/pi0 -> <prefix>/lib
        for sub in ("", "lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
            for name in ("libpi0.so.0", "libpi0.so"):
                yield os.path.join(d, sub, name)
        d = os.path.dirname(d)
    repo = os.path.dirname(os.path.dirname(here))
    yield os.path.join(repo, "build", "libpi0.so")
    found = ctypes.util.find_library("pi0")
    if found:
        yield found
    yield "libpi0.so.0"


def _load():
    errors = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
            if path == os.environ.get("PI0_LIBRARY"):
                break
    raise Pi0Error("cannot load libpi0.so (set PI0_LIBRARY to its path): " + "; ".join(errors or ["not found"]))


class _Params(ctypes.Structure):  # pi0_params
    _fields_ = [("backend", ctypes.c_char_p), ("num_threads", ctypes.c_int), ("compact_prefix", ctypes.c_int),
                ("dump", ctypes.c_void_p), ("dump_user", ctypes.c_void_p), ("inject", ctypes.c_void_p),
                ("inject_user", ctypes.c_void_p), ("flow_time", ctypes.c_int)]


class _PolicyParams(ctypes.Structure):  # pi0_policy_params
    _fields_ = [("config", ctypes.c_char_p), ("norm_stats", ctypes.c_char_p), ("tokenizer", ctypes.c_char_p),
                ("default_prompt", ctypes.c_char_p), ("action_dims", ctypes.c_int), ("adapt_to_pi", ctypes.c_int),
                ("fixed_seed", ctypes.c_int), ("seed", ctypes.c_uint64), ("pipeline", ctypes.c_char_p),
                ("lerobot_version", ctypes.c_char_p), ("model", _Params)]


class _PolicyRTC(ctypes.Structure):  # pi0_policy_rtc
    _fields_ = [("executed", ctypes.c_int), ("inference_delay", ctypes.c_int), ("execution_horizon", ctypes.c_int),
                ("schedule", ctypes.c_int), ("max_guidance_weight", ctypes.c_float),
                ("chunk", ctypes.POINTER(ctypes.c_float)), ("chunk_rows", ctypes.c_int), ("jacobian", ctypes.c_int)]


class _Inputs(ctypes.Structure):  # pi0_inputs
    _fields_ = [("batch", ctypes.c_int), ("num_cameras", ctypes.c_int), ("images", ctypes.POINTER(ctypes.c_float)),
                ("image_masks", ctypes.POINTER(ctypes.c_uint8)), ("tokens", ctypes.POINTER(ctypes.c_int32)),
                ("token_mask", ctypes.POINTER(ctypes.c_uint8)), ("state", ctypes.POINTER(ctypes.c_float)),
                ("noise", ctypes.POINTER(ctypes.c_float)), ("seed", ctypes.c_uint64)]


_RTC_SCHEDULES = ("ZEROS", "ONES", "LINEAR", "EXP")
_RTC_JACOBIANS = ("lerobot", "exact")
# pi0_dump_fn: (user, name, data, ndim, shape)
_DUMP_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int,
                            ctypes.POINTER(ctypes.c_int64))


class _Siglip(ctypes.Structure):  # pi0_siglip_config
    _fields_ = [(n, ctypes.c_int) for n in ("image_size", "patch_size", "width", "depth", "mlp_dim", "num_heads")] + [
        ("norm_eps", ctypes.c_float)]


class _Gemma(ctypes.Structure):  # pi0_gemma_config
    _fields_ = [(n, ctypes.c_int) for n in ("width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim",
                                            "vocab_size")] + [("norm_eps", ctypes.c_float), ("rope_theta", ctypes.c_double)]


class _Config(ctypes.Structure):  # pi0_config
    _fields_ = [("pi05", ctypes.c_int), ("discrete_state_input", ctypes.c_int), ("vision", _Siglip), ("vlm", _Gemma),
                ("expert", _Gemma)] + [(n, ctypes.c_int) for n in ("action_dim", "state_dim", "action_horizon",
                                                                   "max_token_len", "num_steps", "num_cameras")] + [
        ("time_min_period", ctypes.c_double), ("time_max_period", ctypes.c_double), ("random_weights", ctypes.c_int),
        ("text_embed_bf16", ctypes.c_int)]


class _Timing(ctypes.Structure):  # pi0_timing
    _fields_ = [(n, ctypes.c_double) for n in ("vision_ms", "prefix_ms", "denoise_ms", "total_ms")]


class _PolicyTiming(ctypes.Structure):  # pi0_policy_timing
    _fields_ = [("preprocess_ms", ctypes.c_double), ("model_ms", ctypes.c_double), ("postprocess_ms", ctypes.c_double),
                ("total_ms", ctypes.c_double), ("model", _Timing), ("seed", ctypes.c_uint64)]


_KEY_REFUSED, _KEY_IGNORED, _KEY_IMAGE, _KEY_NUMBERS, _KEY_TEXT = -1, 0, 1, 2, 3

_lib, _path = _load()


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_P, _S, _I, _D, _F = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_float)
_U8 = ctypes.POINTER(ctypes.c_uint8)
_sig("pi0_policy_params_size", ctypes.c_size_t)
_sig("pi0_policy_default_params", _PolicyParams)
_sig("pi0_policy_config_count", _I)
_sig("pi0_policy_config_name", _S, _I)
_sig("pi0_policy_create", _P)
_sig("pi0_policy_free", None, _P)
_sig("pi0_policy_load", _I, _P, _S, ctypes.POINTER(_PolicyParams))
_sig("pi0_policy_check", _I, _P, _S, ctypes.POINTER(_PolicyParams), _P)
_sig("pi0_policy_image_key", _S, _P, _S, ctypes.c_char_p, ctypes.c_size_t)
_sig("pi0_version", _S)
_sig("pi0_git_commit", _S)
_sig("pi0_policy_error", _S, _P)
_sig("pi0_policy_warning", _S, _P)
_sig("pi0_policy_metadata_json", _S, _P)
_sig("pi0_policy_action_dims", _I, _P)
_sig("pi0_policy_key_kind", _I, _P, _S)
_sig("pi0_policy_obs_clear", None, _P)
_sig("pi0_policy_obs_image_u8", _I, _P, _S, _U8, _I, _I, _I, _I)
_sig("pi0_policy_obs_image_f32", _I, _P, _S, _F, _I, _I, _I, _I)
_sig("pi0_policy_obs_image_f64", _I, _P, _S, _D, _I, _I, _I, _I)
_sig("pi0_policy_obs_numbers", _I, _P, _S, _D, _I)
_sig("pi0_policy_obs_text", _I, _P, _S, _S)
_sig("pi0_policy_obs_noise", _I, _P, _F, _I, _I)
_sig("pi0_policy_infer_f64", _I, _P, _D, ctypes.c_size_t, ctypes.POINTER(_I), ctypes.POINTER(_I))
_sig("pi0_policy_raw_actions", _I, _P, _F, ctypes.c_size_t, ctypes.POINTER(_I), ctypes.POINTER(_I))
_sig("pi0_policy_relative_action", _I, _P, _I, _D, _I, _F, ctypes.c_size_t)
_sig("pi0_policy_last_timing", _PolicyTiming, _P)
_sig("pi0_policy_rtc_default", _PolicyRTC)
_sig("pi0_policy_obs_rtc", _I, _P, ctypes.POINTER(_PolicyRTC))
_sig("pi0_policy_last_rtc", _PolicyRTC, _P)
_sig("pi0_policy_inputs", ctypes.POINTER(_Inputs), _P)
_sig("pi0_policy_model_config", ctypes.POINTER(_Config), _P)
if _lib.pi0_policy_params_size() != ctypes.sizeof(_PolicyParams):
    raise Pi0Error(f"{_path}: pi0_policy_params is {_lib.pi0_policy_params_size()} bytes there, "
                   f"{ctypes.sizeof(_PolicyParams)} in this binding: rebuild or update python/pi0")


def library_path():
    """The libpi0.so this module loaded."""
    return _path


def version():
    """libpi0's version and the git commit it was built from: ("0.1.0", "1a2b3c4d5e6f" or "unknown")."""
    return _lib.pi0_version().decode(), _lib.pi0_git_commit().decode()


def configs():
    """The config names the library knows (openpi's and pi0.c's presets)."""
    return [_lib.pi0_policy_config_name(i).decode() for i in range(_lib.pi0_policy_config_count())]


# ---------------------------------------------------------------- arrays

def _c_array(a, dtype):
    """a as a C-contiguous array of dtype: a itself when it already is one (no copy)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _flatten(obs, prefix=""):
    """openpi's flatten_dict: nested maps as "images/cam_high"."""
    for k, v in obs.items():
        key = (k.decode() if isinstance(k, bytes) else str(k))
        key = f"{prefix}/{key}" if prefix else key
        if isinstance(v, dict):
            yield from _flatten(v, key)
        else:
            yield key, v


def _text(v):
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return None


# ---------------------------------------------------------------- the policy

class Policy:
    """openpi's policy (create_trained_policy(get_config(config), model_dir)) run by libpi0.

    config: an openpi config name (pi0_libero, pi05_droid, pi0_aloha, ...) or a pi0.c preset
    (libero, droid, aloha, generic); None = "generic". norm_stats / tokenizer: paths overriding
    the ones found in model_dir. seed: None draws fresh noise on every call (as openpi); an
    integer gives the noise of that seed on every call. backend: "cuda", "fast" or "ref";
    threads: CPU threads (None = all cores). pipeline: None (from the checkpoint's files),
    "openpi" or "lerobot"; lerobot_version: None (detected), "current", "v0.4" or "v1".
    dump: None, or a callable(name, array) given each named intermediate of every infer call (the
    names of `pi0 run --dump`: "v_t.<step>", "rtc_correction.<step>", ...; a float32 copy). A lerobot
    checkpoint takes lerobot's keys ("observation.images.<cam>", "observation.state", "task"). A
    camera may be given by its short key, as on the command line: "base_0_rgb" for
    "images/base_0_rgb", "top" for "observation.images.top". Parameter mistakes (a missing
    norm_stats file, an unknown config or backend, ...) raise before the weights are read."""

    def __init__(self, model_dir, config=None, *, norm_stats=None, tokenizer=None, default_prompt=None, seed=None,
                 backend=None, threads=None, action_dims=None, adapt_to_pi=None, pipeline=None, lerobot_version=None,
                 dump=None):
        self._p = None
        self._dump = None
        pp = _lib.pi0_policy_default_params()
        enc = lambda s: None if s is None else os.fsencode(s) if not isinstance(s, bytes) else s  # noqa: E731
        self._keep = [enc(config), enc(norm_stats), enc(tokenizer), enc(default_prompt), enc(backend), enc(pipeline),
                      enc(lerobot_version)]
        pp.config, pp.norm_stats, pp.tokenizer, pp.default_prompt = self._keep[:4]
        pp.model.backend = self._keep[4]
        pp.pipeline, pp.lerobot_version = self._keep[5:7]
        if threads is not None:
            pp.model.num_threads = int(threads)
        if action_dims is not None:
            pp.action_dims = int(action_dims)
        if adapt_to_pi is not None:
            pp.adapt_to_pi = 1 if adapt_to_pi else 0
        if seed is not None:
            pp.fixed_seed, pp.seed = 1, int(seed)
        if dump is not None:
            def _on_dump(_user, name, data, ndim, shape, _fn=dump):
                dims = [int(shape[i]) for i in range(ndim)]
                n = int(np.prod(dims)) if dims else 1
                _fn(name.decode(), np.ctypeslib.as_array(data, shape=(n,)).reshape(dims).copy())
            self._dump = _DUMP_FN(_on_dump)  # kept alive as long as the policy
            pp.model.dump = ctypes.cast(self._dump, ctypes.c_void_p)
        p = _lib.pi0_policy_create()
        if not p:
            raise MemoryError("pi0_policy_create")
        # what the load would refuse, answered before it reads the weights (seconds to minutes)
        if (_lib.pi0_policy_check(p, enc(model_dir), ctypes.byref(pp), None) != 0
                or _lib.pi0_policy_load(p, enc(model_dir), ctypes.byref(pp)) != 0):
            msg = _lib.pi0_policy_error(p).decode(errors="replace")
            _lib.pi0_policy_free(p)
            raise Pi0Error(msg)
        self._p = p
        w = _lib.pi0_policy_warning(p)
        self.warning = w.decode(errors="replace") if w else None
        self._metadata = json.loads(_lib.pi0_policy_metadata_json(p).decode())
        self._rows = int(self._metadata["action_horizon"])
        self._dims = int(_lib.pi0_policy_action_dims(p))

    def _fail(self):
        raise Pi0Error(_lib.pi0_policy_error(self._p).decode(errors="replace"))

    def _check(self, rc):
        if rc != 0:
            self._fail()

    @property
    def metadata(self):
        """What openpi's server sends on connect (reset_pose for openpi's ALOHA configs) and
        pi0.c's description of the policy."""
        return dict(self._metadata)

    def _image(self, key, v):
        a = np.asarray(v)
        if a.dtype == np.uint8:
            setter, ctype = _lib.pi0_policy_obs_image_u8, _U8
        elif a.dtype == np.float64:
            setter, ctype = _lib.pi0_policy_obs_image_f64, _D
        elif a.dtype.kind == "f":  # float32 (float16 is widened to float32, as numpy's 255 * x would)
            a, setter, ctype = _c_array(a, np.float32), _lib.pi0_policy_obs_image_f32, _F
        else:
            raise Pi0Error(f"image '{key}' must be uint8 (or float in [0, 1]), not {a.dtype}")
        if a.ndim == 2:
            h, w, c, chw = a.shape[0], a.shape[1], 1, 0
        elif a.ndim == 3 and a.shape[2] in (1, 3, 4):
            h, w, c, chw = a.shape[0], a.shape[1], a.shape[2], 0
        elif a.ndim == 3 and a.shape[0] in (1, 3, 4):
            c, h, w, chw = a.shape[0], a.shape[1], a.shape[2], 1
        else:
            raise Pi0Error(f"image '{key}': shape must be [H, W, C] or [C, H, W] with C in 1, 3, 4, not {a.shape}")
        a = _c_array(a, a.dtype)
        self._check(setter(self._p, key.encode(), a.ctypes.data_as(ctype), w, h, c, chw))

    def _rtc(self, rtc):
        r = _lib.pi0_policy_rtc_default()
        keep = None
        unknown = set(rtc) - {"executed", "inference_delay", "execution_horizon", "schedule", "max_guidance_weight",
                              "chunk", "jacobian"}
        if unknown:
            raise Pi0Error(f"rtc: unknown field(s) {sorted(unknown)}")
        r.executed = int(rtc.get("executed", -1))
        r.inference_delay = int(rtc.get("inference_delay", 0))
        r.execution_horizon = int(rtc.get("execution_horizon", 0) or 0)
        sched = rtc.get("schedule")
        if isinstance(sched, str):
            if sched.upper() not in _RTC_SCHEDULES:
                raise Pi0Error(f"rtc: schedule '{sched}' is none of {', '.join(_RTC_SCHEDULES)}")
            sched = _RTC_SCHEDULES.index(sched.upper())
        r.schedule = -1 if sched is None else int(sched)
        r.max_guidance_weight = float(rtc.get("max_guidance_weight", 0) or 0)
        jac = rtc.get("jacobian", "lerobot")
        if jac not in _RTC_JACOBIANS:
            raise Pi0Error(f"rtc: jacobian '{jac}' is none of {', '.join(_RTC_JACOBIANS)}")
        r.jacobian = _RTC_JACOBIANS.index(jac)
        if rtc.get("chunk") is not None:
            keep = _c_array(np.asarray(rtc["chunk"]), np.float32)
            if keep.ndim != 2:
                raise Pi0Error(f"rtc: chunk must be [rows, action_dim] (raw_actions()), not {keep.shape}")
            r.chunk, r.chunk_rows = keep.ctypes.data_as(_F), keep.shape[0]
        self._check(_lib.pi0_policy_obs_rtc(self._p, ctypes.byref(r)))

    def infer(self, obs, *, noise=None, rtc=None):
        """openpi's Policy.infer: obs by openpi's keys (nested dicts allowed) -> {"actions":
        float64 [action_horizon, action dims], "policy_timing": {"infer_ms": model time}}. float64 as
        openpi returns them (its Unnormalize promotes the model's float32 with float64 norm stats);
        lerobot checkpoints' actions are float32 values, as lerobot computes them.

        rtc: guided real-time chunking (lerobot's), a dict: "executed" (rows of the previous chunk
        executed since it was returned; the rest is the leftover the new chunk is guided towards),
        "inference_delay" (rows of the new chunk executed before it arrives), and optionally
        "execution_horizon", "schedule" ("ZEROS", "ONES", "LINEAR", "EXP"), "max_guidance_weight"
        (absent: the checkpoint's rtc_config, else lerobot's defaults), "chunk" (a raw_actions()
        array to take the leftover from instead of this policy's last chunk) and "jacobian"
        ("lerobot", the default: lerobot's identity; "exact": the vector-Jacobian product through
        the action expert, the RTC paper's Algorithm 1)."""
        if self._p is None:
            raise Pi0Error("the policy is closed")
        _lib.pi0_policy_obs_clear(self._p)
        for key, v in _flatten(obs):
            kind = _lib.pi0_policy_key_kind(self._p, key.encode())
            if kind == _KEY_IGNORED:  # a short camera key (base_0_rgb for images/base_0_rgb), the CLI's rule
                buf = ctypes.create_string_buffer(512)
                full = _lib.pi0_policy_image_key(self._p, key.encode(), buf, len(buf)).decode()
                if full != key:
                    key, kind = full, _lib.pi0_policy_key_kind(self._p, full.encode())
            if kind == _KEY_REFUSED:
                self._fail()
            elif kind == _KEY_IMAGE:
                self._image(key, v)
            elif kind == _KEY_NUMBERS:
                a = _c_array(np.asarray(v).reshape(-1), np.float64)
                self._check(_lib.pi0_policy_obs_numbers(self._p, key.encode(), a.ctypes.data_as(_D), a.size))
            elif kind == _KEY_TEXT:
                t = _text(v)
                if t is None:
                    raise Pi0Error(f"'{key}' must be a string")
                self._check(_lib.pi0_policy_obs_text(self._p, key.encode(), t))
        if noise is not None:
            n = _c_array(np.asarray(noise), np.float32)
            if n.ndim == 3 and n.shape[0] == 1:  # openpi accepts a batch of one
                n = n[0]
            if n.ndim != 2:
                raise Pi0Error(f"noise must be [action_horizon, action_dim], not {n.shape}")
            self._check(_lib.pi0_policy_obs_noise(self._p, n.ctypes.data_as(_F), n.shape[0], n.shape[1]))
        if rtc is not None:
            self._rtc(rtc)
        out = np.empty((self._rows, self._dims), np.float64)  # filled in place by the library
        rows, dims = ctypes.c_int(), ctypes.c_int()
        self._check(_lib.pi0_policy_infer_f64(self._p, out.ctypes.data_as(_D), out.size, ctypes.byref(rows),
                                              ctypes.byref(dims)))
        t = _lib.pi0_policy_last_timing(self._p)
        return {"actions": out, "policy_timing": {"infer_ms": t.model_ms}}

    def raw_actions(self):
        """The last infer call's model output [action_horizon, action_dim], in the model's normalized
        space (before openpi's output transforms)."""
        rows, dims = ctypes.c_int(), ctypes.c_int()
        _lib.pi0_policy_raw_actions(self._p, None, 0, ctypes.byref(rows), ctypes.byref(dims))  # the shape
        if rows.value == 0:
            raise Pi0Error("no successful infer call yet")
        out = np.empty((rows.value, dims.value), np.float32)
        self._check(_lib.pi0_policy_raw_actions(self._p, out.ctypes.data_as(_F), out.size, ctypes.byref(rows),
                                                ctypes.byref(dims)))
        return out

    def model_inputs(self):
        """The last infer call's model inputs (batch 1): images [cameras, 3, S, S] in [-1, 1],
        image_masks, tokens, token_mask, state (normalized, padded), noise [action_horizon,
        action_dim]; copies."""
        ptr = _lib.pi0_policy_inputs(self._p)
        if not ptr:
            raise Pi0Error("no infer call yet")
        i, c = ptr.contents, _lib.pi0_policy_model_config(self._p).contents
        horizon, adim, ntok, size = c.action_horizon, c.action_dim, c.max_token_len, c.vision.image_size
        out = {}
        ncam = i.num_cameras
        out["images"] = np.ctypeslib.as_array(i.images, (ncam, 3, size, size)).copy() if ncam else None
        out["image_masks"] = (np.ctypeslib.as_array(i.image_masks, (ncam,)).astype(bool) if i.image_masks
                              else np.ones(ncam, bool))
        out["tokens"] = np.ctypeslib.as_array(i.tokens, (ntok,)).copy()
        out["token_mask"] = np.ctypeslib.as_array(i.token_mask, (ntok,)).astype(bool)
        out["state"] = np.ctypeslib.as_array(i.state, (c.state_dim,)).copy() if i.state else None
        out["noise"] = np.ctypeslib.as_array(i.noise, (horizon, adim)).copy()
        return out

    def relative_action(self, row, state):
        """lerobot checkpoints with relative actions: row `row` of the last chunk made absolute with
        `state`, the robot's raw state at the tick it is executed (lerobot's synchronous rollout),
        instead of the state the chunk was planned from."""
        st = _c_array(np.asarray(state).reshape(-1), np.float64)
        out = np.empty(self._dims, np.float32)
        self._check(_lib.pi0_policy_relative_action(self._p, int(row), st.ctypes.data_as(_D), st.size,
                                                    out.ctypes.data_as(_F), out.size))
        return out

    def reset(self):
        """openpi's BasePolicy.reset: nothing to reset."""

    def close(self):
        if getattr(self, "_p", None) is not None and _lib is not None:  # _lib: None at interpreter exit
            _lib.pi0_policy_free(self._p)
        self._p = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
