"""What a submitted config must pass before it is stored: `evo run`'s checks, and data files only from the service's data folder.

A config is validated as `evo run` validates it (parsed, then its task,
network and strategy built, without running), so a config that is only wrong
once built (an unknown gymnasium id, a missing dataset file) is refused with
422 and the CLI's one-line message instead of failing later.

A service runs configs sent by its clients, so a data-file field
(``task.path``, ``task.dir``) must not name an arbitrary server file: its
content could leak through error messages (a CSV parse error quotes a row).
Such a field is resolved against ``<home>/data/`` (a path relative to it, or
an absolute path inside it; symlinks are followed) and refused otherwise. The
stored config names the resolved file, so the worker reads that same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo import functions
from evo.config import ConfigError, RunConfig

#: the fields naming a server file or folder, by task type
DATA_FIELDS: dict[str, tuple[str, ...]] = {"dataset": ("path",), "timeseries": ("path",), "mnist": ("dir",)}


def confine_data_paths(data: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """``data`` with its data-file fields resolved inside ``data_dir``; ConfigError naming the field for one leading elsewhere."""
    task = data.get("task")
    if not isinstance(task, dict):
        return data
    fields = DATA_FIELDS.get(str(task.get("type")), ())
    root = data_dir.resolve()
    confined = dict(task)
    for name in fields:
        value = task.get(name)
        if not isinstance(value, str):
            continue  # missing or of the wrong type: the config's own validation says so
        refusal = (
            f"config error: task.{name} = {value!r}: the service reads data files only from its data folder "
            f"(<home>/data/); give a path relative to it"
        )
        try:
            resolved = (root / value).resolve()  # an absolute value replaces root
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            raise ConfigError(refusal) from None
        if "\0" in value or not resolved.is_relative_to(root):
            raise ConfigError(refusal)
        confined[name] = str(resolved)
    return {**data, "task": confined}


def _without_folder(message: str, data_dir: Path) -> str:
    """The message with the data folder's server path taken out (the client wrote paths relative to it)."""
    for folder in {str(data_dir), str(data_dir.resolve())}:
        message = message.replace(folder + "/", "").replace(folder, "<home>/data")
    return message


def check_buildable(config: RunConfig, data_dir: Path) -> None:
    """Build the config's task, network and strategy as ``EvolutionRun(config)`` does, without running; ConfigError if one fails."""
    from evo.build import build_network, build_strategy, build_task

    try:
        task = build_task(config)
        try:
            build_strategy(config, build_network(config, task))
        finally:
            task.close()
    except ConfigError as exc:
        raise ConfigError(_without_folder(str(exc), data_dir)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to build is the config's: a 422, never a 500
        raise ConfigError(_without_folder(f"config error: the config cannot be built: {type(exc).__name__}: {exc}", data_dir)) from None


#: Task types whose config names the user's own Python code (a fitness function, a task class).
USER_CODE_TASKS = ("function", "python")
#: the benchmark functions that ship with evo (``evo/functions.py``), as a config names them: the service runs those
BUILT_IN_FUNCTIONS = frozenset(f"evo.functions:{name}" for name in functions.BENCHMARKS)


def refuse_user_code(config: RunConfig) -> None:
    """ConfigError for a config that would import the submitter's code on the server.

    The service accepts configs, never commands: a fitness function, a task
    class, modules to import or an environment given as ``module:Class`` would
    run whatever the submitter names. Such configs run with `evo run` on the
    user's own machine, or against a study over ask/tell (fitness computed by
    the client).
    """
    task = config.task
    if task.type == "function" and str(task.callable) in BUILT_IN_FUNCTIONS:
        return  # the project's own benchmark functions: code of the service, not of the submitter
    if task.type in USER_CODE_TASKS:
        raise ConfigError(
            f"config error: task.type = {task.type!r}: the service does not run code named in a config; "
            "run it with `evo run`, or evaluate it yourself against an ask/tell study"
        )
    if task.type == "control":
        if task.imports:
            raise ConfigError(
                "config error: task.import: the service does not import modules named in a config; use a registered environment id"
            )
        if ":" in task.env_id:
            raise ConfigError(
                f"config error: task.env_id = {task.env_id!r}: the service does not import classes named in a config; "
                "use a registered environment id"
            )
