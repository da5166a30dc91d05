"""`evo rollout RUN_DIR`: a saved controller on fresh episodes, the returns printed, optionally filmed."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from evo.commands.common import Output, add_json, int_in
from evo.config import ConfigError


def add_parser(sub: Any) -> None:
    """The `evo rollout` options."""
    rollout = sub.add_parser(
        "rollout",
        help="run a saved controller for fresh episodes; print the returns; --video renders them (gif, mp4)",
        description=(
            "Loads RUN_DIR's policy and runs it in the run's gymnasium environment (same id, kwargs and step limit) for "
            "N episodes seeded SEED, SEED+1, ...; prints each return and their mean ± std. --video FILE.gif|.mp4 films "
            "the episodes from gymnasium's rgb_array frames (imageio; mp4 needs imageio-ffmpeg)."
        ),
    )
    rollout.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of a control task (or a model.json)")
    rollout.add_argument("--episodes", type=int_in(1, 100000), default=5, help="episodes to run (default 5)")
    rollout.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="seed of the first episode (default 0)")
    rollout.add_argument("--video", metavar="FILE", help="film the episodes into FILE.gif or FILE.mp4")
    rollout.add_argument("--fps", type=int_in(1, 240), default=30, help="video frames per second (default 30)")
    rollout.add_argument("--member", type=int_in(0), metavar="K", help="use Pareto-front member K")
    add_json(rollout, "the returns")


def run(args: argparse.Namespace, out: Output) -> int:
    """Episodes, then the figures."""
    from evo.rollouts import VideoWriter, run_episodes
    from networks.model import Controller, load_model

    try:
        model = load_model(args.run_dir, member=args.member)
    except ValueError as exc:
        raise ConfigError(f"config error: RUN_DIR: {exc}") from None
    if not isinstance(model, Controller):
        raise ConfigError(f"config error: RUN_DIR: {args.run_dir} holds a {model.kind} model, not a controller; use `evo predict`")
    video = None
    if args.video:
        try:
            video = VideoWriter(args.video, fps=args.fps)
        except ValueError as exc:
            raise ConfigError(f"config error: {exc}") from None
    try:
        episodes = run_episodes(model, args.episodes, args.seed, on_frame=video.add if video else None)
    except BaseException:
        if video:
            video.close(keep=False)
        raise
    if video:
        video.close()
    returns = [e["return"] for e in episodes]
    for e in episodes:
        out.say(f"episode {e['episode']} (seed {e['seed']}): return {e['return']:.6g}  steps {e['steps']}")
    mean, std = statistics.fmean(returns), statistics.pstdev(returns)
    out.say(f"{model.env_id}: mean return {mean:.6g} ± {std:.3g} over {len(returns)} episodes")
    if video:
        out.say(f"video: {args.video} ({video.frames} frames)")
    frames = video.frames if video else 0
    out.result(
        {"env_id": model.env_id, "episodes": episodes, "mean_return": mean, "std_return": std, "video": args.video, "frames": frames}
    )
    return 0
