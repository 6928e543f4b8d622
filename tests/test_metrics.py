"""GET /metrics in one process (no PROMETHEUS_MULTIPROC_DIR): what is counted and when.
The multi-worker case is tested against a live gunicorn in test_clients_e2e.py."""
from __future__ import annotations

from models.model_file import FORMAT_VERSION
from service.app import create_app
from tests.prometheus_text import metric


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_requests_words_and_model_info_are_counted(service_config):
    client = create_app(service_config).test_client()  # an app of its own: its own registry
    for seed in range(3):
        client.post("/generate", json={"parameters": {"seed": seed, "max_new_tokens": 5, "min_words": 5}})
    client.post("/generate", json={"parameters": {"top_k": 0}})
    client.get("/nope")
    text = scrape(client)
    assert metric(text, "rnnlm_requests_total", route="/generate", method="POST", status="200") == 3
    assert metric(text, "rnnlm_requests_total", route="/generate", method="POST", status="422") == 1
    assert metric(text, "rnnlm_requests_total", route="unmatched", method="GET", status="404") == 1
    assert metric(text, "rnnlm_generated_words_total", route="/generate") == 15
    assert metric(text, "rnnlm_generation_words_per_second_count", route="/generate") == 3
    assert metric(text, "rnnlm_request_duration_seconds_count", route="/generate") == 4
    assert metric(text, "rnnlm_model_info", model_id="rnnlm", model_file="tiny.joblib", vocabulary_size="35",
                  hidden_size="8", parameter_count="667", corpus="tiny-test-corpus", format_version=str(FORMAT_VERSION)) == 1


def test_a_stream_is_timed_and_counted_when_it_ends(service_config):
    client = create_app(service_config).test_client()
    stream = client.post("/generate_stream", json={"parameters": {"max_new_tokens": 4, "min_words": 4}},
                         buffered=False)
    text = scrape(client)
    assert metric(text, "rnnlm_requests_in_flight") == 1
    assert metric(text, "rnnlm_request_duration_seconds_count", route="/generate_stream") == 0
    stream.get_data()
    stream.close()
    text = scrape(client)
    assert metric(text, "rnnlm_requests_in_flight") == 0
    assert metric(text, "rnnlm_request_duration_seconds_count", route="/generate_stream") == 1
    assert metric(text, "rnnlm_generated_words_total", route="/generate_stream") == 4


def test_invented_methods_are_counted_as_other(service_config):
    client = create_app(service_config).test_client()
    for index in range(50):
        client.open("/generate", method=f"INVENTED{index}")
    client.open("/health", method="PATCH")
    text = scrape(client)
    assert metric(text, "rnnlm_requests_total", route="unmatched", method="other", status="405") == 50
    assert metric(text, "rnnlm_requests_total", route="unmatched", method="PATCH", status="405") == 1
    assert "INVENTED" not in text
