#!/usr/bin/python3
"""rtc_async_client.py — an asynchronous robot loop against `pi0 serve`, with and without
real-time chunking (RTC).

A simulated robot executes one action per tick at a fixed control rate. When `--horizon`
actions of the current chunk are left, it sends the next observation (its state: the action it
executes now) and keeps executing while the server computes; the reply arrives `d` ticks later
(the measured latency, or at least --latency-ms to mimic a large model), the new chunk's first
`d` rows are dropped (they were executed from the old chunk meanwhile) and execution continues
from its row `d`, as lerobot's action queue does. With --rtc the request carries
{"rtc": {"executed": rows of the last chunk executed, "inference_delay": expected d}}, so the
server guides the new chunk towards the old one's leftover. With --server-delay the request
sends "inference_delay": "auto" instead and the server (started with --control-hz) estimates d
from its measured latency; the delays it used are printed.

Runs both modes on one server, prints the largest jump at a chunk boundary (the new chunk's
first executed action against the action the old chunk had planned for that tick, max over
action dims), and plots each action dimension over the run, boundaries marked,
into a PNG (matplotlib: Debian python3-matplotlib). Uses Debian's python3-websockets,
python3-msgpack and python3-numpy.

    pi0 serve --model DIR --port 8000 &
    python3 examples/rtc_async_client.py --port 8000 --out rtc.png
"""
import argparse
import asyncio
import math
import time

import numpy as np
import websockets

from client import codec  # examples/client.py: openpi's msgpack-numpy wire format

packb, unpackb = codec()


async def run(args, rtc):
    """One rollout; returns (executed actions [T, A], indices where a new chunk took over)."""
    period = 1.0 / args.hz
    async with websockets.connect(f"ws://{args.host}:{args.port}", max_size=None, compression=None) as ws:
        meta = unpackb(await ws.recv())
        cams = meta.get("cameras") or [args.image_key]
        image = np.zeros((args.image_size, args.image_size, 3), np.uint8)
        image[:, : args.image_size // 2] = 180
        state = np.zeros(args.state_dim)

        async def request(executed, delay):
            obs = {cams[0]: image, args.state_key: state.copy(), args.prompt_key: args.prompt}
            if rtc and executed is not None:
                obs["rtc"] = {"executed": int(executed), "inference_delay": "auto" if args.server_delay else int(delay)}
                if args.execution_horizon:
                    obs["rtc"]["execution_horizon"] = args.execution_horizon
                if args.jacobian != "lerobot":
                    obs["rtc"]["jacobian"] = args.jacobian
            t0 = time.monotonic()
            await ws.send(packb(obs))
            reply = await ws.recv()
            if isinstance(reply, str):
                raise SystemExit(f"server error: {reply}")
            wait = args.latency_ms / 1000.0 - (time.monotonic() - t0)
            if wait > 0:
                await asyncio.sleep(wait)  # a slower model: the reply is usable only now
            reply = unpackb(reply)
            if "rtc" in reply:
                server_delays.append(reply["rtc"]["inference_delay"])
            return np.array(reply["actions"], np.float32)

        server_delays = []
        chunk = await request(None, 0)  # the first chunk: the robot waits for it
        delays = []
        row, executed_log, boundaries = 0, [], []
        pending, sent_at, sent_row, delay_est = None, 0, 0, max(1, math.ceil(args.latency_ms / 1000.0 / period))
        tick, next_t = 0, time.monotonic()
        while tick < args.ticks:
            if pending is None and len(chunk) - row <= args.horizon:
                # rows of this chunk executed when the observation is taken: the leftover starts there
                delay = min(delay_est, len(chunk) - 1)
                pending, sent_at, sent_row = asyncio.ensure_future(request(row, delay)), tick, row
            if pending is not None and pending.done():
                new = pending.result()
                d = tick - sent_at  # ticks the inference took: those rows were executed from the old chunk
                delay_est = max(1, d)
                delays.append(d)
                planned = chunk[row] if row < len(chunk) else chunk[-1]  # what the old chunk would run now
                chunk, row, pending = new, min(d, len(new) - 1), None
                boundaries.append((len(executed_log), float(np.abs(chunk[row] - planned).max())))
            if row >= len(chunk):  # the chunk ran out before the next arrived: hold the last action
                action = chunk[-1]
            else:
                action = chunk[row]
                row += 1
            executed_log.append(action.copy())
            state[: min(len(state), len(action))] = action[: min(len(state), len(action))]
            tick += 1
            next_t += period
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        if pending is not None:
            await pending
        _ = sent_row
        print(f"  inference took {delays} ticks at {args.hz:g} Hz", flush=True)
        if server_delays:
            print(f"  the server's estimated delays: {server_delays}", flush=True)
    return np.array(executed_log), boundaries


def jumps(boundaries):
    """The largest and the mean jump at a boundary: the new chunk's first executed action against
    the action the old chunk had planned for that tick (max over action dims)."""
    j = [b[1] for b in boundaries]
    return (max(j), float(np.mean(j))) if j else (0.0, 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--hz", type=float, default=20.0, help="control rate (default 20)")
    ap.add_argument("--ticks", type=int, default=120, help="ticks per rollout (default 120)")
    ap.add_argument("--horizon", type=int, default=25, help="request the next chunk when this many rows are left")
    ap.add_argument("--latency-ms", type=float, default=100.0, help="least inference latency (default 100)")
    ap.add_argument("--execution-horizon", type=int, default=20,
                    help="rows of the new chunk guided (RTC; must exceed the delay; 0: the server's default)")
    ap.add_argument("--server-delay", action="store_true",
                    help='RTC: send "inference_delay": "auto" (pi0 serve --control-hz estimates it)')
    ap.add_argument("--jacobian", choices=("lerobot", "exact"), default="lerobot",
                    help="RTC guidance's Jacobian: lerobot's (default) or the exact VJP through the action expert")
    ap.add_argument("--image-key", default="observation.images.top")
    ap.add_argument("--state-key", default="observation.state")
    ap.add_argument("--prompt-key", default="task")
    ap.add_argument("--prompt", default="stack the cups")
    ap.add_argument("--state-dim", type=int, default=6)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--out", default="rtc.png", help="the plot (PNG)")
    args = ap.parse_args()
    results = {}
    for rtc in (False, True):
        actions, bounds = asyncio.run(run(args, rtc))
        big, mean = jumps(bounds)
        results[rtc] = (actions, bounds)
        print(f"RTC {'on ' if rtc else 'off'}: {len(bounds)} chunk boundaries; largest jump at a boundary {big:.4f} "
              f"(mean {mean:.4f}; new chunk vs the old chunk's plan for the same tick)", flush=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, rtc in zip(axes, (False, True)):
        actions, bounds = results[rtc]
        t = np.arange(len(actions)) / args.hz
        for j in range(actions.shape[1]):
            ax.plot(t, actions[:, j], lw=1.2, label=f"dim {j}")
        for b, _ in bounds:
            ax.axvline(b / args.hz, color="0.6", lw=0.8, ls="--")
        big, _ = jumps(bounds)
        ax.set_title(f"RTC {'on' if rtc else 'off'}: largest jump at a boundary (new chunk vs the old plan) {big:.3f}; dashed: new chunk")
        ax.set_ylabel("action")
    axes[-1].set_xlabel("time [s]")
    axes[0].legend(ncol=min(8, results[False][0].shape[1]), fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
