"""Fresh episodes of a saved controller in its gymnasium environment, optionally filmed (`evo rollout`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from networks.model import Controller

VIDEO_FORMATS = (".gif", ".mp4")


def make_env(model: Controller, render: bool = False) -> Any:
    """The run's environment (same id, kwargs and step limit), rendering ``rgb_array`` frames when asked."""
    import os

    import gymnasium

    import evo.envs  # noqa: F401 - registers evo's own environments (DoublePole-v0, DoublePoleNoVel-v0) with gymnasium

    kwargs = dict(model.env_kwargs)
    if render:
        kwargs["render_mode"] = "rgb_array"
        # Off-screen frames need no display or sound device (pygame-based envs otherwise look for one and complain).
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    return gymnasium.make(model.env_id, max_episode_steps=model.max_steps, **kwargs)


def run_episodes(model: Controller, episodes: int, seed: int, on_frame: Callable[[np.ndarray], None] | None = None) -> list[dict[str, Any]]:
    """Return and length of ``episodes`` episodes seeded ``seed, seed + 1, ...``; every frame to ``on_frame``."""
    env = make_env(model, render=on_frame is not None)
    results = []
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            model.reset()
            total, steps, done = 0.0, 0, False
            if on_frame is not None:
                on_frame(env.render())
            while not done:
                observation, reward, terminated, truncated, _ = env.step(model.act(observation))
                total += float(reward)
                steps += 1
                done = bool(terminated or truncated)
                if on_frame is not None:
                    on_frame(env.render())
            results.append({"episode": episode, "seed": seed + episode, "return": total, "steps": steps})
    finally:
        env.close()
    return results


class VideoWriter:
    """Frames to a ``.gif`` (imageio, always available) or an ``.mp4`` (imageio-ffmpeg), written as they come."""

    def __init__(self, path: str | Path, fps: int = 30) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FORMATS:
            raise ValueError(f"--video = {str(path)!r}: unsupported format {suffix!r}; allowed: {', '.join(VIDEO_FORMATS)}")
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{suffix}")
        if suffix == ".gif":
            self._writer = imageio.get_writer(self.tmp, mode="I", duration=1000.0 / fps, loop=0)
        else:
            try:
                import imageio_ffmpeg  # noqa: F401  (the mp4 encoder)
            except ImportError:
                raise ValueError("--video *.mp4 needs the imageio-ffmpeg package; write a .gif instead") from None
            self._writer = imageio.get_writer(self.tmp, fps=fps, codec="libx264", macro_block_size=1)
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        """Append one RGB frame ``(H, W, 3)`` uint8."""
        self._writer.append_data(np.asarray(frame, dtype=np.uint8))
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the file (renamed into place only when complete)."""
        self._writer.close()
        if keep and self.frames:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
