"""checks.py — shared by the Python tests: the pass/fail counters with check(), and the small
generated model they run on (3 Euler steps, 56-pixel images, 512-token vocabulary: CI time)."""

PASS, FAIL = [0], [0]

SMALL_MODEL = {"action_dim": 32, "action_horizon": 50, "num_steps": 3, "num_cameras": 3,
               "vision": {"image_size": 56, "patch_size": 14, "width": 48, "depth": 2, "mlp_dim": 80, "num_heads": 4},
               "vlm": {"width": 64, "depth": 2, "mlp_dim": 128, "num_heads": 4, "num_kv_heads": 1, "head_dim": 32,
                       "vocab_size": 512},
               "expert": {"width": 40, "depth": 2, "mlp_dim": 72, "num_heads": 4, "num_kv_heads": 1, "head_dim": 32}}


def check(cond, what):
    """Counts a pass, or counts a failure and prints it; returns cond."""
    if cond:
        PASS[0] += 1
    else:
        FAIL[0] += 1
        print("FAIL:", what, flush=True)
    return cond
