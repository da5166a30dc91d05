"""A Python client of `evo serve`, with the verbs of the command line.

    from evo.client import Client

    client = Client()                                   # EVO_SERVER / EVO_TOKEN, else the local service
    run = client.submit("configs/xor.toml", run_id="xor-1")
    for event in client.events(run["id"]):              # live; reconnects with Last-Event-ID
        print(event.event, event.data)
    client.fetch(run["id"], "results/")

    study = client.create_study(strategy={"type": "cmaes", "population": 16}, inputs=4, outputs=2, study_id="s1")
    while not study.done:
        trials = study.ask(8)                           # waits while other clients hold the generation's last trials
        study.tell(trials, [my_fitness(t.genome, t.network) for t in trials])

Server: ``server=`` or ``EVO_SERVER`` (default ``http://127.0.0.1:8765``).
Token: ``token=`` or ``EVO_TOKEN``, else ``<home>/token`` of the local
service (``home=``, ``EVO_HOME``, default ``~/.evo``). Every error of the
service raises :class:`ServiceError` with its status and message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8765"
#: statuses after which nothing happens to a run until it is resumed
ENDED = ("stopped", "succeeded", "failed", "cancelled")


class ServiceError(Exception):
    """The service answered with an error (``status`` 0: it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Event:
    """One event of a run's stream: ``id`` (the event's number), ``event`` (its kind) and ``data``."""

    id: int
    event: str
    data: dict[str, Any]


def read_config(config: str | Path | dict[str, Any]) -> str | dict[str, Any]:
    """What to submit: a dict as is; a path to a TOML file as its table (named after the file, as `evo run` does)."""
    if isinstance(config, dict):
        return config
    if isinstance(config, Path) or ("\n" not in config and (config.endswith(".toml") or Path(config).is_file())):
        from evo.config import read_toml  # one reader, one error message, with the CLI

        return read_toml(config)
    return config  # TOML text


def _is_within(root: Path, candidate: Path) -> bool:
    """``candidate`` resolves (symlinks followed) inside ``root``."""
    return candidate.resolve().is_relative_to(root.resolve())


class Client:
    """Talks to one `evo serve`; every method is one request (``events`` a stream)."""

    def __init__(self, server: str | None = None, token: str | None = None, home: str | Path | None = None, timeout: float = 30.0) -> None:
        self.server = (server or os.environ.get("EVO_SERVER") or DEFAULT_SERVER).rstrip("/")
        self.token = token or os.environ.get("EVO_TOKEN") or self._local_token(home)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    @staticmethod
    def _local_token(home: str | Path | None) -> str | None:
        folder = Path(home or os.environ.get("EVO_HOME") or "~/.evo").expanduser()
        path = folder / "token"
        return path.read_text().strip() if path.is_file() else None

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --------------------------------------------------------------- requests
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceError(
                0, f"cannot reach the evo service at {self.server} ({type(exc).__name__}: {exc}); is `evo serve` running?"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text or response.reason_phrase
            raise ServiceError(response.status_code, message)
        return response

    def submit(
        self, config: str | Path | dict[str, Any], run_id: str | None = None, overrides: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Queue a run from a TOML path, TOML text or a config dict; returns ``{"id", "status"}``."""
        body: dict[str, Any] = {"config": read_config(config)}
        if run_id is not None:
            body["run_id"] = run_id
        if overrides:
            body["overrides"] = {k: v for k, v in overrides.items() if v is not None}
        return self._request("POST", "/api/runs", json=body).json()

    def runs(self, status: str | None = None, name: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """One page of runs, newest first: ``{"runs", "total", "limit", "offset"}``."""
        params = {k: v for k, v in {"status": status, "name": name, "limit": limit, "offset": offset}.items() if v is not None}
        return self._request("GET", "/api/runs", params=params).json()

    def get(self, run_id: str) -> dict[str, Any]:
        """Everything the service knows of a run."""
        return self._request("GET", f"/api/runs/{run_id}").json()

    status = get

    def metrics(self, run_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Metrics rows after generation ``since``."""
        return self._request("GET", f"/api/runs/{run_id}/metrics", params={"since": since}).json()["rows"]

    def stop(self, run_id: str) -> dict[str, Any]:
        """Finish the current generation, checkpoint, end ``stopped``."""
        return self._request("POST", f"/api/runs/{run_id}/stop").json()

    def cancel(self, run_id: str) -> dict[str, Any]:
        """End the run now."""
        return self._request("POST", f"/api/runs/{run_id}/cancel").json()

    def resume(self, run_id: str, generations: int | None = None, workers: int | None = None) -> dict[str, Any]:
        """Continue from the checkpoint (optionally to ``generations`` in all)."""
        body = {k: v for k, v in {"generations": generations, "workers": workers}.items() if v is not None}
        return self._request("POST", f"/api/runs/{run_id}/resume", json=body).json()

    def delete(self, run_id: str) -> None:
        """Forget a run that is not running."""
        self._request("DELETE", f"/api/runs/{run_id}")

    def files(self, run_id: str) -> list[dict[str, Any]]:
        """The run directory's files: ``path``, ``size``, ``modified``."""
        return self._request("GET", f"/api/runs/{run_id}/files").json()["files"]

    def download(self, run_id: str, path: str) -> bytes:
        """One file of the run directory."""
        return self._request("GET", f"/api/runs/{run_id}/files/{path}").content

    def fetch(self, run_id: str, to: str | Path = ".") -> Path:
        """Download the whole run directory into ``to/<run id>``; returns that folder.

        A path from the server that would write outside that folder (absolute,
        with ``..``, or through a symlink already there) is refused before
        anything is written: a client must not trust the server with its disk.
        """
        target = Path(to) / run_id
        entries = self.files(run_id)
        if not _is_within(Path(to), target) or target.resolve() == Path(to).resolve():
            raise ServiceError(400, f"refusing to fetch run {run_id!r}: its id would write outside {str(to)!r}")
        for entry in entries:
            relative = str(entry["path"])
            pure = PurePosixPath(relative)
            if not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative or "\0" in relative:
                raise ServiceError(400, f"refusing to fetch {relative!r}: the server named a path outside the run directory")
            if not _is_within(target, target / pure):
                raise ServiceError(400, f"refusing to fetch {relative!r}: it would be written outside {str(target)!r}")
        for entry in entries:
            destination = target / entry["path"]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(self.download(run_id, entry["path"]))
        target.mkdir(parents=True, exist_ok=True)
        return target

    def wait(self, run_id: str, timeout: float = 600.0, poll: float = 0.2) -> dict[str, Any]:
        """Poll until the run has ended; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run["status"] in ENDED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
            time.sleep(poll)

    # ----------------------------------------------------------------- studies
    def create_study(self, strategy: dict[str, Any], study_id: str | None = None, client_id: str | None = None, **spec: Any) -> Study:
        """Create (or, with the same ``study_id``, rejoin) an ask/tell study; ``spec``: name, seed, generations, network,
        inputs, outputs, dimension, bounds, target_fitness, trial_timeout (see ``POST /api/studies``)."""
        body = {"strategy": strategy, **{k: v for k, v in spec.items() if v is not None}}
        if study_id is not None:
            body["study_id"] = study_id
        answer = self._request("POST", "/api/studies", json=body).json()
        return Study(self, answer["id"], client_id)

    def study(self, study_id: str, client_id: str | None = None) -> Study:
        """An existing study, to ask and tell as ``client_id`` (default: this host and process)."""
        return Study(self, study_id, client_id)

    # ----------------------------------------------------------------- stream
    def events(self, run_id: str, last_event_id: int = 0, reconnect: bool = True) -> Iterator[Event]:
        """The run's events after ``last_event_id``, live, until the run has ended; reconnects where it left off."""
        last = last_event_id
        failures = 0
        while True:
            try:
                for event in self._stream_once(run_id, last):
                    last = event.id
                    failures = 0
                    yield event
                return  # the server ended the stream: the run has ended
            except (httpx.TransportError, httpx.RemoteProtocolError):
                failures += 1
                if not reconnect or failures > 30:
                    raise ServiceError(0, f"lost the event stream of run {run_id} at {self.server}") from None
                time.sleep(min(2.0, 0.1 * 2**failures))

    def _stream_once(self, run_id: str, last: int) -> Iterator[Event]:
        headers = {"Last-Event-ID": str(last), "Accept": "text/event-stream"}
        with self.http.stream("GET", f"/api/runs/{run_id}/stream", headers=headers, timeout=httpx.Timeout(30.0, read=None)) as response:
            if response.status_code >= 400:
                response.read()
                raise ServiceError(response.status_code, response.json().get("error", response.text))
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line == "":
                    if "data" in fields and "id" in fields:
                        yield Event(int(fields["id"]), fields.get("event", "message"), json.loads(fields["data"]))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value


@dataclass
class Trial:
    """A genome to evaluate: ``network`` (a description for ``networks.network_from_description``, None for a vector
    study) and the ``seed`` / ``generation_seed`` that `evo run`'s evaluators would give a task's ``evaluate``."""

    id: str
    generation: int
    index: int
    genome: Any  # numpy.ndarray (float64)
    network: dict[str, Any] | None
    seed: int
    generation_seed: int


class Study:
    """One ask/tell study as one client (``client_id``): :meth:`ask` trials, :meth:`tell` their fitness."""

    def __init__(self, client: Client, study_id: str, client_id: str | None = None) -> None:
        import socket

        self.client = client
        self.id = study_id
        self.client_id = client_id or f"{socket.gethostname()}-{os.getpid()}"
        self.done = False

    def ask(self, count: int = 1, wait: float = 60.0) -> list[Trial]:
        """Up to ``count`` trials; while none is free (others hold the generation's last ones) polls up to ``wait`` seconds.

        Returns [] and sets :attr:`done` once the study has ended (or is stopped)."""
        import numpy as np

        deadline = time.monotonic() + wait
        while True:
            body = {"client_id": self.client_id, "count": count}
            answer = self.client._request("POST", f"/api/studies/{self.id}/ask", json=body).json()
            if answer["trials"] or answer["done"] or time.monotonic() >= deadline:
                self.done = answer["done"]
                return [Trial(**{**t, "genome": np.asarray(t["genome"], dtype=np.float64)}) for t in answer["trials"]]
            time.sleep(min(answer["retry_after"] or 0.2, max(0.0, deadline - time.monotonic())))

    def tell(self, trials: list[Trial] | list[str], fitness: Any) -> dict[str, Any]:
        """Fitness of each trial (NaN or None: the evaluation failed); returns ``{accepted, ignored, generation, status}``."""
        ids = [t if isinstance(t, str) else t.id for t in trials]
        values = [None if v is None or v != v or v in (float("inf"), float("-inf")) else float(v) for v in list(fitness)]
        if len(ids) != len(values):
            raise ValueError(f"tell: {len(ids)} trials but {len(values)} fitness values")
        answer = self.client._request(
            "POST", f"/api/studies/{self.id}/tell", json={"results": [{"id": i, "fitness": v} for i, v in zip(ids, values)]}
        )
        return answer.json()

    def get(self) -> dict[str, Any]:
        """The study as the service shows it (status, generation, latest metrics, summary with the best genome at the end)."""
        return self.client._request("GET", f"/api/studies/{self.id}").json()

    def metrics(self) -> list[dict[str, Any]]:
        """Its metrics rows, one per generation."""
        return self.client.metrics(self.id)


__all__ = ["Client", "Event", "ServiceError", "Study", "Trial", "read_config"]
