"""A training run's writer, run in its own process by the watch tests.

    python tests/watch_writer.py RUN_DIR --steps 60 --nan-at 30 --delay 0.01 --marker FILE

Writes ``train/loss`` (and ``val/loss`` every 5 steps) with ``tbreport.testing`` (or PyTorch's
``SummaryWriter`` with ``--torch``), unbuffered. ``--split`` writes every record in two pieces
with a pause between them, so readers see files that end inside a record. ``--marker`` gets the
time at which the first NaN was written (then the writer goes on).
"""

from __future__ import annotations

import argparse
import os
import time


def loss(step: int, nan_at: int) -> float:
    if 0 <= nan_at <= step:
        return float("nan")
    return 2.0 / (step + 1) + 0.05


def write_project(args: argparse.Namespace) -> None:
    from tbreport import testing

    os.makedirs(args.run_dir, exist_ok=True)
    path = os.path.join(args.run_dir, f"events.out.tfevents.{int(time.time())}.testhost.1.0")
    with open(path, "wb", buffering=0) as out:
        out.write(
            testing.frame(testing.file_version_event(wall_time=time.time()).SerializeToString())
        )
        for step in range(args.steps):
            events = [
                testing.scalar_event(
                    "train/loss", loss(step, args.nan_at), step=step, wall_time=time.time()
                )
            ]
            if step % 5 == 4:
                events.append(
                    testing.scalar_event(
                        "val/loss", loss(step, args.nan_at) + 0.1, step=step, wall_time=time.time()
                    )
                )
            for event in events:
                record = testing.frame(event.SerializeToString())
                if args.split:
                    cut = len(record) // 2 + 3
                    out.write(record[:cut])
                    time.sleep(args.split)
                    out.write(record[cut:])
                else:
                    out.write(record)
            mark(args, step)
            time.sleep(args.delay)


def write_torch(args: argparse.Namespace) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(args.run_dir, flush_secs=1)
    for step in range(args.steps):
        writer.add_scalar("train/loss", loss(step, args.nan_at), step)
        if step % 5 == 4:
            writer.add_scalar("val/loss", loss(step, args.nan_at) + 0.1, step)
        writer.flush()
        mark(args, step)
        time.sleep(args.delay)
    writer.close()


def mark(args: argparse.Namespace, step: int) -> None:
    if args.marker and step == args.nan_at:
        with open(args.marker + ".tmp", "w") as handle:
            handle.write(repr(time.time()))
        os.replace(args.marker + ".tmp", args.marker)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--nan-at", type=int, default=-1)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--split", type=float, default=0.0)
    parser.add_argument("--marker", default=None)
    parser.add_argument("--torch", action="store_true")
    args = parser.parse_args()
    (write_torch if args.torch else write_project)(args)


if __name__ == "__main__":
    main()
