"""``evo serve``: the home folder, the token, the database, the scheduler and uvicorn, in one call."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys

from evo.service.settings import ServiceSettings, ensure_token


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), bound before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def serve(settings: ServiceSettings) -> int:
    """Run the service until SIGINT or SIGTERM; returns the exit status."""
    import uvicorn

    from evo.service.app import create_app
    from evo.service.db import Database
    from evo.service.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="evo serve: %(message)s", stream=sys.stdout)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"evo serve: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    settings.port = sock.getsockname()[1]
    settings.prepare_home()
    token, created = ensure_token(settings.home)
    db = Database(settings.database_url)
    db.create_tables()
    scheduler = Scheduler(settings, db)
    app = create_app(settings, db, token, scheduler)
    url_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"evo serve: home {settings.home}, database {settings.database_url.split('@')[-1]}, at most {settings.max_concurrent} runs at once"
    )
    print(f"evo serve: Ray {'at ' + settings.ray_address if settings.ray_address else 'local instance (loopback only)'}")
    if created:
        print(f"evo serve: new API token (kept in {settings.home / 'token'}, mode 0600; shown only now): {token}", flush=True)
    if not _is_loopback(settings.host):
        print(
            f"evo serve: warning: listening on {settings.host}, beyond loopback: anyone who can reach it and holds the token can submit runs"
        )
    print(f"evo serve: listening on http://{url_host}:{settings.port}", flush=True)  # last: a supervisor may wait for this line
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, lifespan="on", access_log=False))
    try:
        server.run(sockets=[sock])  # the application's lifespan starts and stops the scheduler
    finally:
        db.dispose()
    return 0
