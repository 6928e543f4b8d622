"""What the image relies on at run time, checked without building it: the HEALTHCHECK follows
RNNLM_BIND, and the service runs on a read-only root filesystem with a fresh tmpfs for its
temporary files (``docker run --read-only --tmpfs /tmp``), here made with a private mount
namespace (``unshare``, which needs root)."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.gunicorn_server import REPO_ROOT, Server, free_port, gunicorn_command, server_env, start_server
from tests.prometheus_text import metric


def healthcheck(**settings: str) -> subprocess.CompletedProcess:
    env = server_env(**settings)
    return subprocess.run([sys.executable, "-m", "service.healthcheck"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_the_healthcheck_follows_rnnlm_bind(tiny_model_path, tmp_path):
    server = start_server(tiny_model_path, workers=1)
    try:
        port = server.base_url.rsplit(":", 1)[1]
        assert healthcheck(RNNLM_BIND=f"127.0.0.1:{port}").returncode == 0
        assert healthcheck(RNNLM_BIND=f"0.0.0.0:{port}").returncode == 0  # a wildcard bind: ask this machine
    finally:
        server.stop()
    down = healthcheck(RNNLM_BIND=f"127.0.0.1:{port}")
    assert down.returncode == 1 and down.stderr.startswith(f"healthcheck: 127.0.0.1:{port}: ")
    assert len(down.stderr.splitlines()) == 1

    socket_path = tmp_path / "rnnlm.sock"
    env = server_env(RNNLM_MODEL=str(tiny_model_path), RNNLM_BIND=f"unix:{socket_path}", RNNLM_WORKERS="1")
    unix_server = Server(env, "unused")
    try:
        deadline = time.monotonic() + 30
        while healthcheck(RNNLM_BIND=f"unix:{socket_path}").returncode != 0:
            assert time.monotonic() < deadline and unix_server.process.poll() is None, "".join(unix_server.stderr)
            time.sleep(0.2)
    finally:
        unix_server.stop()


def private_mounts_refused() -> str | None:
    """Why a private mount namespace cannot be made here, or None."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) for a private mount namespace"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare --mount refused: {probe.stderr.strip()}"


def read_only_command(scratch: Path) -> list[str]:
    """gunicorn in a mount namespace where /, the repository and /tmp are read-only and the only
    writable place is a tmpfs at ``scratch``, given to the service as TMPDIR."""
    read_only = [REPO_ROOT, Path("/tmp"), Path(sys.prefix), Path(sys.base_prefix)]
    steps = ["mount -o remount,bind,ro /"]
    steps += [f"mount --bind {shlex.quote(str(d))} {shlex.quote(str(d))} && "
              f"mount -o remount,bind,ro {shlex.quote(str(d))}" for d in dict.fromkeys(read_only)]
    steps.append(f"mount -t tmpfs -o size=64m tmpfs {shlex.quote(str(scratch))}")
    steps.append(f"TMPDIR={shlex.quote(str(scratch))} exec {shlex.join(gunicorn_command())}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(steps)]


def test_the_service_runs_on_a_read_only_root_with_a_tmpfs(tiny_model_path, tmp_path):
    problem = private_mounts_refused()
    if problem is not None:
        pytest.skip(problem)
    scratch = tmp_path / "tmpfs"
    scratch.mkdir()
    port = free_port()
    env = server_env(RNNLM_MODEL=str(tiny_model_path), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_WORKERS="2")
    server = Server(env, f"http://127.0.0.1:{port}", command=read_only_command(scratch))
    try:
        server.wait_until_healthy()
        generated = requests.post(f"{server.base_url}/generate", json={"parameters": {"max_new_tokens": 3, "seed": 1}},
                                  timeout=10)
        assert generated.status_code == 200
        assert requests.post(f"{server.base_url}/score", json={"inputs": "the cat."}, timeout=10).status_code == 200
        server.process.send_signal(signal.SIGHUP)  # a reload reads the model and forks new workers
        time.sleep(2)
        server.wait_until_healthy()
        text = requests.get(f"{server.base_url}/metrics", timeout=10).text
        assert metric(text, "rnnlm_requests_total", route="/generate", method="POST", status="200") == 1
        assert healthcheck(RNNLM_BIND=f"127.0.0.1:{port}").returncode == 0
        # seen from inside gunicorn's namespace: / and the repository read-only, its files on the tmpfs
        mounts = {fields[4]: fields[5] for fields in (line.split() for line in
                  Path(f"/proc/{server.process.pid}/mountinfo").read_text().splitlines())}
        assert mounts["/"].startswith("ro") and mounts[str(REPO_ROOT)].startswith("ro")
        inside = Path(f"/proc/{server.process.pid}/root") / str(scratch).lstrip("/")
        assert any(path.name.startswith("rnnlm-metrics-") for path in inside.iterdir())
    finally:
        server.stop()
    log = "".join(server.stderr)
    assert "Read-only file system" not in log and "Traceback" not in log and "ERROR" not in log, log
    assert not any(scratch.iterdir())  # the tmpfs was the service's, and is gone with its namespace
