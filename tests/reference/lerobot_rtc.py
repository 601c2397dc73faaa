"""lerobot_rtc.py — pi0.c's guided real-time chunking against lerobot's real RTC code (issue 18).

lerobot's RTCProcessor (lerobot/policies/rtc/modeling_rtc.py) inside its real PI0Policy /
PI05Policy (built by lerobot_ref.Reference from a pi0.c-generated lerobot-layout checkpoint whose
config.json carries an enabled rtc_config) and pi0.c's Python binding (lerobot pipeline) on the
same raw observation, the same noise and the same leftover:

  1. a plain chunk from pi0.c (its model-space output, pi0.Policy.raw_actions()) is the previous
     chunk; its rows [executed:] (native action dims) are lerobot's prev_chunk_left_over;
  2. the next chunk with guidance: lerobot's predict_action_chunk(..., inference_delay,
     prev_chunk_left_over, execution_horizon) against pi0.Policy.infer(obs, rtc={executed,
     inference_delay, schedule, max_guidance_weight, execution_horizon, chunk}), both in model
     space (before the postprocessor).

Cases: π0 and π0.5, float32 weights, every schedule (ZEROS, ONES, LINEAR, EXP), 2 delays; one
case takes schedule, weight and horizon from the checkpoint's rtc_config (pi0.c reads it).
Criteria: ref max |diff| <= 1e-4 * max(1, max |lerobot|); fast PCC >= 0.999; and the guided
chunk differs from the plain one (the comparison can fail).

The exact Jacobian (pi0.c's jacobian = "exact"): lerobot's RTCProcessor.denoise_step replaced on
its policy by the RTC paper's Algorithm 1 in torch: x_t.requires_grad_(True) BEFORE lerobot's own
denoise step computes v_t (the same prefix K/V cache, computed without gradients, hence held
fixed; the same time), x1 = x_t - time * v_t, err = (prev - x1) * w with lerobot's own prefix
weights, correction = torch.autograd.grad(x1, x_t, err), v_t - g * correction with lerobot's
guidance weight formula. Against pi0.c through its binding (rtc={"jacobian": "exact"}), whose
dump callback gives each step's correction (rtc_correction.<step>, lerobot's sign): per step
max |diff| and PCC (ref >= 0.9999), and the guided actions (ref <= 1e-4 relative; fast PCC
>= 0.999).

Also what lerobot's guidance differentiates: it takes v_t before it enables gradients on x_t,
so autograd sees only x1 = x_t - time * v_t: its "correction" is the weighted error itself
(identity Jacobian), which pi0.c's "lerobot" Jacobian reproduces. Checked on lerobot's
RTCProcessor with a non-linear denoiser (correction == err exactly, the true VJP differs).

    lerobot_rtc.py PI0 TOKENIZER_JSON TMP     (PYTHONPATH / PI0_LIBRARY: pi0.c's binding)
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lerobot_ref as L  # noqa: E402
import torch  # noqa: E402

PI0, TOK, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
SCHEDULES = ("ZEROS", "ONES", "LINEAR", "EXP")
FAILS = []


def check(ok, msg):
    if not ok:
        FAILS.append(msg)
        print("FAIL:", msg, flush=True)


def jacobian_form():
    """lerobot's RTCProcessor on a non-linear denoiser: what its autograd call returns."""
    from lerobot.configs import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig
    from lerobot.policies.rtc.modeling_rtc import RTCProcessor
    torch.manual_seed(0)
    w = torch.randn(6, 6, requires_grad=True)  # a weight that requires grad, as a policy's do

    def f(x):
        return torch.tanh(x @ w) * 2.0

    p = RTCProcessor(RTCConfig(enabled=True, prefix_attention_schedule=RTCAttentionSchedule.LINEAR,
                               max_guidance_weight=5.0, execution_horizon=4, debug=True))
    x, prev, t = torch.randn(1, 5, 6), torch.randn(3, 6), 0.6
    with torch.no_grad():
        out = p.denoise_step(x, prev, 1, t, f)
    st = p.get_all_debug_steps()[-1]
    xg = x.clone().requires_grad_(True)
    true_vjp = torch.autograd.grad(xg - t * f(xg), xg, st.err)[0]
    d_id = float((st.correction - st.err).abs().max())
    d_true = float((st.correction - true_vjp).abs().max())
    print(f"lerobot's RTC correction vs its weighted error: max |diff| {d_id:.3g} (identity Jacobian); "
          f"vs the true VJP through the denoiser: {d_true:.3g}", flush=True)
    check(d_id == 0.0, "lerobot's correction is not its weighted error")
    check(d_true > 1e-3, "lerobot's correction equals the true VJP: the identity claim is untested")
    v = f(x).detach()
    check(torch.allclose(out, v - st.guidance_weight * st.err), "lerobot's result is not v - g * err")


def exact_denoise_step(proc, log):
    """A stand-in for proc.denoise_step (same arguments) computing the exact VJP; appends each
    step's correction [T, A] (numpy) to log."""
    def step(x_t, prev_chunk_left_over, inference_delay, time, original_denoise_step_partial, execution_horizon=None):
        if prev_chunk_left_over is None:
            return original_denoise_step_partial(x_t)
        horizon = proc.rtc_config.execution_horizon if execution_horizon is None else execution_horizon
        horizon = min(horizon, prev_chunk_left_over.shape[1])
        B, T, A = x_t.shape
        prev = torch.zeros(B, T, A)
        prev[:, :prev_chunk_left_over.shape[1], :prev_chunk_left_over.shape[2]] = prev_chunk_left_over
        w = proc.get_prefix_weights(inference_delay, horizon, T)[None, :, None]
        with torch.enable_grad():
            x = x_t.detach().clone().requires_grad_(True)  # before v_t: autograd sees the network
            v = original_denoise_step_partial(x)
            x1 = x - time * v
            err = ((prev - x1) * w).detach()
            corr = torch.autograd.grad(x1, x, err)[0]
        tau = torch.as_tensor(1 - time)
        mx = torch.as_tensor(proc.rtc_config.max_guidance_weight)
        inv_r2 = ((1 - tau) ** 2 + tau ** 2) / (1 - tau) ** 2
        c = torch.nan_to_num((1 - tau) / tau, posinf=mx)
        g = torch.minimum(torch.nan_to_num(c * inv_r2, posinf=mx), mx)
        log.append(corr[0].detach().float().numpy().copy())
        return v.detach() - g * corr
    return step


def with_rtc_config(ckpt, sched, weight, horizon):
    cfg_path = os.path.join(ckpt, "config.json")
    c = json.load(open(cfg_path))
    c["rtc_config"] = {"enabled": True, "prefix_attention_schedule": sched, "max_guidance_weight": weight,
                       "execution_horizon": horizon, "debug": False, "debug_maxlen": 100}
    json.dump(c, open(cfg_path, "w"), indent=1)


def run_model(pi05):
    import pi0
    name = "pi05" if pi05 else "pi0"
    work = os.path.join(TMP, name)
    ckpt = L.gen_checkpoint(PI0, os.path.join(work, "ckpt"), seed=31 + pi05, pi05=pi05, S=6, A=5)
    cfg_sched, cfg_w, cfg_h = "EXP", 4.0, 4
    with_rtc_config(ckpt, cfg_sched, cfg_w, cfg_h)  # pi0.c honours it; lerobot enables RTC from it
    t0 = time.time()
    ref = L.Reference(ckpt, TOK, work)
    rc = ref.policy.config.rtc_config
    check(rc is not None and rc.enabled, f"{name}: lerobot did not enable RTC from config.json")
    H, A_model = ref.chunk, ref.max_action_dim
    rng = np.random.default_rng(7 + pi05)
    img = ref.cfg["vision"]["image_size"]
    images = {"observation.images.top": rng.integers(0, 256, (img + 5, img - 2, 3), dtype=np.uint8)}
    state = rng.standard_normal(6).astype(np.float32)
    task = "put the cup on the plate"
    obs = {**images, "observation.state": state, "task": task}
    n1 = rng.standard_normal((H, A_model)).astype(np.float32)
    n2 = rng.standard_normal((H, A_model)).astype(np.float32)
    pols = {b: pi0.Policy(ckpt, tokenizer=TOK, backend=b) for b in ("ref", "fast")}
    pol = pols["ref"]
    pol.infer(obs, noise=n1)
    chunk = pol.raw_actions()                          # the previous chunk, model space [H, A_model]
    A = 5                                              # the native action dims (lerobot's output)
    pol.infer(obs, noise=n2)
    plain = pol.raw_actions()[:, :A]
    lr_batch = ref.pre(ref.batch(images, state, task))
    print(f"{name}: lerobot built in {time.time() - t0:.1f} s; H {H}, max_action_dim {A_model}, action dims {A}",
          flush=True)
    # (schedule, delay, executed, horizon, weight); None: the checkpoint's rtc_config
    cases = [(s, d, 1, 4, 5.0) for s in SCHEDULES for d in (1, 3)] + [(None, 2, 1, None, None)]
    for sched, delay, executed, horizon, weight in cases:
        left = torch.from_numpy(chunk[executed:, :A].copy())[None]  # lerobot's queue holds native dims
        rc.prefix_attention_schedule = type(rc.prefix_attention_schedule)(sched or cfg_sched)
        rc.max_guidance_weight = weight if weight is not None else cfg_w
        ref.policy.reset()
        with torch.no_grad():
            want = ref.policy.predict_action_chunk(lr_batch, noise=torch.from_numpy(n2)[None], inference_delay=delay,
                                                   prev_chunk_left_over=left, execution_horizon=horizon)
        want = want[0].float().numpy()
        req = {"executed": executed, "inference_delay": delay, "chunk": chunk}
        if sched is not None:
            req.update(schedule=sched, max_guidance_weight=weight, execution_horizon=horizon)
        label = f"{name} {sched or 'rtc_config ' + cfg_sched} delay {delay}"
        for backend, p in pols.items():
            p.infer(obs, noise=n2, rtc=req)
            got = p.raw_actions()[:, :A]
            d, mx, pcc = L.compare(got, want)
            print(f"  {label:28s} {backend:4s}: max |diff| {d:.3g} (max |lerobot| {mx:.3g}), PCC {pcc:.7f}", flush=True)
            if backend == "ref":
                check(d <= 1e-4 * max(1.0, mx), f"{label} ref: max |diff| {d:.3g} > 1e-4 relative")
            else:
                check(pcc >= 0.999, f"{label} fast: PCC {pcc:.6f} < 0.999")
        moved = float(np.abs(want - plain).max())
        check(moved > 1e-3, f"{label}: guidance changed lerobot's chunk by only {moved:.3g}")
    for p in pols.values():
        p.close()
    # the exact Jacobian: torch.autograd through lerobot's model vs pi0.c's jacobian = "exact"
    proc = ref.policy.model.rtc_processor
    dumps = {}

    def keeper(backend):
        def keep(n, a):
            if n.startswith("rtc_correction."):
                dumps[backend][n] = a
        return keep

    dpols = {b: pi0.Policy(ckpt, tokenizer=TOK, backend=b, dump=keeper(b)) for b in ("ref", "fast")}
    for sched, delay in (("LINEAR", 1), ("EXP", 3)):
        left = torch.from_numpy(chunk[1:, :A].copy())[None]
        rc.prefix_attention_schedule = type(rc.prefix_attention_schedule)(sched)
        rc.max_guidance_weight = 5.0
        torch_corr = []
        proc.denoise_step = exact_denoise_step(proc, torch_corr)
        ref.policy.reset()
        try:
            with torch.no_grad():
                want = ref.policy.predict_action_chunk(lr_batch, noise=torch.from_numpy(n2)[None], inference_delay=delay,
                                                       prev_chunk_left_over=left, execution_horizon=4)
        finally:
            del proc.denoise_step  # lerobot's own method again
        want = want[0].float().numpy()
        req = {"executed": 1, "inference_delay": delay, "chunk": chunk, "schedule": sched, "max_guidance_weight": 5.0,
               "execution_horizon": 4}
        label = f"{name} exact {sched} delay {delay}"
        for backend, p in dpols.items():
            dumps[backend] = {}
            p.infer(obs, noise=n2, rtc=dict(req, jacobian="exact"))
            got = p.raw_actions()[:, :A]
            check(len(torch_corr) > 0 and all(f"rtc_correction.{k}" in dumps[backend] for k in range(len(torch_corr))),
                  f"{label} {backend}: a step's correction is missing")
            for k, tc in enumerate(torch_corr):
                gc = dumps[backend].get(f"rtc_correction.{k}")
                if gc is None:
                    continue
                d, mx, pcc = L.compare(gc[:, :A], tc[:, :A])
                print(f"  {label:28s} {backend:4s} step {k} correction vs torch.autograd.grad: max |diff| {d:.3g} "
                      f"(max |torch| {mx:.3g}), PCC {pcc:.7f}", flush=True)
                if backend == "ref":
                    check(pcc >= 0.9999, f"{label} step {k}: correction PCC {pcc:.6f} < 0.9999")
                elif k == 0:
                    check(pcc >= 0.999, f"{label} fast step 0: correction PCC {pcc:.6f} < 0.999")
            d, mx, pcc = L.compare(got, want)
            print(f"  {label:28s} {backend:4s}: guided actions vs lerobot + autograd: max |diff| {d:.3g} "
                  f"(max |lerobot| {mx:.3g}), PCC {pcc:.7f}", flush=True)
            if backend == "ref":
                check(d <= 1e-4 * max(1.0, mx), f"{label} ref: max |diff| {d:.3g} > 1e-4 relative")
            else:
                check(pcc >= 0.999, f"{label} fast: PCC {pcc:.6f} < 0.999")
        p = dpols["ref"]
        p.infer(obs, noise=n2, rtc=req)
        moved = float(np.abs(p.raw_actions()[:, :A] - want).max())
        print(f"  {label:28s}: exact vs lerobot's Jacobian, guided actions differ by {moved:.3g}", flush=True)
        check(moved > 1e-3, f"{label}: the exact Jacobian changed the chunk by only {moved:.3g}")
    for p in dpols.values():
        p.close()


def main():
    v = L.versions()
    print(f"reference: lerobot {v['lerobot']}, torch {v['torch']}, transformers {v['transformers']}", flush=True)
    jacobian_form()
    for pi05 in (False, True):
        run_model(pi05)
    print(f"lerobot_rtc: {len(FAILS)} failed", flush=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
