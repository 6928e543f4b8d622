// rnnlm playground: streams POST /generate_stream with fetch and a ReadableStream reader and
// shows each word as its Server-Sent Event arrives. No libraries, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);

// the controls that become TGI parameters; an empty box means the server's default
const NUMBER_PARAMETERS = ["temperature", "top_k", "top_p", "num_sentences", "seed"];

function requestBody() {
  const parameters = { details: true };
  for (const name of NUMBER_PARAMETERS) {
    const box = $(name);
    if (box.value.trim() !== "") parameters[name] = Number(box.value);
  }
  return { inputs: $("prompt").value, parameters };
}

function showInfo(info) {
  const facts = {
    model: info.model_id,
    "model file": info.model_file,
    vocabulary: info.vocabulary_size,
    "hidden size": info.hidden_size,
    parameters: info.parameter_count,
    corpus: info.corpus,
    "training words": info.train_words,
    "validation perplexity": info.val_perplexity === null ? null : Number(info.val_perplexity).toFixed(1),
    "trained at": info.trained_at,
  };
  const list = $("model-info");
  list.replaceChildren();
  for (const [name, value] of Object.entries(facts)) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value === null || value === undefined ? "unknown" : String(value);
    list.append(term, detail);
  }
  if (info.limits) $("num_sentences").max = info.limits.max_sentences;
}

async function loadInfo() {
  try {
    const response = await fetch("/info");
    showInfo(await response.json());
  } catch (error) {
    $("model-info").textContent = "model information unavailable";
  }
}

function appendText(className, text) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  $("output").append(span);
}

// one parsed event: a token to show, the last one's details, or an error
function handleEvent(event, started) {
  if (event.error) throw new Error(event.error);
  if (!event.token.special) appendText("word", event.token.text);
  if (event.details) {
    const seconds = (performance.now() - started) / 1000;
    const d = event.details;
    $("status").textContent =
      `${d.generated_tokens} tokens, finished by ${d.finish_reason}, seed ${d.seed}, ${seconds.toFixed(2)} s`;
  }
}

// split the byte stream into "data: ..." events (each ends with a blank line)
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) onEvent(JSON.parse(line.slice(5)));
      }
    }
  }
}

async function generate(submit) {
  submit.preventDefault();
  const button = $("generate");
  const output = $("output");
  button.disabled = true;
  output.replaceChildren();
  output.dataset.state = "streaming";
  $("status").textContent = "";
  $("error").textContent = "";
  const body = requestBody();
  appendText("prompt", body.inputs);
  const started = performance.now();
  try {
    const response = await fetch("/generate_stream", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const problem = await response.json();
      throw new Error(problem.error || `HTTP ${response.status}`);
    }
    await readEvents(response, (event) => handleEvent(event, started));
    output.dataset.state = "done";
  } catch (error) {
    $("error").textContent = error.message;
    output.dataset.state = "failed";
  } finally {
    button.disabled = false;
  }
}

$("controls").addEventListener("submit", generate);
loadInfo();
