#!/usr/bin/python3
"""test_validate.py — every cheap mistake is answered before the model loads (issue 17), on the
demo model (`pi0 gen-model --config demo`, 17 M parameters: its load alone takes seconds):

  * `pi0 infer` / `pi0 serve`: unknown camera key, missing image file, undecodable image, missing
    prompt, wrong state length (against the norm stats), --backend cuda on a build without it,
    a missing --norm-stats file, a port in use (no libwebsockets log line), unknown option,
    repeated option (also --image for one camera twice), --opt=value, --version;
  * the Python binding: the same parameter mistakes raise before the load, with Python's keywords
    in the advice (norm_stats=..., never a CLI flag); short camera keys as the CLI's.

Each case checks its exit code, its message (naming the thing to fix) and its time: the CPU time
of the answer must be under one second (the load of the demo model alone takes longer), and the
wall time, printed beside it, under WALL_LIMIT_S (the CPU time is the criterion because CTest
runs tests side by side on a small machine, where wall time measures the machine's load).

    test_validate.py PI0 TOKENIZER TMP
"""
import json, os, resource, socket, subprocess, sys, time

import numpy as np

import pi0

from checks import FAIL, PASS, SMALL_MODEL, check

LIMIT_S = 1.0       # CPU seconds
WALL_LIMIT_S = 10.0  # a hang guard only


def run(pi0_bin, args, env):
    """rc, stdout, stderr, wall s, CPU s (user + system of the child: one child at a time here)."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run([pi0_bin] + args, capture_output=True, text=True, env=env, timeout=120)
    wall, r1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return out.returncode, out.stdout, out.stderr, wall, cpu


def expect(pi0_bin, env, label, args, code, needles, absent=()):
    rc, out, err, dt, cpu = run(pi0_bin, args, env)
    text = out + err
    ok = rc == code and all(n in text for n in needles) and not any(a in text for a in absent)
    check(ok, f"{label}: rc {rc} (want {code}), output: {text.strip()[:600]}")
    check(cpu < LIMIT_S and dt < WALL_LIMIT_S,
          f"{label}: answered in {cpu:.2f} s CPU, {dt:.2f} s wall (want < {LIMIT_S} s CPU, < {WALL_LIMIT_S} s wall)")
    print(f"  {label:34s} rc {rc}  {cpu * 1000:6.0f} ms CPU {dt * 1000:6.0f} ms wall  {err.strip().splitlines()[-1][:150] if err.strip() else out.strip()[:150]}")
    return text


def py_expect(label, make, needles, absent=("--",)):
    t0, c0 = time.monotonic(), time.process_time()
    try:
        make()
        msg = None
    except pi0.Pi0Error as e:
        msg = str(e)
    dt, cpu = time.monotonic() - t0, time.process_time() - c0
    check(msg is not None and all(n in msg for n in needles) and not any(a in msg for a in absent),
          f"python {label}: {msg!r} (want {needles}, none of {absent})")
    check(cpu < LIMIT_S and dt < WALL_LIMIT_S,
          f"python {label}: answered in {cpu:.2f} s CPU, {dt:.2f} s wall (want < {LIMIT_S} s CPU, < {WALL_LIMIT_S} s wall)")
    print(f"  python {label:27s} {cpu * 1000:6.0f} ms CPU {dt * 1000:6.0f} ms wall  {msg}")


def main():
    pi0_bin, tok, tmp = sys.argv[1:4]
    os.makedirs(tmp, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}  # the CLI: leaks checked
    env["PI0_TOKENIZER"] = tok
    demo = os.path.join(tmp, "demo")
    if not os.path.exists(os.path.join(demo, "model.safetensors")):
        subprocess.run([pi0_bin, "gen-model", "--config", "demo", "--out", demo], check=True, capture_output=True)
    png, bad = os.path.join(tmp, "a.png"), os.path.join(tmp, "bad.png")
    subprocess.run([pi0_bin, "gen-image", "--out", png, "--width", "64", "--height", "48"], check=True)
    with open(bad, "w") as f:
        f.write("not an image\n")
    ns = os.path.join(tmp, "ns8.json")  # openpi norm stats for an 8-value state
    with open(ns, "w") as f:
        json.dump({"norm_stats": {k: {"mean": [0.0] * n, "std": [1.0] * n, "q01": [-1.0] * n, "q99": [1.0] * n}
                                  for k, n in (("state", 8), ("actions", 7))}}, f)
    missing = os.path.join(tmp, "no_such_stats.json")
    base = ["infer", "--model", demo, "--state", "0.1,0.2"]
    img = ["--image", f"base_0_rgb={png}"]

    print("pi0 infer / serve on the demo model: each mistake answered before the load")
    expect(pi0_bin, env, "unknown camera key", base + ["--prompt", "x", "--image", f"nosuch={png}"], 2,
           ["unknown camera 'nosuch'", "images/base_0_rgb"])
    expect(pi0_bin, env, "missing image file", base + ["--prompt", "x", "--image", f"base_0_rgb={tmp}/none.png"], 2,
           ["image 'images/base_0_rgb'", "none.png: cannot open"])
    expect(pi0_bin, env, "undecodable image", base + ["--prompt", "x", "--image", f"base_0_rgb={bad}"], 2,
           ["bad.png: cannot decode image"])
    expect(pi0_bin, env, "missing prompt", base + img, 2,
           ["missing key 'prompt'", "give one with --prompt TEXT"], absent=["--default-prompt"])
    long_state = ",".join(["0.1"] * 10)  # statistics longer than the state are sliced (openpi); shorter refused
    expect(pi0_bin, env, "wrong state length", ["infer", "--model", demo, "--state", long_state] + img +
           ["--prompt", "x", "--norm-stats", ns], 2, ["state has 10 values but norm_stats.state only 8"])
    expect(pi0_bin, env, "missing --norm-stats file", base + img + ["--prompt", "x", "--norm-stats", missing], 2,
           [f"--norm-stats {missing}: no such file"], absent=["norm_stats="])
    expect(pi0_bin, env, "config's norm stats missing",
           ["infer", "--model", demo, "--config", "pi0_libero", "--state", "1,2,3,4,5,6,7,8", "--prompt", "x",
            "--image", f"observation/image={png}", "--image", f"observation/wrist_image={png}"], 2,
           ["assets/physical-intelligence/libero/norm_stats.json", "(--norm-stats FILE)"])
    backends = pi0_bin_backends(pi0_bin, env)  # "backends: fast, ref (default on this machine: fast)"
    if "cuda" not in backends.split("(")[0]:
        expect(pi0_bin, env, "--backend cuda (not built)", base + img + ["--prompt", "x", "--backend", "cuda"], 2,
               ["--backend cuda: not built into this pi0", "built in: "])
    elif "machine: cuda" not in backends:
        expect(pi0_bin, env, "--backend cuda (no GPU)", base + img + ["--prompt", "x", "--backend", "cuda"], 2,
               ["--backend cuda: this machine has no usable GPU"])
    else:
        print("  --backend cuda: this machine has a GPU (nothing to refuse)")
    expect(pi0_bin, env, "unknown option", base + img + ["--prompt", "x", "--bogus", "1"], 1, ["unknown option '--bogus'"])
    expect(pi0_bin, env, "repeated option", base + img + ["--prompt", "x", "--seed", "1", "--seed=2"], 1,
           ["option '--seed' is given twice"])
    expect(pi0_bin, env, "repeated option (alias)", base + img + ["--prompt", "x", "--config", "generic", "--preset",
                                                                    "generic"], 1, ["option '--preset' is given twice"])
    expect(pi0_bin, env, "repeated --image KEY", base + img + img + ["--prompt", "x"], 1,
           ["--image base_0_rgb= is given twice"])
    expect(pi0_bin, env, "one camera by two keys", base + img + ["--image", f"images/base_0_rgb={png}", "--prompt", "x"],
           2, ["camera 'images/base_0_rgb' is given twice"])
    expect(pi0_bin, env, "--opt=value", ["infer", f"--model={demo}", f"--state={long_state}",
                                          f"--image=base_0_rgb={png}", "--prompt=x", f"--norm-stats={ns}"], 2,
           ["state has 10 values but norm_stats.state only 8"])  # every value reached the check
    expect(pi0_bin, env, "a flag given a value", base + img + ["--raw=1"], 1, ["option '--raw' takes no value"])
    out_png = os.path.join(tmp, "eq.png")
    expect(pi0_bin, env, "gen-image --opt=value", ["gen-image", f"--out={out_png}", "--width=8", "--height=6"], 0, [])
    check(os.path.getsize(out_png) > 0, "gen-image --out=FILE wrote nothing")
    text = expect(pi0_bin, env, "--version", ["--version"], 0, [f"pi0 {pi0.version()[0]}", "commit: ", "backends: ", "ref"])
    check(pi0.version()[1] in text, f"--version names the library's commit {pi0.version()[1]}: {text}")

    # a lerobot checkpoint: its cameras and state feature from config.json, its statistics files
    lr = os.path.join(tmp, "demo_lerobot")
    if not os.path.exists(os.path.join(lr, "model.safetensors")):
        subprocess.run([pi0_bin, "gen-model", "--config", "demo", "--layout", "lerobot", "--state-dim", "6", "--out", lr],
                       check=True, capture_output=True)
    lbase = ["infer", "--model", lr, "--state", "1,2,3,4,5,6"]
    expect(pi0_bin, env, "lerobot: unknown camera key", lbase + ["--prompt", "x", "--image", f"nosuch={png}"], 2,
           ["'nosuch' is not an image input of this lerobot checkpoint", "observation.images.top"])
    expect(pi0_bin, env, "lerobot: wrong state length", ["infer", "--model", lr, "--state", "1,2", "--prompt", "x",
                                                         "--image", f"top={png}"], 2,
           ["'observation.state' has 2 values; this checkpoint's state feature has 6"])
    expect(pi0_bin, env, "lerobot: missing task", lbase + ["--image", f"top={png}"], 2,
           ["missing key 'task'", "--prompt TEXT"], absent=["default_prompt", "--default-prompt"])
    expect(pi0_bin, env, "lerobot: missing --norm-stats file", lbase + ["--prompt", "x", "--image", f"top={png}",
                                                                        "--norm-stats", missing], 2,
           [f"--norm-stats {missing}: no such file"])

    # serve: a port in use, the norm stats, before the load, and no libwebsockets line first
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    expect(pi0_bin, env, "serve: port in use", ["serve", "--model", demo, "--host", "127.0.0.1", "--port", str(port)], 2,
           [f"cannot listen on 127.0.0.1:{port}", "--port N"], absent=["libwebsockets", "E: "])
    holder.close()
    expect(pi0_bin, env, "serve: missing --norm-stats", ["serve", "--model", demo, "--norm-stats", missing], 2,
           [f"--norm-stats {missing}: no such file"])
    expect(pi0_bin, env, "serve: --backend=nosuch", ["serve", "--model", demo, "--backend=nosuch"], 2,
           ["--backend nosuch: no such backend (built in: "])
    expect(pi0_bin, env, "serve: repeated option", ["serve", "--model", demo, "--port", "1", "--port", "2"], 1,
           ["option '--port' is given twice"])

    print("Python: parameter mistakes before the load, in Python's words")
    py_expect("missing norm_stats", lambda: pi0.Policy(demo, norm_stats=missing, tokenizer=tok),
              [f"norm_stats={missing}: no such file"])
    py_expect("unknown backend", lambda: pi0.Policy(demo, backend="nosuch", tokenizer=tok),
              ["backend=nosuch: no such backend"])
    py_expect("config's norm stats", lambda: pi0.Policy(demo, config="pi0_libero", tokenizer=tok),
              ["(norm_stats=FILE)"])
    py_expect("missing tokenizer", lambda: pi0.Policy(demo, tokenizer=os.path.join(tmp, "none.json")),
              ["tokenizer=", "no such tokenizer file"])

    print("Python: short camera keys, as the CLI's; the missing prompt's advice")
    small = os.path.join(tmp, "small")
    with open(os.path.join(tmp, "small.json"), "w") as f:
        json.dump(SMALL_MODEL, f)
    subprocess.run([pi0_bin, "gen-model", "--config", os.path.join(tmp, "small.json"), "--seed", "5", "--out", small],
                   check=True, capture_output=True)
    frame = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    with pi0.Policy(small, tokenizer=tok, seed=3) as p:
        full = p.infer({"images/base_0_rgb": frame, "state": [0.1, 0.2], "prompt": "pick"})["actions"]
        short = p.infer({"base_0_rgb": frame, "state": [0.1, 0.2], "prompt": "pick"})["actions"]
        check(np.array_equal(full, short), f"short key base_0_rgb: max |diff| {np.abs(full - short).max()}")
        print(f"  base_0_rgb == images/base_0_rgb: max |diff| {np.abs(full - short).max()}")
        try:
            p.infer({"base_0_rgb": frame, "state": [0.1, 0.2]})
            msg = None
        except pi0.Pi0Error as e:
            msg = str(e)
        check(msg is not None and "default_prompt=TEXT" in msg and "--" not in msg, f"python missing prompt: {msg!r}")
        print(f"  python missing prompt: {msg}")

    print(f"{PASS[0]} passed, {FAIL[0]} failed")
    return 1 if FAIL[0] else 0


def pi0_bin_backends(pi0_bin, env):
    return [l for l in run(pi0_bin, ["--version"], env)[1].splitlines() if l.startswith("backends:")][0]


if __name__ == "__main__":
    sys.exit(main())
