// rnnlm playground: streams POST /generate_stream (with each word's log-probability and the
// likeliest words at its step), scores pasted text with POST /score, and charts the training
// history from GET /info. No libraries, nothing fetched from elsewhere, text set as text.
import { drawHistory, formatWords } from "/static/chart.js";
import { appendToken, explainWords, fillLegend, perplexityOf, tokenElement } from "/static/surprise.js";

const $ = (id) => document.getElementById(id);

// the controls that become TGI parameters; an empty box means the server's default
const NUMBER_PARAMETERS = ["temperature", "top_k", "top_p", "num_sentences", "seed"];

// the largest top_n_tokens and /score text the service takes, read from its OpenAPI document
const api = fetch("/openapi.json")
  .then((response) => response.json())
  .then((doc) => {
    const schemas = doc.components.schemas;
    $("score-text").maxLength = schemas.ScoreRequest.properties.inputs.maxLength;
    return { topN: schemas.GenerateParameters.properties.top_n_tokens.maximum };
  })
  .catch(() => ({ topN: 0 }));

async function requestBody() {
  // TGI is greedy unless asked to sample; the playground samples (its seed box then matters)
  const parameters = { details: true, do_sample: true, top_n_tokens: (await api).topN };
  for (const name of NUMBER_PARAMETERS) {
    const box = $(name);
    if (box.value.trim() !== "") parameters[name] = Number(box.value);
  }
  return { inputs: $("prompt").value, parameters };
}

function showFacts(info) {
  const facts = {
    model: info.model_id,
    "model file": info.model_file,
    cell: info.cell,
    vocabulary: info.vocabulary_size,
    "hidden size": info.hidden_size,
    parameters: info.parameter_count,
    "n-gram order": info.ngram_order ?? "none",
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
  if (info.limits) {
    $("num_sentences").max = info.limits.max_sentences;
    $("prompt").maxLength = info.limits.max_input_chars;
  }
}

function showHistory(info) {
  const history = info.history || [];
  drawHistory($("history-chart"), history);
  const rows = history.map((evaluation) => {
    const row = document.createElement("tr");
    const values = [
      Number.isFinite(evaluation.train_words) ? evaluation.train_words.toLocaleString("en") : "?",
      Number.isFinite(evaluation.val_perplexity) ? evaluation.val_perplexity.toFixed(2) : "not finite",
      evaluation.learning_rate ?? "?",
      evaluation.halved ? "yes" : "",
    ];
    for (const value of values) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  });
  $("history-table").tBodies[0].replaceChildren(...rows);
  const halvings = history.filter((e) => e.halved).length;
  const parts = [`${history.length} evaluations`, halvings
    ? `the learning rate halved ${halvings} time${halvings === 1 ? "" : "s"} (dashed lines, ½)`
    : "the learning rate never halved"];
  if (info.rnn_val_perplexity != null && info.val_perplexity != null) {
    parts.push(`the RNN's final ${info.rnn_val_perplexity.toFixed(1)} became ${info.val_perplexity.toFixed(1)} ` +
      `with the ${info.ngram_order}-gram model mixed in`);
  }
  if (info.train_words != null) parts.push(`${formatWords(info.train_words)} training words in all`);
  $("history-summary").textContent = history.length ? `${parts.join("; ")}.` : "";
}

async function loadInfo() {
  try {
    const info = await (await fetch("/info")).json();
    showFacts(info);
    showHistory(info);
  } catch (error) {
    $("model-info").textContent = "model information unavailable";
  }
}

function perplexityLine(label, perplexity, tokens) {
  return `${label}: perplexity ${perplexity.toFixed(2)} over ${tokens} tokens`;
}

// ------------------------------------------------------------------------------- generating
/** Follows one generation's events: words into the page, one perplexity per sentence. */
class GeneratedText {
  constructor(output) {
    this.output = output;
    this.sentence = [];
    this.all = [];
  }

  add(event) {
    const token = event.token;
    const details = { id: token.id, word: token.text, logprob: token.logprob, end: token.special,
      alternatives: event.top_tokens || [] };
    // the space before a word stays outside its shading
    const [, space, word] = /^(\s*)(.*)$/s.exec(token.special ? "" : token.text);
    if (space) this.output.append(space);
    appendToken(this.output, tokenElement(word, details));
    this.sentence.push(token.logprob);
    this.all.push(token.logprob);
    if (token.special) this.endSentence();
  }

  endSentence() {
    if (!this.sentence.length) return;
    const item = document.createElement("li");
    const perplexity = perplexityOf(this.sentence);
    const number = $("generated-sentences").children.length + 1;
    item.textContent = perplexityLine(`Sentence ${number}`, perplexity, this.sentence.length);
    item.dataset.perplexity = String(perplexity);
    $("generated-sentences").append(item);
    this.sentence = [];
  }

  finish(details, seconds) {
    this.endSentence();
    $("status").textContent = `${perplexityLine("Generated text", perplexityOf(this.all), this.all.length)}; ` +
      `${details.generated_tokens} tokens, finished by ${details.finish_reason}, seed ${details.seed}, ` +
      `${seconds.toFixed(2)} s. The prompt is not scored; sentence ends are tokens too.`;
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

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.error || `HTTP ${response.status}`);
  }
  return response;
}

/** Run one request of a panel: its button off, its words and messages cleared meanwhile; the
 * words' data-state says where it stands (working, done, failed). */
async function runPanel(panel, work) {
  panel.button.disabled = true;
  panel.popup.hide();
  panel.words.replaceChildren();
  panel.words.dataset.state = "working";
  for (const message of panel.messages) message.textContent = "";
  try {
    await work();
    panel.words.dataset.state = "done";
  } catch (error) {
    panel.error.textContent = error.message;
    panel.words.dataset.state = "failed";
  } finally {
    panel.button.disabled = false;
  }
}

async function generate(submit) {
  submit.preventDefault();
  await runPanel(panels.generated, async () => {
    const body = await requestBody();
    const prompt = document.createElement("span");
    prompt.className = "prompt";
    prompt.textContent = body.inputs;
    $("output").append(prompt);
    const text = new GeneratedText($("output"));
    const started = performance.now();
    const response = await postJson("/generate_stream", body);
    await readEvents(response, (event) => {
      if (event.error) throw new Error(event.error);
      text.add(event);
      if (event.details) text.finish(event.details, (performance.now() - started) / 1000);
    });
  });
}

// --------------------------------------------------------------------------------- scoring
// no space before these: the words come back one by one, punctuation split off
const CLOSING = /^[.,!?;:)\]}'"’”]/;

function showScores(scores) {
  const scored = $("scored");
  const sentences = $("score-sentences");
  scores.sentences.forEach((sentence, index) => {
    if (index > 0) scored.append(" ");
    sentence.words.forEach((word, position) => {
      if (position > 0 && !word.special && !CLOSING.test(word.word)) scored.append(" ");
      const details = { word: word.word, logprob: word.logprob, unknown: word.oov, end: word.special };
      appendToken(scored, tokenElement(word.special ? "" : word.word, details));
    });
    const item = document.createElement("li");
    item.textContent = sentence.perplexity === null ? `Sentence ${index + 1}: no words`
      : perplexityLine(`Sentence ${index + 1}`, sentence.perplexity, sentence.words.length);
    item.dataset.perplexity = String(sentence.perplexity);
    sentences.append(item);
  });
  const unknown = scores.oov_words.length ? `; not in the vocabulary: ${scores.oov_words.join(", ")}` : "";
  $("score-summary").textContent = scores.perplexity === null ? "No words to score."
    : `${perplexityLine("Text", scores.perplexity, scores.tokens)} (sentence ends included)${unknown}`;
}

async function score(submit) {
  submit.preventDefault();
  await runPanel(panels.scored, async () => {
    const response = await postJson("/score", { inputs: $("score-text").value });
    showScores(await response.json());
  });
}

function panel(button, words, messages, error) {
  return { button: $(button), words: $(words), popup: explainWords($(words), $("alternatives")),
    messages: [...messages, error].map($), error: $(error) };
}

const panels = {
  generated: panel("generate", "output", ["status", "generated-sentences"], "error"),
  scored: panel("score", "scored", ["score-summary", "score-sentences"], "score-error"),
};
for (const legend of document.querySelectorAll(".legend")) fillLegend(legend);
$("controls").addEventListener("submit", generate);
$("score-form").addEventListener("submit", score);
loadInfo();
