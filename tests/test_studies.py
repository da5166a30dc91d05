"""Ask/tell studies over HTTP against the real `evo serve`: the numbers of `evo run`, clients that die, a service that restarts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from evo.client import Client, ServiceError
from tests.asktell_client import work
from tests.service_support import ROOT, ServiceProcess, assert_events_consistent, reference, wait_for, without_time, xor_config


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A service for the studies (they need no Ray, but the service starts its head as always)."""
    proc = ServiceProcess(tmp_path_factory.mktemp("evo-home"), ["--max-concurrent", "1", "--ray-cpus", "1", "--ray-object-store-mb", "100"])
    try:
        proc.start()
        yield proc
    finally:
        proc.cleanup()


def study_spec(config: dict, trial_timeout: float = 60.0) -> dict:
    """The study that matches a run config of XOR: same strategy, seed, generations and network; the 2-in, 1-out shape of XOR."""
    return {
        "name": config["name"],
        "seed": config["seed"],
        "generations": config["generations"],
        "strategy": config["strategy"],
        "network": config["network"],
        "inputs": 2,
        "outputs": 1,
        "output_activation": "sigmoid",
        "trial_timeout": trial_timeout,
    }


def spawn_client(service: ServiceProcess, study_id: str, client_id: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.asktell_client", service.url, service.token, study_id, client_id, *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"PYTHONPATH": str(ROOT)})


def test_one_client_gets_the_numbers_of_evo_run(service, tmp_path):
    config = xor_config("asktell1", 25)
    with service.client() as client:
        study = client.create_study(study_id="one-client", **study_spec(config))
        assert work(study, count=8) == 25 * 16
        run = study.get()
        rows, summary = reference(config, tmp_path)
        assert without_time(study.metrics()) == rows
        assert run["status"] == "succeeded" and run["kind"] == "study" and run["generation"] == 25
        assert run["summary"]["best_fitness"] == summary["best_fitness"]
        assert study.ask(4) == [] and study.done
        # it shows among the runs, with its files
        assert "one-client" in [r["id"] for r in client.runs()["runs"]]
        listed = httpx.get(f"{service.url}/api/studies", headers={"Authorization": f"Bearer {service.token}"}).json()
        assert "one-client" in [r["id"] for r in listed["runs"]] and {r["kind"] for r in listed["runs"]} == {"study"}
        assert {"summary.json", "metrics.csv", "best_genome.npz", "fitness.png", "checkpoint/state.json"} <= {
            f["path"] for f in client.files("one-client")
        }
    assert_events_consistent(service, "one-client")


def test_a_client_asking_again_gets_its_trials_back_and_bad_input_is_named(service):
    auth = {"Authorization": f"Bearer {service.token}"}
    with service.client() as client:
        spec = study_spec(xor_config("again", 3))
        study = client.create_study(study_id="again", client_id="a", **spec)
        first = study.ask(5)
        assert [t.id for t in client.study("again", "a").ask(5)] == [t.id for t in first]
        other = client.study("again", "b").ask(100)
        assert len(other) == 16 - 5 and not {t.id for t in other} & {t.id for t in first}
        assert client.study("again", "c").ask(1, wait=0.3) == []  # all handed out, none timed out
        again = client.create_study(study_id="again", **spec)  # idempotent
        assert again.id == "again"
        answer = study.tell(first + first[:1], [0.5] * 6)
        assert answer["accepted"] == 5 and answer["ignored"] == [f"{first[0].id}: already told"]
    for body, message in (
        ({**spec, "strategy": {"type": "cmaes", "population": 1}}, "population"),
        ({**spec, "dimension": 3}, "either inputs and outputs"),
        ({"strategy": {"type": "ga"}, "dimension": 3, "bounds": [1, -1]}, "bounds"),
        ({**spec, "study_id": "again", "seed": 9}, "different spec"),
    ):
        response = httpx.post(f"{service.url}/api/studies", json=body, headers=auth)
        assert response.status_code in (409, 422) and message in response.json()["error"], response.text
    assert httpx.post(f"{service.url}/api/studies/nope/ask", json={"client_id": "x"}, headers=auth).status_code == 404


def test_a_vector_study_clips_genomes_into_the_bounds(service):
    with service.client() as client:
        study = client.create_study(
            study_id="sphere", strategy={"type": "cmaes", "population": 8, "sigma": 3.0}, dimension=3, bounds=[-1, 2], generations=20
        )
        while not study.done:
            trials = study.ask(8)
            for trial in trials:
                assert trial.network is None and trial.genome.min() >= -1 and trial.genome.max() <= 2
            if trials:
                study.tell(trials, [-float(((t.genome - 1.5) ** 2).sum()) for t in trials])
        assert study.get()["summary"]["best_fitness"] > -0.05


def test_three_clients_one_killed_mid_generation_still_complete_with_the_same_numbers(service, tmp_path):
    config = xor_config("asktell3", 20)
    with service.client() as client:
        client.create_study(study_id="three", **study_spec(config, trial_timeout=1.0))
    doomed = spawn_client(service, "three", "doomed", "--count", "3", "--die-after-asks", "2")
    healthy = [spawn_client(service, "three", f"c{i}", "--count", "3") for i in range(2)]
    out, _ = doomed.communicate(timeout=120)
    assert doomed.returncode == -9 and "dying with three.g" in out
    held = out.split("dying with ", 1)[1].split()
    for process in healthy:
        text, _ = process.communicate(timeout=180)
        assert process.returncode == 0, text
    with service.client() as client:
        run = client.get("three")
        assert run["status"] == "succeeded"
        # The dead client's trials went to the others: every generation is complete, and the numbers are those of `evo run`.
        assert without_time(client.metrics("three")) == reference(config, tmp_path)[0]
    # It died holding the trials it was handed (up to 3: under load the healthy clients may have taken some first);
    # the study only completed because those were re-issued after trial_timeout.
    assert 1 <= len(held) <= 3


def test_a_study_survives_a_service_restart(service, tmp_path):
    config = xor_config("asktellrestart", 60)
    with service.client() as client:
        client.create_study(study_id="restart", **study_spec(config))
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_working() -> None:
        # A patient client: when the service is gone it reconnects (the new service has a new port) and asks again.
        while not done.is_set():
            try:
                with Client(service.url, service.token) as client:
                    work(client.study("restart", "patient"), count=16)
                done.set()
            except ServiceError:
                time.sleep(0.2)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                done.set()

    worker = threading.Thread(target=keep_working, daemon=True)
    worker.start()
    with service.client() as client:
        wait_for(lambda: client.get("restart")["generation"] >= 10, what="generation 10")
    service.kill()
    service.start()
    worker.join(timeout=180)
    assert not errors and done.is_set()
    with service.client() as client:
        run = client.get("restart")
        assert run["status"] == "succeeded" and run["generation"] == 60
        assert without_time(client.metrics("restart")) == reference(config, tmp_path)[0]
    assert_events_consistent(service, "restart")


def test_stop_refuses_asks_and_resume_continues(service, tmp_path):
    config = xor_config("asktellstop", 10)
    with service.client() as client:
        study = client.create_study(study_id="stopres", **study_spec(config))
        study.tell(*(lambda ts: (ts, [0.1] * len(ts)))(study.ask(16)))
        assert client.stop("stopres")["status"] == "stopped"
        assert study.ask(4) == [] and study.done
        with pytest.raises(ServiceError, match="resume it first"):
            study.tell(["stopres.g2.0"], [1.0])
        assert client.resume("stopres")["status"] == "running"
        study.done = False
        assert study.ask(4) and client.get("stopres")["generation"] == 1
