"""What the image relies on at run time, checked without building it: the HEALTHCHECK follows
RNNLM_BIND, and the container's command (service/deploy/start.sh: nginx in front of gunicorn) runs on a
read-only root filesystem with a tmpfs on /tmp (``docker run --read-only --tmpfs /tmp``), here
made with a private mount namespace (``unshare``, which needs root)."""
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

from tests.gunicorn_server import REPO_ROOT, Server, free_port, server_env, start_server, worker_pids
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


def read_only_command(model_dir: Path) -> list[str]:
    """service/deploy/start.sh (nginx in front of gunicorn, the container's command) in a mount namespace
    where / is read-only, a fresh tmpfs is /tmp and the model's folder is seen read-only at
    /mnt/model. The checkout, the Python environment or the model may themselves live under /tmp
    (a CI clone there, pytest's tmp_path): the old /tmp stays reachable at /mnt/outside-tmp, and
    whatever the command needs from it is bound back to its own path, read-only, on the new tmpfs."""
    steps = ["mount -t tmpfs -o size=1m tmpfs /mnt",  # a staging area of the namespace's own
             "mkdir /mnt/model /mnt/outside-tmp",
             "mount --bind /tmp /mnt/outside-tmp",
             f"mount --bind {shlex.quote(str(model_dir))} /mnt/model && mount -o remount,bind,ro /mnt/model",
             "mount -o remount,bind,ro /",
             "mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp"]
    for needed in dict.fromkeys([REPO_ROOT, Path(sys.prefix), Path(sys.base_prefix)]):
        target = shlex.quote(str(needed))
        if needed.is_relative_to("/tmp"):
            source = shlex.quote(str(Path("/mnt/outside-tmp") / needed.relative_to("/tmp")))
            steps.append(f"mkdir -p {target} && mount --bind {source} {target}")
        else:
            steps.append(f"mount --bind {target} {target}")
        steps.append(f"mount -o remount,bind,ro {target}")
    steps.append(f"cd {shlex.quote(str(REPO_ROOT))}")  # the read-only view, not the directory sh started in
    steps.append(f"PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH exec service/deploy/start.sh")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(steps)]


def mounts_of(pid: int) -> dict[str, tuple[str, str]]:
    """Mount point -> (options, file system type), as process ``pid`` sees them."""
    seen = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        fields = fields.split()
        seen[fields[4]] = (fields[5], rest.split()[0])
    return seen


def connected_sockets(pids: set[int], path: str) -> set[int]:
    """The inodes of the connected unix sockets named ``path`` that these processes hold: the
    server ends of the connections made to a socket listening there."""
    held = {int(link[8:-1]) for pid in pids for fd in Path(f"/proc/{pid}/fd").iterdir()
            if (link := os.readlink(fd)).startswith("socket:[")}
    connected = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[5] == "03" and fields[7] == path:  # 03: SS_CONNECTED
            connected.add(int(fields[6]))
    return connected & held


def test_the_container_command_runs_on_a_read_only_root_with_a_tmpfs(tiny_model_path):
    problem = private_mounts_refused()
    if problem is None and (shutil.which("nginx") is None or not Path("/mnt").is_dir()):
        problem = "needs nginx (apt-get install nginx-light) and a /mnt to stage mounts on"
    if problem is not None and os.environ.get("CI"):
        pytest.fail(f"{problem} (CI is set: .ci/run installs nginx and runs as root)")
    if problem is not None:
        pytest.skip(problem)
    port, metrics_port = free_port(), free_port()
    env = server_env(RNNLM_MODEL=f"/mnt/model/{Path(tiny_model_path).name}", RNNLM_BIND=f"127.0.0.1:{port}",
                     RNNLM_METRICS_BIND=f"127.0.0.1:{metrics_port}", RNNLM_WORKERS="2")
    server = Server(env, f"http://127.0.0.1:{port}", command=read_only_command(Path(tiny_model_path).parent))
    try:
        server.wait_until_healthy()
        started = len(server.stderr)  # before, nginx logged the requests it could not pass on yet
        mounts = mounts_of(server.process.pid)  # as the container's command sees them
        assert mounts["/"][0].startswith("ro") and mounts[str(REPO_ROOT)][0].startswith("ro")
        assert mounts["/tmp"][1] == "tmpfs"
        generated = requests.post(f"{server.base_url}/generate", json={"parameters": {"max_new_tokens": 3, "seed": 1}},
                                  timeout=10)
        assert generated.status_code == 200
        assert requests.post(f"{server.base_url}/score", json={"inputs": "the cat."}, timeout=10).status_code == 200
        (gunicorn,) = [pid for pid in worker_pids(server.process.pid)
                       if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        # nginx keeps its connection to gunicorn for the next request instead of opening one each time
        upstream = [connected_sockets(worker_pids(gunicorn), "/tmp/rnnlm-gunicorn.sock")]
        for _ in range(3):
            assert requests.get(f"{server.base_url}/health", timeout=10).status_code == 200
            upstream.append(connected_sockets(worker_pids(gunicorn), "/tmp/rnnlm-gunicorn.sock"))
        assert len(upstream[0]) == 1 and all(seen == upstream[0] for seen in upstream), upstream
        os.kill(gunicorn, signal.SIGHUP)  # a reload reads the model and forks new workers
        time.sleep(2)
        server.wait_until_healthy()
        assert requests.get(f"{server.base_url}/metrics", timeout=10).status_code == 404  # not through nginx
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert metric(text, "rnnlm_requests_total", route="/generate", method="POST", status="200") == 1
        assert healthcheck(RNNLM_BIND=f"0.0.0.0:{port}").returncode == 0  # as the image's HEALTHCHECK asks
        inside = Path(f"/proc/{server.process.pid}/root/tmp")
        assert any(path.name.startswith("rnnlm-metrics-") for path in inside.iterdir())
    finally:
        assert server.stop() in (0, 128 + signal.SIGTERM)  # start.sh ends with the signal it passed on
    whole, since_healthy = "".join(server.stderr), "".join(server.stderr[started:])
    assert "Read-only file system" not in whole and "Traceback" not in whole and "[emerg]" not in whole, whole
    for trouble in ("[ERROR]", "[alert]", "[crit]", "[error]"):
        assert trouble not in since_healthy, since_healthy
