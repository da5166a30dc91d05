"""`evo serve` end to end: the real server in a subprocess, its real Ray head and SQLite database, over HTTP.

One service (embedded loopback Ray, ``--max-concurrent 2``) serves the whole
module; the crash test SIGKILLs it and starts it again on the same home. Every
process a test starts is stopped by the fixture's finalizer: the service, its
worker processes (pids from its database) and its Ray head.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from evo.client import Client, ServiceError
from evo.config import ConfigError, parse_config
from evo.run import EvolutionRun
from evo.service.processes import command_line, process_alive
from tests.service_support import (
    ROOT,
    ServiceProcess,
    assert_events_consistent,
    reference,
    run_count,
    wait_for,
    without_time,
    xor_config,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The module's service: embedded Ray (2 CPUs), at most 2 runs at once."""
    proc = ServiceProcess(tmp_path_factory.mktemp("evo-home"), ["--max-concurrent", "2", "--ray-cpus", "2", "--ray-object-store-mb", "100"])
    try:
        proc.start()
        yield proc
    finally:
        proc.cleanup()


@pytest.fixture()
def client(service):
    with service.client() as c:
        yield c


# --------------------------------------------------------------------------- start, auth, bad input
def test_start_makes_a_private_token_printed_once_and_serves_the_schema(service):
    assert (service.home / "token").stat().st_mode & 0o777 == 0o600
    printed = [line for line in service.lines if "new API token" in line]
    assert len(printed) == 1 and printed[0].endswith(service.token)
    assert service.url.startswith("http://127.0.0.1:")
    schema = httpx.get(f"{service.url}/openapi.json").json()
    assert "/api/runs/{run_id}/stream" in schema["paths"]
    assert httpx.get(f"{service.url}/docs").status_code == 200


def test_every_api_request_needs_the_token(service):
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic abc"}, 401)):
        response = httpx.get(f"{service.url}/api/runs", headers=headers)
        assert response.status_code == status
        assert "token" in response.json()["error"]
    response = httpx.post(f"{service.url}/api/runs", json={"config": xor_config("x", 5)}, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 403
    assert run_count(service) == 0


def test_bad_input_gets_a_json_error_naming_it_and_nothing_is_written(service, client, tmp_path):
    url, auth = service.url, {"Authorization": f"Bearer {service.token}"}
    before = run_count(service), sorted(os.listdir(service.home / "runs"))
    bad_config = xor_config("bad", 5) | {"strategy": {"type": "cmaes", "population": 1}}
    try:
        parse_config(bad_config)
    except ConfigError as exc:
        cli_message = str(exc)  # what `evo run` prints for the same config
    cases = [
        (dict(content=b'{"config": ', headers={**auth, "Content-Type": "application/json"}), 400, "malformed JSON"),
        (dict(content=b"x" * (1024 * 1024 + 1), headers={**auth, "Content-Type": "application/json"}), 413, "1 MiB"),
        (dict(content=(b"x" * 65536 for _ in range(17)), headers={**auth, "Content-Type": "application/json"}), 413, "1 MiB"),
        (dict(json={"config": xor_config("x", 5), "colour": "red"}, headers=auth), 422, "colour: unknown field"),
        (dict(json={"config": bad_config}, headers=auth), 422, cli_message),
        (dict(json={"config": "generations = [", "run_id": "t"}, headers=auth), 422, "not valid TOML"),
        (dict(json={"config": xor_config("x", 5), "run_id": "../escape"}, headers=auth), 422, "run_id"),
    ]
    for request, status, message in cases:
        response = httpx.post(f"{url}/api/runs", **request)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]
    assert "strategy.population = 1" in cli_message
    assert httpx.post(f"{url}/api/runs", json={"config": bad_config}, headers=auth).json() == {"error": cli_message}
    for method, path in (
        ("GET", "/api/runs/nope"),
        ("POST", "/api/runs/nope/stop"),
        ("GET", "/api/runs/nope/stream"),
        ("DELETE", "/api/runs/nope"),
    ):
        response = httpx.request(method, f"{url}{path}", headers=auth)
        assert response.status_code == 404 and response.json() == {"error": "no run with id 'nope'"}
    assert (run_count(service), sorted(os.listdir(service.home / "runs"))) == before


def test_configs_naming_code_are_refused_and_nothing_is_imported(service, tmp_path):
    url, auth = service.url, {"Authorization": f"Bearer {service.token}"}
    marker = tmp_path / "imported"
    module = tmp_path / "evil_fitness.py"
    module.write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef f(x):\n    return 0.0\n")
    strategy = {"type": "cmaes", "population": 8}
    before = run_count(service), sorted(os.listdir(service.home / "runs"))
    configs = {
        "task.type = 'function'": {"task": {"type": "function", "callable": "evil_fitness:f", "dimension": 2, "bounds": [-1, 1]}},
        "task.type = 'python'": {"task": {"type": "python", "class": "evil_fitness:Task"}},
        "task.import": {"task": {"type": "control", "env_id": "CartPole-v1", "import": ["evil_fitness"]}},
        "task.env_id = 'evil_fitness:Env'": {"task": {"type": "control", "env_id": "evil_fitness:Env"}},
    }
    for named, config in configs.items():
        body = {"name": "code", "generations": 2, "strategy": strategy, **config}
        response = httpx.post(f"{url}/api/runs", json={"config": body}, headers=auth)
        assert response.status_code == 422, (named, response.text)
        assert response.json()["error"].startswith(f"config error: {named}"), response.text
    assert not marker.exists()
    assert (run_count(service), sorted(os.listdir(service.home / "runs"))) == before


def test_configs_that_fail_to_build_or_name_files_outside_the_data_folder_are_refused(service, client):
    url, auth = service.url, {"Authorization": f"Bearer {service.token}"}
    strategy = {"type": "cmaes", "population": 8}
    unknown_env = {"name": "env", "generations": 2, "task": {"type": "control", "env_id": "Nope-v9"}, "strategy": strategy}
    with pytest.raises(ConfigError) as built:
        EvolutionRun(parse_config(unknown_env), progress=False)  # what `evo run` prints for it
    before = run_count(service), sorted(os.listdir(service.home / "runs"))
    response = httpx.post(f"{url}/api/runs", json={"config": unknown_env}, headers=auth)
    assert response.status_code == 422 and response.json() == {"error": str(built.value)}
    dataset = {"name": "data", "generations": 2, "strategy": strategy, "network": {"hidden": [2]}}
    for path in ("/etc/passwd", "../token", "../../../../etc/passwd", str(service.home / "token")):
        config = dataset | {"task": {"type": "dataset", "path": path}}
        response = httpx.post(f"{url}/api/runs", json={"config": config}, headers=auth)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"].startswith(f"config error: task.path = {path!r}: the service reads data files only")
    (service.home / "data" / "out").symlink_to(service.home)
    mnist = dataset | {"task": {"type": "mnist", "dir": "out"}}
    assert "task.dir = 'out'" in httpx.post(f"{url}/api/runs", json={"config": mnist}, headers=auth).json()["error"]
    missing = httpx.post(f"{url}/api/runs", json={"config": dataset | {"task": {"type": "dataset", "path": "none.csv"}}}, headers=auth)
    assert missing.status_code == 422 and missing.json()["error"] == "config error: task.path = 'none.csv': file does not exist"
    assert (run_count(service), sorted(os.listdir(service.home / "runs"))) == before
    rows = [f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{i % 2}" for i in range(80)]
    (service.home / "data" / "tiny.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    run = client.wait(client.submit(dataset | {"task": {"type": "dataset", "path": "tiny.csv"}})["id"])
    assert run["status"] == "succeeded", run
    assert run["config"]["task"]["path"] == str((service.home / "data" / "tiny.csv").resolve())


# --------------------------------------------------------------------------- a run's life
def test_a_run_through_the_api_gives_the_numbers_of_evo_run(service, client, tmp_path):
    config = xor_config("life", 300, target=0.95)
    answer = httpx.post(f"{service.url}/api/runs", json={"config": config}, headers={"Authorization": f"Bearer {service.token}"})
    assert answer.status_code == 201 and answer.json()["status"] == "queued"
    run_id = answer.json()["id"]
    run = client.wait(run_id, timeout=90)
    assert run["status"] == "succeeded", run
    rows, summary = reference(config, tmp_path)
    assert without_time(client.metrics(run_id)) == rows
    assert without_time([run["latest_metrics"]]) == rows[-1:]
    for key in ("best_fitness", "generations", "evaluations", "stopped_by", "test_accuracy", "test_mse"):
        assert run["summary"][key] == summary[key], key
    assert run["summary"]["evaluator"]["type"] == "ray"
    assert run["started_at"] and run["finished_at"] and run["error"] is None
    assert without_time(client.metrics(run_id, since=len(rows) - 2)) == rows[-2:]
    # list, filters and pages
    listed = client.runs(status="succeeded", name="life")
    assert [r["id"] for r in listed["runs"]] == [run_id] and listed["total"] == 1
    assert client.runs(status="failed", name="life")["total"] == 0
    # files: the run directory's artefacts
    paths = {f["path"] for f in client.files(run_id)}
    assert {"summary.json", "metrics.csv", "best_genome.npz", "fitness.png", "checkpoint/state.json"} <= paths
    assert json.loads(client.download(run_id, "summary.json"))["best_fitness"] == summary["best_fitness"]
    fetched = client.fetch(run_id, tmp_path / "fetched")
    assert (fetched / "fitness.png").read_bytes()[:4] == b"\x89PNG"
    assert_events_consistent(service, run_id)
    # what cannot be done to a finished run, and delete
    with pytest.raises(ServiceError, match="already ended") as stop_error:
        client.stop(run_id)
    assert stop_error.value.status == 409
    with pytest.raises(ServiceError, match="give generations > "):
        client.resume(run_id)
    client.delete(run_id)
    with pytest.raises(ServiceError) as gone:
        client.get(run_id)
    assert gone.value.status == 404 and not (service.home / "runs" / run_id).exists()


def test_the_same_run_id_returns_the_same_run(service, client):
    url, auth = service.url, {"Authorization": f"Bearer {service.token}"}
    body = {"config": xor_config("idem", 20), "run_id": "idem-1", "overrides": {"generations": 8}}
    first = httpx.post(f"{url}/api/runs", json=body, headers=auth)
    count = run_count(service)
    again = [httpx.post(f"{url}/api/runs", json=body, headers=auth) for _ in range(3)]
    assert first.status_code == 201 and {r.status_code for r in again} == {200}
    assert {r.json()["id"] for r in again} == {"idem-1"} and run_count(service) == count
    other = httpx.post(f"{url}/api/runs", json={**body, "overrides": {"generations": 9}}, headers=auth)
    assert other.status_code == 409 and "different config" in other.json()["error"]
    run = client.wait("idem-1")
    assert run["status"] == "succeeded" and run["generation"] == 8 and run["generations"] == 8


def test_files_outside_the_run_directory_are_refused(service, client):
    run = client.wait(client.submit(xor_config("files", 300, target=0.95), run_id="files-1")["id"])
    run_dir = service.home / "runs" / run["id"]
    (run_dir / "leak").symlink_to(service.home / "token")
    (run_dir / "leakdir").symlink_to(service.home)
    auth = {"Authorization": f"Bearer {service.token}"}
    for path in ("..%2Ftoken", "%2E%2E/%2E%2E/etc/passwd", "%2Fetc%2Fpasswd", "leak", "leakdir/token", "checkpoint/..%2F..%2Fevo.db"):
        response = httpx.get(f"{service.url}/api/runs/{run['id']}/files/{path}", headers=auth)
        assert response.status_code == 400, (path, response.text)
        assert "refused" in response.json()["error"]
    assert {f["path"] for f in client.files(run["id"])}.isdisjoint({"leak", "leakdir/token"})
    assert httpx.get(f"{service.url}/api/runs/{run['id']}/files/config.toml", headers=auth).status_code == 200
    assert httpx.get(f"{service.url}/api/runs/{run['id']}/files/nothing.txt", headers=auth).status_code == 404
    for path, status in (("a" * 300, 400), ("checkpoint/" + "b" * 300 + "/x", 400), ("summary.json/x", 404)):
        response = httpx.get(f"{service.url}/api/runs/{run['id']}/files/{path}", headers=auth)
        assert response.status_code == status and str(service.home) not in response.text, (path, response.text)


# --------------------------------------------------------------------------- stop, resume, cancel, failure
def test_stop_then_resume_is_identical_to_an_uninterrupted_run(service, client, tmp_path):
    config = xor_config("stopresume", 150, checkpoint_every=25)
    run_id = client.submit(config, run_id="stop-1")["id"]
    wait_for(lambda: client.get(run_id)["generation"] >= 3, what="generation 3")
    assert client.stop(run_id)["status"] in ("stopping", "stopped")
    stopped = client.wait(run_id)
    assert stopped["status"] == "stopped" and stopped["summary"]["stopped_by"] == "stopped"
    assert 3 <= stopped["generation"] < 150
    with pytest.raises(ServiceError, match="already ended"):
        client.stop(run_id)
    for fewer in (stopped["generation"] - 1, stopped["generation"]):
        with pytest.raises(ServiceError, match=f"already at generation {stopped['generation']}; give generations > ") as less:
            client.resume(run_id, generations=fewer)
        assert less.value.status == 409 and client.get(run_id)["status"] == "stopped"
    assert client.resume(run_id)["status"] == "queued"
    with pytest.raises(ServiceError, match="only a stopped, failed, cancelled or finished run can be resumed") as busy:
        client.resume(run_id)
    assert busy.value.status == 409
    finished = client.wait(run_id)
    assert finished["status"] == "succeeded" and finished["generation"] == 150
    rows, summary = reference(config, tmp_path)
    assert without_time(client.metrics(run_id)) == rows
    assert finished["summary"]["best_fitness"] == summary["best_fitness"]
    assert finished["summary"]["test_mse"] == summary["test_mse"]
    assert_events_consistent(service, run_id)


def test_cancel_ends_the_run_now_and_resume_without_a_checkpoint_says_why(service, client):
    run_id = client.submit(xor_config("cancel", 100000, checkpoint_every=100000), run_id="cancel-1")["id"]
    wait_for(lambda: client.get(run_id)["generation"] >= 3, what="generation 3")
    pid = client.get(run_id)["worker_pid"]
    assert client.cancel(run_id)["status"] == "cancelled"
    from evo.service.processes import process_alive

    wait_for(lambda: not process_alive(pid), timeout=10, what="the worker to end")
    run = client.get(run_id)
    assert run["status"] == "cancelled" and run["generation"] < 100000
    with pytest.raises(ServiceError, match="no checkpoint to resume from") as error:
        client.resume(run_id)
    assert error.value.status == 409
    assert [e.data["status"] for e in client.events(run_id) if e.event == "status"][-1] == "cancelled"


def test_a_run_whose_fitness_raises_everywhere_fails_with_its_message_while_others_go_on(service, client, tmp_path):
    broken = {
        "name": "broken",
        "generations": 5,
        "network": {"hidden": [2]},
        # A wrong type for the environment's gravity: accepted when the env is made, raises at every step.
        "task": {"type": "control", "env_id": "Pendulum-v1", "episodes": 1, "max_steps": 5, "env_kwargs": {"g": "abc"}},
        "strategy": {"type": "cmaes", "population": 4},
    }
    healthy = xor_config("healthy", 300, target=0.95)
    broken_id = client.submit(broken)["id"]
    healthy_id = client.submit(healthy)["id"]
    failed = client.wait(broken_id)
    assert failed["status"] == "failed"
    assert "every evaluation of generation 1 failed" in failed["error"] and "TypeError" in failed["error"]
    assert client.wait(healthy_id)["status"] == "succeeded"
    assert without_time(client.metrics(healthy_id)) == reference(healthy, tmp_path)[0]
    assert client.get(broken_id)["status"] == "failed"  # and the service still answers


def test_a_run_whose_worker_process_dies_is_marked_failed_and_the_service_goes_on(service, client):
    run_id = client.submit(xor_config("crashing", 100000, checkpoint_every=100000), run_id="worker-dies")["id"]
    wait_for(lambda: client.get(run_id)["generation"] >= 3, what="generation 3")
    os.killpg(client.get(run_id)["worker_pid"], signal.SIGKILL)
    run = client.wait(run_id, timeout=30)
    assert run["status"] == "failed" and "exited with status -9" in run["error"]
    assert client.runs(status="failed")["total"] >= 1


# --------------------------------------------------------------------------- the event stream
def test_the_stream_delivers_every_generation_once_in_order_across_a_reconnect(service, client):
    run_id = client.submit(xor_config("stream", 60), run_id="stream-1")["id"]
    seen: list[Any] = []
    for event in client.events(run_id):
        seen.append(event)
        if event.event == "generation" and event.data["generation"] == 5:
            break  # the client goes away mid-run...
    resumed_from = seen[-1].id
    time.sleep(0.3)
    seen += list(client.events(run_id, last_event_id=resumed_from))  # ...and comes back with Last-Event-ID
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids)) and ids == list(range(1, ids[-1] + 1))
    assert [e.data["generation"] for e in seen if e.event == "generation"] == list(range(1, 61))
    assert [e.event for e in seen[-2:]] == ["summary", "status"] and seen[-1].data["status"] == "succeeded"
    # A raw reconnect with the header: nothing before it, nothing twice.
    auth = {"Authorization": f"Bearer {service.token}", "Last-Event-ID": str(ids[-3])}
    with httpx.stream("GET", f"{service.url}/api/runs/{run_id}/stream", headers=auth, timeout=30) as response:
        text = response.read().decode()
    assert [line for line in text.splitlines() if line.startswith("id:")] == [f"id: {ids[-2]}", f"id: {ids[-1]}"]


# --------------------------------------------------------------------------- queue and crash
def test_the_queue_respects_max_concurrent_first_in_first_out(service, client):
    ids = [client.submit(xor_config(f"queue{i}", 60), run_id=f"queue-{i}")["id"] for i in range(3)]
    runs = [client.wait(run_id) for run_id in ids]
    assert {r["status"] for r in runs} == {"succeeded"}
    starts = {r["id"]: _status_times(service, r["id"]) for r in runs}
    events = sorted([(t, +1) for t, _ in starts.values()] + [(t, -1) for _, t in starts.values()], key=lambda e: (e[0], e[1]))
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == 2
    assert sorted(ids, key=lambda i: starts[i][0]) == ids  # started in the order submitted


def _status_times(service: ServiceProcess, run_id: str) -> tuple[float, float]:
    with sqlite3.connect(service.home / "evo.db") as connection:
        rows = connection.execute(
            "SELECT data, created_at FROM events WHERE run_id = ? AND kind = 'status' ORDER BY seq", (run_id,)
        ).fetchall()
    times = {json.loads(data)["status"]: at for data, at in rows}
    return times["running"], times["succeeded"]


def test_a_sigkilled_service_comes_back_with_every_run(service, client, tmp_path):
    # Long enough (about 6 ms a generation here) that neither running run ends before the other is past its checkpoint,
    # even when one worker starts seconds after the other on a loaded machine (800 generations was not, at load 20 on 2 cores).
    configs = [xor_config(f"crash{i}", generations, checkpoint_every=10, seed=i) for i, generations in enumerate((2000, 2000, 100))]
    ids = [client.submit(config, run_id=f"crash-{i}")["id"] for i, config in enumerate(configs)]
    wait_for(lambda: all(client.get(i)["generation"] >= 12 for i in ids[:2]), what="two runs past their first checkpoint")
    assert client.get(ids[2])["status"] == "queued"
    service.kill()
    # While the service is down the workers go on; one of them dies too, to be resumed from its checkpoint.
    victim = _db_run(service, ids[0])["worker_pid"]
    os.killpg(victim, signal.SIGKILL)
    assert _db_run(service, ids[2])["status"] == "queued"
    service.start()
    with service.client() as fresh:
        runs = [fresh.wait(run_id, timeout=120) for run_id in ids]
        assert [r["status"] for r in runs] == ["succeeded"] * 3
        for run_id, config in zip(ids, configs):
            assert without_time(fresh.metrics(run_id)) == reference(config, tmp_path)[0], run_id
            assert_events_consistent(service, run_id)
        notices = [e.data["message"] for e in fresh.events(ids[0]) if e.event == "notice"]
    assert any("continuing from the last checkpoint" in n for n in notices)
    assert runs[0]["attempts"] == 2


def _db_run(service: ServiceProcess, run_id: str) -> dict[str, Any]:
    with sqlite3.connect(service.home / "evo.db") as connection:
        connection.row_factory = sqlite3.Row
        return dict(connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())


# --------------------------------------------------------------------------- the command-line client
def test_the_command_line_client_drives_a_run(service, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVO_SERVER": service.url, "EVO_TOKEN": service.token}

    def evo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evo.cli", *args], capture_output=True, text=True, env=env, timeout=120)

    submitted = evo("submit", str(ROOT / "configs" / "xor.toml"), "--run-id", "cli-xor", "--watch")
    assert submitted.returncode == 0, submitted.stderr
    assert "run cli-xor: queued" in submitted.stdout and "succeeded" in submitted.stdout
    again = evo("submit", str(ROOT / "configs" / "xor.toml"), "--run-id", "cli-xor")
    assert "already submitted" in again.stdout
    assert "cli-xor" in evo("runs", "--name", "xor").stdout
    status = evo("status", "cli-xor", "--json")
    assert json.loads(status.stdout)["status"] == "succeeded"
    fetched = evo("fetch", "cli-xor", "--to", str(tmp_path))
    assert fetched.returncode == 0 and (tmp_path / "cli-xor" / "summary.json").is_file()
    refused = evo("stop", "cli-xor")
    assert refused.returncode == 2 and "already ended" in refused.stderr
    missing = evo("cancel", "no-such-run")
    assert missing.returncode == 2 and "no run with id 'no-such-run'" in missing.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "evo.cli", "runs", "--server", "http://127.0.0.1:9"], capture_output=True, text=True, env=env, timeout=60
    )
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


# --------------------------------------------------------------------------- the schema, fuzzed
def test_no_request_the_schema_allows_gets_a_server_error(service):
    """Property-based requests to every operation of /openapi.json (schemathesis): errors are 4xx JSON, never 500."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    auth = {"Authorization": f"Bearer {service.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case) -> None:
            response = case.call(headers=auth, timeout=30)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                assert "error" in response.json()

        no_server_error()


# --------------------------------------------------------------------------- joining a cluster
EXTERNAL_HEAD = """
import sys, ray
ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=1, include_dashboard=False, object_store_memory=100 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
"""


def test_the_service_joins_an_external_cluster_with_token_auth(tmp_path):
    """A head started by plain ray.init (token auth on by default, token in ~/.ray/auth_token); RAY_ADDRESS=it evo serve."""
    from evo.service.processes import terminate_group

    user_home = tmp_path / "user"  # Ray writes its token under ~: a private HOME keeps the real one untouched
    user_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env.update(HOME=str(user_home), PYTHONPATH=str(ROOT), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    head = subprocess.Popen(
        [sys.executable, "-c", EXTERNAL_HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    service = None
    try:
        assert head.stdout is not None
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        assert (user_home / ".ray" / "auth_token").is_file()  # the cluster uses token authentication
        service = ServiceProcess(tmp_path / "home", ["--max-concurrent", "1"], env={"RAY_ADDRESS": address, "HOME": str(user_home)})
        service.start()
        assert any(f"Ray at {address}" in line for line in service.lines)
        with service.client() as client:
            run = client.wait(client.submit(ROOT / "configs" / "xor.toml")["id"], timeout=120)
        assert run["status"] == "succeeded", run
        assert run["summary"]["evaluator"]["type"] == "ray"
        assert any("auth mode token" in line for line in service.lines)
    finally:
        if service is not None:
            service.cleanup()
        terminate_group(head.pid, grace_seconds=15)


# --------------------------------------------------------------------------- a busy database
@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A second service whose database gives up on a lock after 0.5 s (EVO_DB_BUSY_TIMEOUT) and whose workers time out after 8 s."""
    proc = ServiceProcess(
        tmp_path_factory.mktemp("evo-impatient"),
        ["--max-concurrent", "1", "--ray-cpus", "1", "--ray-object-store-mb", "100", "--worker-timeout", "8"],
        env={"EVO_DB_BUSY_TIMEOUT": "0.5"},
    )
    try:
        proc.start()
        yield proc
    finally:
        proc.cleanup()


def test_a_locked_database_gets_503_and_a_running_run_waits_instead_of_failing(impatient, tmp_path):
    service, auth = impatient, {"Authorization": f"Bearer {impatient.token}"}
    config = xor_config("locked", 300)
    with service.client() as client:
        run_id = client.submit(config)["id"]
        wait_for(lambda: client.get(run_id)["generation"] >= 2, what="the run under way")
        connection = sqlite3.connect(service.home / "evo.db", isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")  # what a long transaction of another process does to every writer
        try:
            response = httpx.post(f"{service.url}/api/runs", json={"config": xor_config("x", 5)}, headers=auth, timeout=30)
            time.sleep(2.0)  # the worker's generation writes are refused meanwhile
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        assert response.status_code == 503 and response.json() == {"error": "database busy, retry"}
        assert response.headers["retry-after"] == "5"
        run = client.wait(run_id)
        assert run["status"] == "succeeded", run
        assert without_time(client.metrics(run_id)) == reference(config, tmp_path)[0]
    assert "database busy writing generation" in (service.home / "logs" / f"{run_id}.log").read_text()
    assert run_count(service) == 1


def test_a_hung_worker_is_killed_and_its_run_failed_resumable(impatient):
    with impatient.client() as client:
        run_id = client.submit(xor_config("hung", 100000, checkpoint_every=5))["id"]
        wait_for(lambda: client.get(run_id)["generation"] >= 6, what="a checkpoint")
        pid = _db_run(impatient, run_id)["worker_pid"]
        os.kill(pid, signal.SIGSTOP)  # alive but silent: no generation, no heartbeat
        stopped_at = time.monotonic()
        run = client.wait(run_id, timeout=60)
        assert run["status"] == "failed" and "sent no heartbeat" in run["error"] and "--worker-timeout 8 s" in run["error"]
        assert time.monotonic() - stopped_at >= 6  # not before the timeout (8 s after the last heartbeat)
        wait_for(lambda: not process_alive(pid), timeout=10, what="the hung worker killed")
        assert client.resume(run_id, generations=100000 + 1)["status"] == "queued"  # its checkpoint is there to continue from
        wait_for(lambda: client.get(run_id)["generation"] > run["generation"], what="the resumed run going on")
        client.cancel(run_id)


def test_only_this_homes_worker_for_this_run_is_taken_for_ours(tmp_path):
    """A pid read back from the database is re-attached or killed only if its command line names the worker, the home and the run."""
    from evo.service.scheduler import worker_is_ours, worker_pid_path

    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    sleeper = "import time; time.sleep(60)"

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", sleeper, "evo.service.worker", *args])

    named = start("--home", str(home), "--run-id", "r1")
    standby = start("--home", str(home))
    other = subprocess.Popen([sys.executable, "-c", sleeper, "--home", str(home), "--run-id", "r1"])
    try:
        wait_for(lambda: all(command_line(p.pid) and len(command_line(p.pid) or []) > 3 for p in (named, standby, other)), timeout=10)
        assert worker_is_ours(named.pid, home, "r1")
        assert not worker_is_ours(named.pid, home, "r2")  # another run's worker
        assert not worker_is_ours(named.pid, tmp_path / "elsewhere", "r1")  # another service's worker
        assert not worker_is_ours(other.pid, home, "r1")  # not a worker at all (a reused pid)
        assert not worker_is_ours(standby.pid, home, "r1")  # a standby never handed r1
        worker_pid_path(home, "r1").write_text(f"{standby.pid}\n")
        assert worker_is_ours(standby.pid, home, "r1") and not worker_is_ours(standby.pid, home, "r2")
    finally:
        for process in (named, standby, other):
            process.kill()
            process.wait(10)
    assert not worker_is_ours(named.pid, home, "r1")


# --------------------------------------------------------------------------- the client's own guards
def test_fetch_refuses_server_paths_that_would_write_outside_the_folder(tmp_path):
    """A hostile or broken server (a stand-in answering over httpx's transport: the real one never sends such paths)."""
    listed: list[str] = []

    def hostile(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files"):
            return httpx.Response(
                200, json={"run_id": "r", "files": [{"path": p, "size": 1, "modified": "2026-01-01T00:00:00Z"} for p in listed]}
            )
        return httpx.Response(200, content=b"x")

    client = Client(server="http://evo.test", token="t")
    client.http = httpx.Client(base_url="http://evo.test", transport=httpx.MockTransport(hostile))
    to = tmp_path / "to"
    (to / "r").mkdir(parents=True)
    (to / "r" / "link").symlink_to(tmp_path)
    for path in ("../../escape", "/tmp/escape", "a/../../escape", "link/escape", "a\\..\\escape"):
        listed[:] = ["ok.txt", path]
        with pytest.raises(ServiceError, match="refusing to fetch"):
            client.fetch("r", to)
        assert not (to / "r" / "ok.txt").exists() and not (tmp_path / "escape").exists()  # nothing written
    listed[:] = ["ok.txt"]
    with pytest.raises(ServiceError, match="its id would write outside"):
        client.fetch("..", to)
    assert (client.fetch("r", to) / "ok.txt").read_bytes() == b"x"


def test_a_closed_pipe_ends_the_command_line_client_quietly(service):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVO_SERVER": service.url, "EVO_TOKEN": service.token}
    process = subprocess.Popen(
        [sys.executable, "-m", "evo.cli", "runs", "--service"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    process.stdout.close()  # `evo runs | head -0`: the reader is gone before anything is written
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert process.returncode == 141
