"""The service's subcommands of `evo`: ``serve`` and the client verbs.

    evo serve [--home DIR] [--host H] [--port N] [--db URL] [--ray-address ADDR] [--max-concurrent N]
    evo submit CONFIG [--run-id ID] [--seed N] [--generations N] [--population N] [--workers N] [--watch]
    evo runs [--status S] [--name NAME]      evo status ID      evo watch ID
    evo stop ID    evo cancel ID    evo resume ID [--generations N] [--workers N]    evo fetch ID [--to DIR]

The client verbs find the service with ``--server`` / ``EVO_SERVER`` and
``--token`` / ``EVO_TOKEN``, else the local home's token file. Exit status 0
on success, 2 for input the service refused (bad config, unknown run, not
possible now), 1 when the service cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

SERVICE_COMMANDS = ("serve", "submit", "runs", "status", "watch", "stop", "cancel", "resume", "fetch")


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """Where the service is and how to sign in: --server, --token, --home."""
    parser.add_argument("--server", help="the service's URL (default: EVO_SERVER or http://127.0.0.1:8765)")
    parser.add_argument("--token", help="the service's token (default: EVO_TOKEN, else <home>/token)")
    parser.add_argument("--home", help="the local service's home, for its token file (default: EVO_HOME or ~/.evo)")


def add_runs_filters(parser: argparse.ArgumentParser, positive_int: Callable[[str], int]) -> None:
    """The service's run-list filters (`evo runs` with any of them asks the service)."""
    parser.add_argument("--status", choices=["queued", "running", "stopping", "stopped", "succeeded", "failed", "cancelled"])
    parser.add_argument("--name")
    parser.add_argument("--limit", type=positive_int, default=50)


def add_service_commands(
    sub: argparse._SubParsersAction,
    positive_int: Callable[[str], int],
    non_negative_int: Callable[[str], int],
    exclude: tuple[str, ...] = (),
) -> None:
    """Add ``serve`` and the client verbs to the `evo` parser's subcommands (but those in ``exclude``: another module adds them)."""
    serve = sub.add_parser(
        "serve",
        help="run the optimiser as a service: HTTP API, database, runs on Ray",
        description=(
            "Serve the REST API (docs at /docs) with nothing to configure: a loopback-only local Ray instance, "
            "SQLite in the home folder, HTTP on 127.0.0.1:8765 and a bearer token generated on first start into <home>/token."
        ),
    )
    serve.add_argument("--home", help="the service's folder: database, token, run directories (default: EVO_HOME or ~/.evo)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=non_negative_int, default=8765, help="port (default 8765; 0: any free port)")
    serve.add_argument("--db", metavar="URL", help="SQLAlchemy database URL (default: SQLite in the home folder)")
    serve.add_argument(
        "--ray-address", metavar="ADDR", default=os.environ.get("RAY_ADDRESS"), help="join this Ray cluster (RAY_ADDRESS works too)"
    )
    serve.add_argument(
        "--max-concurrent", type=positive_int, default=2, help="runs executing at once; the rest wait in a queue (default 2)"
    )
    serve.add_argument("--ray-cpus", type=positive_int, help="CPUs of the local Ray instance (default: every core)")
    serve.add_argument("--ray-object-store-mb", type=positive_int, default=512, help="object store of the local Ray instance (default 512)")
    serve.add_argument(
        "--worker-timeout",
        type=positive_int,
        default=120,
        metavar="SECONDS",
        help="a run whose worker sends no heartbeat for this long is hung: its worker is killed and the run marked failed, "
        "resumable from its last checkpoint (default 120)",
    )

    def client_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_client_options(parser)
        return parser

    submit = client_parser("submit", "submit a run config to the service")
    submit.add_argument("config", help="path to a run config (.toml)")
    submit.add_argument("--run-id", help="the run's id and idempotency key: submitting it again returns the same run")
    submit.add_argument("--seed", type=non_negative_int)
    submit.add_argument("--generations", type=positive_int)
    submit.add_argument("--population", type=positive_int)
    submit.add_argument("--workers", type=positive_int, help="Ray workers the run's fitness is spread over")
    submit.add_argument("--watch", action="store_true", help="follow the run with a progress bar until it ends")
    if "runs" not in exclude:
        runs = client_parser("runs", "list the service's runs, newest first")
        add_runs_filters(runs, positive_int)
        runs.add_argument("--json", action="store_true", help="print the JSON answer")
    for name, help_text in (
        ("status", "show a run: status, latest metrics, summary or error"),
        ("watch", "follow a run live with a progress bar"),
        ("stop", "stop a run after its current generation (resumable)"),
        ("cancel", "end a run now"),
    ):
        parser = client_parser(name, help_text)
        parser.add_argument("run_id", metavar="ID")
        if name == "status":
            parser.add_argument("--json", action="store_true", help="print the JSON answer")
    resume = client_parser("resume", "continue a stopped (or failed, cancelled, finished) run from its checkpoint")
    resume.add_argument("run_id", metavar="ID")
    resume.add_argument("--generations", type=positive_int, help="the new total of generations")
    resume.add_argument("--workers", type=positive_int)
    fetch = client_parser("fetch", "download a run directory")
    fetch.add_argument("run_id", metavar="ID")
    fetch.add_argument("--to", default=".", metavar="DIR", help="parent folder (default: the current folder); files go to DIR/ID/")


def run_service_command(args: argparse.Namespace) -> int:
    """Execute one of :data:`SERVICE_COMMANDS`."""
    if args.command == "serve":
        from evo.service.server import serve
        from evo.service.settings import ServiceSettings, default_home

        settings = ServiceSettings(
            home=args.home or default_home(),
            host=args.host,
            port=args.port,
            db_url=args.db,
            ray_address=args.ray_address or None,
            max_concurrent=args.max_concurrent,
            ray_cpus=args.ray_cpus,
            ray_object_store_mb=args.ray_object_store_mb,
            worker_timeout=float(args.worker_timeout),
        )
        return serve(settings)
    from evo.client import Client, ServiceError

    client = Client(server=args.server, token=args.token, home=args.home)
    try:
        return _CLIENT_COMMANDS[args.command](client, args)
    except BrokenPipeError:
        # The reader went away (`evo runs | head`): stop quietly, and keep the interpreter's final flush from failing too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, as a shell reports a command that a closed pipe ended
    except ServiceError as exc:
        print(f"evo {args.command}: {exc.message}", file=sys.stderr)
        return 1 if exc.status == 0 or exc.status >= 500 else 2
    finally:
        client.close()


def _print_run(run: dict[str, Any]) -> None:
    metrics = run.get("latest_metrics") or {}
    print(f"{run['id']}  {run['name']}  {run['status']}  generation {run['generation']}/{run['generations']}")
    if metrics:
        print("latest: " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    if run.get("error"):
        print(f"error: {run['error']}")
    summary = run.get("summary") or {}
    if summary:
        figures = {k: v for k, v in summary.items() if k in ("best_fitness", "stopped_by", "wall_seconds") or k.startswith("test_")}
        print("summary: " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))


def _submit(client, args: argparse.Namespace) -> int:
    overrides = {"seed": args.seed, "generations": args.generations, "population": args.population, "workers": args.workers}
    answer = client.submit(args.config, run_id=args.run_id, overrides=overrides)
    print(f"run {answer['id']}: {answer['status']}{' (' + answer['message'] + ')' if answer.get('message') else ''}")
    return _watch(client, argparse.Namespace(run_id=answer["id"])) if args.watch else 0


def _runs(client, args: argparse.Namespace) -> int:
    page = client.runs(status=args.status, name=args.name, limit=args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    for run in page["runs"]:
        best = f"{run['best_fitness']:.6g}" if run.get("best_fitness") is not None else "-"
        print(f"{run['id']:<24} {run['name']:<20} {run['status']:<10} {run['generation']:>6}/{run['generations']:<6} best {best}")
    print(f"{len(page['runs'])} of {page['total']} run(s)")
    return 0


def _status(client, args: argparse.Namespace) -> int:
    run = client.get(args.run_id)
    if args.json:
        print(json.dumps(run, indent=2))
    else:
        _print_run(run)
    return 0


def _watch(client, args: argparse.Namespace) -> int:
    """A progress bar fed by the event stream, to the run's end."""
    from tqdm import tqdm

    run = client.get(args.run_id)
    bar = tqdm(total=run["generations"], initial=0, desc=f"{run['name']} {run['id']}", unit="gen", dynamic_ncols=True)
    status = run["status"]
    try:
        for event in client.events(args.run_id):
            if event.event == "generation":
                bar.n = event.data["generation"]
                best = event.data.get("best_so_far")
                bar.set_postfix_str(f"best {best:.4g}" if best is not None else "", refresh=False)
                bar.refresh()
            elif event.event == "status":
                status = event.data["status"]
                bar.set_description_str(f"{run['name']} {run['id']} [{status}]")
            elif event.event in ("notice", "failures"):
                bar.write(f"{event.event}: {event.data.get('message') or event.data}")
    finally:
        bar.close()
    final = client.get(args.run_id)
    _print_run(final)
    return 0 if final["status"] in ("succeeded", "stopped") else 2


def _action(verb: str) -> Callable[[Any, argparse.Namespace], int]:
    def act(client, args: argparse.Namespace) -> int:
        answer = getattr(client, verb)(args.run_id)
        print(f"run {answer['id']}: {answer['status']}")
        return 0

    return act


def _resume(client, args: argparse.Namespace) -> int:
    answer = client.resume(args.run_id, generations=args.generations, workers=args.workers)
    print(f"run {answer['id']}: {answer['status']}")
    return 0


def _fetch(client, args: argparse.Namespace) -> int:
    target = client.fetch(args.run_id, args.to)
    print(f"run directory: {target}")
    return 0


_CLIENT_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "submit": _submit,
    "runs": _runs,
    "status": _status,
    "watch": _watch,
    "stop": _action("stop"),
    "cancel": _action("cancel"),
    "resume": _resume,
    "fetch": _fetch,
}
