"""The whole product in seconds: train.py on a toy corpus, then that file served by a real gunicorn."""
from __future__ import annotations

import json
import subprocess
import sys

import requests

from tests.gunicorn_server import REPO_ROOT, Server, free_port, server_env
from tests.toy_corpus import OBJECTS, SUBJECTS, VERBS, write_toy_corpus


def test_train_then_serve(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy.txt")
    model = tmp_path / "model.joblib"
    trained = subprocess.run(
        [sys.executable, "training/train.py", "--corpus", str(corpus), "--vocab-size", "60",
         "--hidden", "16", "--batch-size", "8", "--epochs", "6", "--eval-every", "1000",
         "--learning-rate", "2", "--out", str(model)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.splitlines()[-1])
    assert summary["val_perplexity"] < 8

    port = free_port()
    server = Server(server_env(RNNLM_MODEL=str(model), RNNLM_BIND=f"127.0.0.1:{port}", RNNLM_WORKERS="1"),
                    f"http://127.0.0.1:{port}")
    try:
        server.wait_until_healthy()
        info = requests.get(f"{server.base_url}/info", timeout=5).json()
        assert info["train_words"] == summary["train_words"]
        body = {"inputs": "the cat", "parameters": {"seed": 3, "num_sentences": 3, "details": True}}
        answer = requests.post(f"{server.base_url}/generate", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert len(result["sentences"]) == 3 and result["sentences"][0].startswith("The cat")
        # a trained model speaks the toy language: its words come from the templates
        known = {w for phrase in SUBJECTS + VERBS + OBJECTS for w in phrase.split()} | {"."}
        words = [t["text"].strip().lower() for t in result["details"]["tokens"] if not t["special"]]
        assert words and sum(w in known for w in words) / len(words) > 0.9
        again = requests.post(f"{server.base_url}/generate", json=body, timeout=10).json()
        assert again == result
    finally:
        assert server.stop() == 0, "".join(server.stderr)
