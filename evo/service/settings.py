"""The service's settings and its home folder.

<home>/token          the bearer token (mode 0600), generated on first start
<home>/evo.db         the SQLite database (unless --db names another)
<home>/runs/<id>/     each run's directory (config, metrics, checkpoint, plots, summary)
<home>/logs/          each worker's output, and the Ray head's
<home>/ray/           the local Ray head's address and its own auth token
<home>/data/          the data files submitted configs may name (task.path, task.dir): nothing outside it
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = "~/.evo"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: runs may name their own id; it becomes a folder name, so no separators and no leading dot
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: request bodies larger than this get 413
MAX_BODY_BYTES = 1024 * 1024


def default_home() -> Path:
    """``EVO_HOME`` if set, else ``~/.evo``."""
    return Path(os.environ.get("EVO_HOME") or DEFAULT_HOME).expanduser()


@dataclass
class ServiceSettings:
    """Everything `evo serve` was started with."""

    home: Path = field(default_factory=default_home)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: any SQLAlchemy URL; None: SQLite in the home folder
    db_url: str | None = None
    #: join this Ray cluster; None: a loopback-only local instance owned by the service
    ray_address: str | None = None
    max_concurrent: int = 2
    #: CPUs of the local Ray instance (None: every core)
    ray_cpus: int | None = None
    ray_object_store_mb: int = 512
    #: a run whose worker wrote no heartbeat for this long is hung: killed, marked failed (resumable)
    worker_timeout: float = 120.0
    #: keep one worker process started and connected to Ray, so a run starts without paying the imports
    standby_worker: bool = True

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The URL the service and its workers connect to."""
        return self.db_url or f"sqlite:///{self.home / 'evo.db'}"

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker writes its heartbeat: several times within the timeout, at most every 5 s."""
        return min(5.0, self.worker_timeout / 4)

    @property
    def runs_dir(self) -> Path:
        """Where the run directories are."""
        return self.home / "runs"

    @property
    def logs_dir(self) -> Path:
        """Where the workers' and the Ray head's output goes."""
        return self.home / "logs"

    @property
    def ray_dir(self) -> Path:
        """The local Ray head's address file and auth token."""
        return self.home / "ray"

    @property
    def data_dir(self) -> Path:
        """The only folder a submitted config's data-file fields may name (see evo.service.validation)."""
        return self.home / "data"

    def prepare_home(self) -> None:
        """Create the home folder and its subfolders (private to the user)."""
        for folder in (self.home, self.runs_dir, self.logs_dir, self.ray_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_secret(path: Path) -> tuple[str, bool]:
    """The secret in ``path``, created (mode 0600, never readable by others) if missing; returns (secret, created)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret, True


def ensure_token(home: Path) -> tuple[str, bool]:
    """The service's bearer token from ``<home>/token``, generated on first start; returns (token, created)."""
    return write_secret(Path(home) / "token")


def read_token(home: Path) -> str | None:
    """The token a local client finds in ``<home>/token`` (None if there is none)."""
    path = Path(home) / "token"
    return path.read_text().strip() if path.is_file() else None


def standby_ready_path(home: Path, pid: int) -> Path:
    """The file a standby worker creates once its imports are done and Ray is joined and warm."""
    return Path(home) / "logs" / f"standby-{pid}.ready"
