"""The client libraries people use, unchanged and at their default settings, against a real
gunicorn: openai (retries on), huggingface_hub's InferenceClient (text generation, streaming,
chat), LangChain's OpenAI and ChatOpenAI (langchain-openai) and HuggingFaceEndpoint
(langchain-huggingface). Each generates, streams, and gets a useful error for a bad request."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import requests
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, ValidationError
from langchain_huggingface import HuggingFaceEndpoint
from langchain_openai import ChatOpenAI, OpenAI

from service.app import create_app
from service.config import ServiceConfig
from tests.gunicorn_server import Server, serve_cleanly

MODEL = "rnnlm"
USER = [{"role": "user", "content": "The cat sat on"}]


@pytest.fixture(scope="module")
def server(tiny_model_path: Path) -> Iterator[Server]:
    yield from serve_cleanly(tiny_model_path)


def generate(server: Server, inputs: str, parameters: dict) -> str:
    return requests.post(f"{server.base_url}/generate", json={"inputs": inputs, "parameters": parameters},
                         timeout=10).json()["generated_text"]


# -------------------------------------------------------------------------------------- openai
def test_openai_with_its_default_retries(server):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    assert client.max_retries == 2  # the default, left on
    done = client.chat.completions.create(model=MODEL, messages=USER, seed=3, max_tokens=15)
    text = done.choices[0].message.content
    assert text and done.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, seed=3, max_tokens=15, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=USER, temperature=3)
    assert bad.value.body["param"] == "temperature" and "temperature must be" in bad.value.body["message"]


def test_openai_does_not_retry_a_timeout(tiny_model_path):
    """A 503 at the time limit carries x-should-retry: false, so the request runs once, not three times."""
    app = create_app(ServiceConfig(model_path=str(tiny_model_path), request_timeout_seconds=1e-6))
    calls = []

    def counting(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return app(environ, start_response)

    client = openai.OpenAI(base_url="http://rnnlm/v1", api_key="unused",
                           http_client=httpx.Client(transport=httpx.WSGITransport(app=counting)))
    with pytest.raises(openai.InternalServerError) as timeout:
        client.completions.create(model=MODEL, prompt="the cat", max_tokens=50)
    assert timeout.value.status_code == 503 and "time limit" in timeout.value.body["message"]
    assert calls == ["/v1/completions"]


# ----------------------------------------------------------------------------- huggingface_hub
def test_hub_defaults_are_tgis_greedy_choice(server):
    hub = InferenceClient(model=server.base_url)
    text = hub.text_generation("the cat", max_new_tokens=12)
    assert text == "the cat" + generate(server, "the cat", {"max_new_tokens": 12})
    assert text == hub.text_generation("the cat", max_new_tokens=12)  # greedy, as TGI is by default
    streamed = list(hub.text_generation("the cat", max_new_tokens=12, stream=True))
    assert "the cat" + "".join(streamed) == text
    scored = hub.text_generation("the cat", max_new_tokens=2, details=True, decoder_input_details=True)
    assert [t.text for t in scored.details.prefill] == ["the", "cat"]
    assert all(t.logprob < 0 for t in scored.details.prefill)


def test_hub_chat_completion(server):
    hub = InferenceClient(model=server.base_url)  # sends the model "dummy": not checked, as TGI's chat
    done = hub.chat_completion(USER, seed=5, max_tokens=15)
    text = done.choices[0].message.content
    assert text and done.choices[0].finish_reason in ("stop", "length")
    chunks = list(hub.chat_completion(USER, seed=5, max_tokens=15, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    with pytest.raises(HfHubHTTPError, match="temperature must be"):
        hub.chat_completion(USER, temperature=3)


# ------------------------------------------------------------------------------------ LangChain
def test_langchain_openai_completions(server):
    llm = OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", model=MODEL)  # max_tokens 256, logit_bias {}
    text = llm.invoke("the cat", seed=9)
    assert text == openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused").completions.create(
        model=MODEL, prompt="the cat", seed=9, max_tokens=256).choices[0].text
    assert "".join(llm.stream("the cat", seed=9)) == text
    batch = llm.batch(["the cat"] * 21)  # LangChain sends 20 prompts a request
    assert len(batch) == 21 and len(set(batch)) > 1  # without a seed, each prompt draws its own
    with pytest.raises(openai.BadRequestError, match="temperature must be"):
        OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", model=MODEL, temperature=3).invoke("x")


def test_langchain_chat_openai(server):
    chat = ChatOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", model=MODEL, seed=2)
    answer = chat.invoke("The cat sat on")
    assert answer.content and answer.usage_metadata["output_tokens"] > 0
    assert "".join(chunk.content for chunk in chat.stream("The cat sat on")) == answer.content
    with pytest.raises(openai.BadRequestError, match="temperature must be"):
        ChatOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", model=MODEL, temperature=3).invoke("x")


def test_langchain_huggingface_endpoint(server):
    llm = HuggingFaceEndpoint(endpoint_url=server.base_url, seed=4)  # typical_p 0.95, max_new_tokens 512, ...
    text = llm.invoke("the cat")
    sent = {name: value for name, value in llm._default_params.items() if value is not None and name != "stop"}
    assert text == generate(server, "the cat", sent) and text
    assert "".join(llm.stream("the cat")) == text
    with pytest.raises(ValidationError, match="parameters.repetition_penalty must be"):
        HuggingFaceEndpoint(endpoint_url=server.base_url, repetition_penalty=20.0).invoke("x")
