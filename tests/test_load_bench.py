"""bench/load.py's ``--tree``: each checkout's own server started in turn, loaded, named in the
output and stopped."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOAD = [sys.executable, str(ROOT / "bench" / "load.py")]


def test_each_tree_is_served_and_loaded_in_turn(tiny_model_path: Path) -> None:
    done = subprocess.run([*LOAD, "--tree", str(ROOT), "--tree", str(ROOT), "--model", str(tiny_model_path),
                           "--rate", "20", "--duration", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["server"] for row in rows] == [str(ROOT), str(ROOT)]
    assert [row["statuses"] for row in rows] == [{"200": 20}, {"200": 20}]


def test_a_tree_whose_server_cannot_start_stops_at_once(tmp_path: Path) -> None:
    done = subprocess.run([*LOAD, "--tree", str(ROOT), "--model", str(tmp_path / "missing.joblib"),
                           "--rate", "20", "--duration", "1"], capture_output=True, text=True, timeout=50, cwd=ROOT)
    assert done.returncode == 1
    assert "gunicorn exited" in done.stderr and "missing.joblib" in done.stderr


def test_tree_with_url_is_refused() -> None:
    done = subprocess.run([*LOAD, "--tree", str(ROOT), "--url", "http://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert "leave out --url" in done.stderr
