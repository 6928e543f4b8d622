// Words shaded by surprise, and the popup that shows a word's probability and the likeliest words
// at its step. Every piece of text goes in through textContent, never as HTML.

// Upper bounds of the surprise bands in bits (-log2 p); band i is CSS class s<i>, the last has no
// upper bound. The shading and the legend both come from this one list.
export const SURPRISE_BANDS = [2, 4, 6, 8, 10, 13];

export function bits(logprob) {
  return -logprob / Math.LN2;
}

export function band(logprob) {
  const surprise = bits(logprob);
  let index = 0;
  while (index < SURPRISE_BANDS.length && surprise >= SURPRISE_BANDS[index]) index += 1;
  return index;
}

export function formatBits(logprob) {
  return `${bits(logprob).toFixed(2)} bits`;
}

export function formatProbability(logprob) {
  const percent = 100 * Math.exp(logprob);
  return percent >= 0.1 ? `${percent.toFixed(1)}%` : "<0.1%";
}

export function perplexityOf(logprobs) {
  let total = 0;
  for (const logprob of logprobs) total += logprob;
  return Math.exp(-total / logprobs.length);
}

export function fillLegend(list) {
  list.replaceChildren();
  let from = 0;
  SURPRISE_BANDS.forEach((upTo, index) => {
    list.append(legendItem(index, from, upTo, index === 0 ? `< ${upTo} bits` : `${from}–${upTo}`));
    from = upTo;
  });
  list.append(legendItem(SURPRISE_BANDS.length, from, null, `≥ ${from} bits`));
}

function legendItem(index, from, upTo, label) {
  const item = document.createElement("li");
  item.className = `s${index}`;
  item.dataset.band = String(index);
  item.dataset.from = String(from);
  if (upTo !== null) item.dataset.upTo = String(upTo);
  item.textContent = label;
  return item;
}

// what the popup shows for each word element
const facts = new WeakMap();

/** A shaded, focusable word. ``details``: {word, logprob, unknown?, end?, alternatives?}. */
export function tokenElement(text, details) {
  const element = document.createElement("span");
  element.className = `token s${band(details.logprob)}`;
  if (details.unknown) element.classList.add("unknown");
  if (details.end) {
    element.classList.add("end");
    element.setAttribute("aria-label", "sentence end");
  }
  element.textContent = text;
  element.dataset.logprob = String(details.logprob);
  element.tabIndex = -1;
  facts.set(element, details);
  return element;
}

/** Append a word to a words container, keeping exactly one word in it reachable by Tab. */
export function appendToken(container, element) {
  if (!container.querySelector(".token[tabindex='0']")) element.tabIndex = 0;
  container.append(element);
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function shownWord(word, special) {
  return special ? "¶ sentence end" : word.trim();
}

function alternativesTable(details) {
  const table = document.createElement("table");
  const caption = document.createElement("caption");
  caption.textContent = "Likeliest words at this step";
  table.append(caption);
  const best = Math.exp(details.alternatives[0]?.logprob ?? 0);
  for (const alternative of details.alternatives) {
    const row = document.createElement("tr");
    row.className = "alternative";
    row.dataset.logprob = String(alternative.logprob);
    if (alternative.id === details.id) row.classList.add("chosen");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * Math.exp(alternative.logprob)) / best}%`; // CSSOM, allowed by the CSP
    const barCell = cell("", "bar-cell");
    barCell.append(bar);
    row.append(cell(shownWord(alternative.text, alternative.special), "word"),
      cell(formatProbability(alternative.logprob), "probability"), cell(formatBits(alternative.logprob), "bits"),
      barCell);
    table.append(row);
  }
  return table;
}

function fillPopup(popup, details) {
  const summary = document.createElement("p");
  summary.className = "chosen";
  const word = document.createElement("strong");
  word.className = "word";
  word.textContent = shownWord(details.word, details.end);
  const probability = document.createElement("span");
  probability.className = "probability";
  probability.textContent = formatProbability(details.logprob);
  const surprise = document.createElement("span");
  surprise.className = "bits";
  surprise.textContent = formatBits(details.logprob);
  summary.append(word, ": ", probability, ", ", surprise);
  popup.replaceChildren(summary);
  if (details.unknown) {
    const note = document.createElement("p");
    note.textContent = "Not in the vocabulary: scored as the unknown word";
    popup.append(note);
  }
  if (details.alternatives?.length) popup.append(alternativesTable(details));
}

function place(popup, target) {
  const word = target.getBoundingClientRect();
  const width = popup.offsetWidth;
  const left = Math.max(4, Math.min(word.left, document.documentElement.clientWidth - width - 4));
  popup.style.left = `${left + window.scrollX}px`;
  popup.style.top = `${word.bottom + window.scrollY + 6}px`;
}

/** Show the popup for the words of ``container`` on hover and on focus; arrow keys move between them. */
export function explainWords(container, popup) {
  let shownFor = null;
  const show = (target) => {
    fillPopup(popup, facts.get(target));
    popup.hidden = false;
    place(popup, target);
    target.setAttribute("aria-describedby", popup.id);
    shownFor = target;
  };
  const hide = () => {
    if (shownFor) shownFor.removeAttribute("aria-describedby");
    popup.hidden = true;
    shownFor = null;
  };
  const tokenOf = (event) => {
    const target = event.target.closest?.(".token");
    return target && container.contains(target) ? target : null;
  };
  container.addEventListener("mouseover", (event) => {
    const target = tokenOf(event);
    if (target) show(target);
  });
  container.addEventListener("mouseout", (event) => {
    if (tokenOf(event) && document.activeElement !== shownFor) hide();
  });
  container.addEventListener("focusin", (event) => {
    const target = tokenOf(event);
    if (!target) return;
    for (const other of container.querySelectorAll(".token[tabindex='0']")) other.tabIndex = -1;
    target.tabIndex = 0;
    show(target);
  });
  container.addEventListener("focusout", hide);
  window.addEventListener("resize", hide); // its place was worked out for the old layout
  container.addEventListener("keydown", (event) => {
    const target = tokenOf(event);
    if (!target) return;
    if (event.key === "Escape") {
      hide();
      return;
    }
    const tokens = [...container.querySelectorAll(".token")];
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next = null;
    if (event.key in moves) next = tokens[tokens.indexOf(target) + moves[event.key]];
    else if (event.key === "Home") next = tokens[0];
    else if (event.key === "End") next = tokens[tokens.length - 1];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });
  return { hide };
}
