"""Fitness evaluation, in process or on Ray, with identical results.

Both evaluators compute per-individual seeds on the driver from (run seed,
generation, index), cut the population into chunks, score each chunk with
:func:`evaluate_chunk` and return fitness in population order. Because a
task's fitness of individual i depends only on its genome, its seed and the
generation seed, the chunking and the placement of chunks cannot change it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from evo.seeding import generation_seed, individual_seeds

if TYPE_CHECKING:
    from ray import ObjectRef

WORST_FITNESS = -np.inf


@dataclass
class EvaluationResult:
    """Fitness of a population plus what went wrong while computing it."""

    fitness: np.ndarray
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


_BLAS_CONTROLLER: Any = None


def blas_for(network) -> contextlib.AbstractContextManager[Any]:
    """Where a network's fitness is computed: BLAS on one thread for a float32 network, as the process has it otherwise.

    OpenBLAS's float32 matrix products round differently with the number of
    threads they are split over (measured on the digits MLP and CNN), and a Ray
    worker runs one BLAS thread where the driver may run several: pinning
    float32 evaluations to one thread keeps serial and Ray results identical.
    float64 evaluation is left as it always ran (its results must not change).
    """
    global _BLAS_CONTROLLER
    if network.dtype == "float64":
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()  # inspects the loaded libraries once (~15 ms); each limit then ~0.1 ms
    limit: contextlib.AbstractContextManager[Any] = _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
    return limit


def evaluate_chunk(task, network, genomes: np.ndarray, seeds: np.ndarray, gen_seed: int) -> tuple[np.ndarray, int, list[str], float]:
    """Fitness of one chunk; a raising or non-finite evaluation gets the worst fitness.

    When the batched call raises, each individual is retried alone so one bad
    genome cannot sink its chunk-mates. Returns (fitness, failures, error
    messages, seconds spent). A float32 network's chunk runs BLAS on one thread (:func:`blas_for`).
    """
    with blas_for(network):
        return _evaluate_chunk(task, network, genomes, seeds, gen_seed)


def _evaluate_chunk(task, network, genomes: np.ndarray, seeds: np.ndarray, gen_seed: int) -> tuple[np.ndarray, int, list[str], float]:
    start = time.perf_counter()
    errors: list[str] = []
    try:
        fitness = np.asarray(task.evaluate(network, genomes, seeds, gen_seed), dtype=np.float64).reshape(len(genomes))
    except Exception as exc:  # noqa: BLE001 - any fitness error is the genome's failure
        errors.append(f"{type(exc).__name__}: {exc}")
        fitness = np.empty(len(genomes))
        for i in range(len(genomes)):
            try:
                fitness[i] = float(np.asarray(task.evaluate(network, genomes[i : i + 1], seeds[i : i + 1], gen_seed)).reshape(1)[0])
            except Exception as single_exc:  # noqa: BLE001
                errors.append(f"individual {i}: {type(single_exc).__name__}: {single_exc}")
                fitness[i] = np.nan
    bad = ~np.isfinite(fitness)
    fitness[bad] = WORST_FITNESS
    return fitness, int(bad.sum()), errors[:5], time.perf_counter() - start


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _merge(n: int, slices: list[slice], outcomes) -> EvaluationResult:
    """Chunk outcomes of :func:`evaluate_chunk` back into one result in population order."""
    result = EvaluationResult(np.empty(n))
    for sl, (fit, failures, errors, seconds) in zip(slices, outcomes):
        result.fitness[sl] = fit
        result.failures += failures
        result.errors += errors
        result.seconds += seconds
    return result


class SerialEvaluator:
    """Evaluate in this process; ``chunk_size`` exists to prove chunking changes nothing."""

    name = "serial"

    def __init__(self, run_seed: int, chunk_size: int | None = None) -> None:
        self.run_seed = int(run_seed)
        self.chunk_size = chunk_size

    def evaluate(self, task, network, genomes: np.ndarray, generation: int) -> EvaluationResult:
        """Fitness ``(P,)`` of generation ``generation``'s genomes."""
        genomes = np.asarray(genomes, dtype=np.float64)
        seeds = individual_seeds(self.run_seed, generation, len(genomes))
        gen_seed = generation_seed(self.run_seed, generation)
        slices = _chunks(len(genomes), self.chunk_size or len(genomes))
        return _merge(len(genomes), slices, [evaluate_chunk(task, network, genomes[sl], seeds[sl], gen_seed) for sl in slices])

    def describe(self) -> dict:
        """What ran the fitness."""
        return {"type": "serial", "chunk_size": self.chunk_size}

    def close(self) -> None:
        """Nothing to release."""


def start_local_ray(num_cpus: int, object_store_mb: int = 256) -> None:
    """Start a loopback-only local Ray instance (no dashboard, nothing on external addresses)."""
    import ray

    # Binds every Ray process to 127.0.0.1 rather than the machine's external address.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # address="local": always a new instance; without it ray.init joins whatever cluster
    # /tmp/ray/ray_current_cluster names (another user's, or a service's), which a run must never do silently.
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        object_store_memory=object_store_mb * 1024 * 1024,
        logging_level=logging.ERROR,
        log_to_driver=True,
        _node_ip_address="127.0.0.1",
    )


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself retries for minutes)."""
    import socket

    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: leave them to Ray
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


def upload_runtime_env(runtime_env: dict) -> dict:
    """``runtime_env`` with its local ``py_modules`` (folders, ``.py`` files) uploaded to the cluster and named by URI.

    Ray accepts local paths only for a whole job (``ray.init(runtime_env=...)``);
    a run may join an instance someone else started, so it uploads its user
    modules itself, as ``ray.init`` would, and names them per task.
    """
    import tempfile

    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed

    with tempfile.TemporaryDirectory(prefix="evo-ray-") as scratch:
        return upload_py_modules_if_needed(dict(runtime_env), include_gitignore=True, scratch_dir=scratch)


_REMOTE = None


def _remote_evaluate_chunk():
    """The Ray task, defined lazily so importing this module does not import Ray."""
    global _REMOTE
    if _REMOTE is None:
        import ray

        @ray.remote(num_cpus=1)
        def evaluate_chunk_remote(payload, genomes, seeds, gen_seed):
            task, network = payload
            return evaluate_chunk(task, network, genomes, seeds, gen_seed)

        _REMOTE = evaluate_chunk_remote
    return _REMOTE


class RayEvaluator:
    """Evaluate chunks of the population as Ray tasks on a local instance or a cluster.

    Joins ``address`` (or ``RAY_ADDRESS``) when given, else starts a
    loopback-only local instance with ``workers`` CPUs (or uses the instance
    already initialised in this process). The task and network go to the
    object store once per run; each generation ships only genomes and seeds.
    With ``chunk_size="auto"`` the first generation is split one chunk per
    worker and timed; later chunks hold enough individuals for a task to run
    at least ``min_task_seconds``, and never fewer than population / workers.
    """

    name = "ray"

    def __init__(
        self,
        run_seed: int,
        workers: int = 2,
        address: str | None = None,
        chunk_size: int | str = "auto",
        min_task_seconds: float = 0.01,
        max_retries: int = 3,
    ) -> None:
        import ray

        self.run_seed = int(run_seed)
        self.workers = int(workers)
        self.chunk_size = chunk_size
        self.min_task_seconds = float(min_task_seconds)
        self.max_retries = int(max_retries)
        self._started_ray = False
        address = address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            if address:
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                try:
                    _check_reachable(address)
                    ray.init(address=address, logging_level=logging.ERROR)
                except Exception as exc:  # noqa: BLE001 - Ray raises several types for a bad address
                    from evo.config import ConfigError

                    raise ConfigError(
                        f"config error: evaluator.address = {address!r}: cannot join a Ray cluster there "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        "give the head node's host:port, or omit it for a local instance"
                    ) from None
            else:
                start_local_ray(self.workers)
            self._started_ray = True
        self.address = address
        self._payload_ref: ObjectRef[tuple[Any, Any]] | None = None
        self._payload_key: tuple[int, int] | None = None
        self._seconds_per_individual: float | None = None
        self.tasks_submitted = 0
        self._uploaded_envs: dict[str, dict] = {}

    def _chunk_size(self, population: int) -> int:
        if self.chunk_size != "auto":
            return int(self.chunk_size)
        even = math.ceil(population / self.workers)
        if self._seconds_per_individual is None:
            return even
        needed = math.ceil(self.min_task_seconds / max(self._seconds_per_individual, 1e-9))
        return int(min(population, max(needed, even)))

    def evaluate(self, task, network, genomes: np.ndarray, generation: int) -> EvaluationResult:
        """Fitness ``(P,)`` of generation ``generation``'s genomes, in population order."""
        import ray

        genomes = np.asarray(genomes, dtype=np.float64)
        key = (id(task), id(network))
        if self._payload_key != key:
            self._payload_ref = ray.put((task, network))  # datasets travel once per run
            self._payload_key = key
        seeds = individual_seeds(self.run_seed, generation, len(genomes))
        gen_seed = generation_seed(self.run_seed, generation)
        # A user's modules (fitness function, task class, environment) reach the workers through Ray's runtime environment.
        options: dict = {"max_retries": self.max_retries}
        runtime_env = self._runtime_env(task)
        if runtime_env:
            options["runtime_env"] = runtime_env
        remote = _remote_evaluate_chunk().options(**options)
        slices = _chunks(len(genomes), self._chunk_size(len(genomes)))
        refs = [remote.remote(self._payload_ref, genomes[sl], seeds[sl], gen_seed) for sl in slices]
        self.tasks_submitted += len(refs)
        result = _merge(len(genomes), slices, ray.get(refs))
        if len(genomes):
            self._seconds_per_individual = result.seconds / len(genomes)
        return result

    def _runtime_env(self, task) -> dict | None:
        """The task's runtime environment with its local modules uploaded to the cluster once (a task may only name URIs)."""
        wanted = task.ray_runtime_env()
        if not wanted:
            return None
        key = repr(sorted(wanted.items()))
        if key not in self._uploaded_envs:
            self._uploaded_envs[key] = upload_runtime_env(wanted)
        return self._uploaded_envs[key]

    def describe(self) -> dict:
        """What ran the fitness."""
        import ray

        return {
            "type": "ray",
            "workers": self.workers,
            "address": self.address or "local",
            "chunk_size": self.chunk_size,
            "cluster_cpus": ray.cluster_resources().get("CPU"),
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        }

    def close(self) -> None:
        """Shut Ray down if this evaluator started it."""
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._payload_ref = None


def make_evaluator(config, run_seed: int):
    """Build the evaluator an :class:`~evo.config.EvaluatorConfig` describes."""
    if config.type == "serial":
        return SerialEvaluator(run_seed, None if config.chunk_size == "auto" else int(config.chunk_size))
    return RayEvaluator(
        run_seed,
        workers=config.workers,
        address=config.address,
        chunk_size=config.chunk_size,
        min_task_seconds=config.min_task_seconds,
        max_retries=config.max_retries,
    )
