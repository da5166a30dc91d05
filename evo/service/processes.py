"""Processes the service starts: each in its own session (so a killed service leaves them running), found again by pid.

A pid read back from the database after a restart may since have been reused
by an unrelated process: before signalling one we check that its command line
still names what we started (``evo.service.worker`` and the run id).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import evo


def process_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal test is all we have
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def command_line(pid: int) -> list[str] | None:
    """The arguments ``pid`` was started with (None if unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int | None, *markers: str) -> bool:
    """``pid`` is alive and its command line contains every marker (always True where /proc is missing)."""
    if not pid or not process_alive(pid):
        return False
    argv = command_line(pid)
    return argv is None or all(marker in argv for marker in markers)


def has_option(argv: Sequence[str], name: str, value: str) -> bool:
    """``argv`` holds ``name value`` as consecutive arguments."""
    return any(a == name and b == value for a, b in zip(argv, argv[1:], strict=False))


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (our children lead their own), ignoring one that is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def terminate_group(pid: int, grace_seconds: float = 10.0) -> None:
    """SIGTERM the group led by ``pid``, then SIGKILL it if the leader is still alive after ``grace_seconds``."""
    kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and process_alive(pid):
        _reap(pid)
        time.sleep(0.1)
    kill_group(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the folder holding the ``evo`` package first on the import path, plus ``extra``."""
    env = dict(os.environ)
    source_root = str(Path(evo.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([source_root, *filter(None, [env.get("PYTHONPATH")])])
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray process on 127.0.0.1
    env.update(extra or {})
    return env


def spawn_python(module: str, args: Sequence[str], log_path: Path, env: dict[str, str], stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """``python -m module args...`` in its own session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a SIGKILLed service does not take its children down
            close_fds=True,
        )
