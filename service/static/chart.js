// The training chart: validation perplexity over training words, halvings of the learning rate
// marked, drawn as SVG elements (no library; labels go in through textContent).

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 300;
const MARGIN = { left: 60, right: 18, top: 22, bottom: 46 };

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** About ``count`` round numbers (1, 2 or 5 times a power of ten apart) covering [low, high]. */
export function niceTicks(low, high, count) {
  const span = high - low || Math.abs(high) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let tick = Math.floor(low / step) * step; ; tick += step) {
    ticks.push(Number(tick.toPrecision(12)));
    if (tick >= high) return ticks;
  }
}

export function formatWords(words) {
  if (words >= 1e6) return `${Number((words / 1e6).toPrecision(3))}M`;
  if (words >= 1e3) return `${Number((words / 1e3).toPrecision(3))}k`;
  return String(words);
}

function scale(domainLow, domainHigh, rangeLow, rangeHigh) {
  const span = domainHigh - domainLow || 1;
  return (value) => rangeLow + ((value - domainLow) / span) * (rangeHigh - rangeLow);
}

function drawAxes(svg, xTicks, yTicks, x, y) {
  const axes = svgElement("g", { class: "chart-axis" });
  const bottom = HEIGHT - MARGIN.bottom;
  for (const tick of yTicks) {
    axes.append(svgElement("line", { class: "chart-grid", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick) }));
    axes.append(svgElement("text", { x: MARGIN.left - 6, y: y(tick) + 4, "text-anchor": "end" }, String(tick)));
  }
  for (const tick of xTicks) {
    axes.append(svgElement("line", { x1: x(tick), x2: x(tick), y1: bottom, y2: bottom + 5 }));
    axes.append(svgElement("text", { x: x(tick), y: bottom + 18, "text-anchor": "middle" }, formatWords(tick)));
  }
  axes.append(svgElement("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: bottom, y2: bottom }));
  axes.append(svgElement("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom }));
  axes.append(svgElement("text", { class: "chart-label", x: (MARGIN.left + WIDTH - MARGIN.right) / 2, y: HEIGHT - 6,
    "text-anchor": "middle" }, "training words"));
  axes.append(svgElement("text", { class: "chart-label", x: 14, y: (MARGIN.top + bottom) / 2, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(MARGIN.top + bottom) / 2})` }, "validation perplexity"));
  svg.append(axes);
}

/** Draw ``history`` (the /info history) into ``svg``; evaluations without a finite perplexity are left out. */
export function drawHistory(svg, history) {
  svg.replaceChildren();
  const points = history.filter((e) => Number.isFinite(e.val_perplexity) && Number.isFinite(e.train_words));
  if (!points.length) {
    svg.append(svgElement("text", { class: "chart-empty", x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle" },
      "This model file holds no training history"));
    return;
  }
  const perplexities = points.map((e) => e.val_perplexity);
  const yTicks = niceTicks(Math.min(...perplexities), Math.max(...perplexities), 5);
  const xTicks = niceTicks(0, Math.max(...points.map((e) => e.train_words)), 5);
  const x = scale(0, xTicks[xTicks.length - 1], MARGIN.left, WIDTH - MARGIN.right);
  const y = scale(yTicks[0], yTicks[yTicks.length - 1], HEIGHT - MARGIN.bottom, MARGIN.top);
  drawAxes(svg, xTicks, yTicks, x, y);

  for (const evaluation of points.filter((e) => e.halved)) {
    const at = x(evaluation.train_words);
    svg.append(svgElement("line", { class: "chart-halving", x1: at, x2: at, y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }));
    svg.append(svgElement("text", { class: "chart-halving-label", x: at, y: MARGIN.top - 6, "text-anchor": "middle" }, "½"));
  }
  const line = points.map((e) => `${x(e.train_words).toFixed(1)},${y(e.val_perplexity).toFixed(1)}`).join(" ");
  svg.append(svgElement("polyline", { class: "chart-line", points: line }));
  for (const evaluation of points) {
    const point = svgElement("circle", {
      class: evaluation.halved ? "chart-point halved" : "chart-point",
      cx: x(evaluation.train_words), cy: y(evaluation.val_perplexity), r: 4,
      "data-train-words": evaluation.train_words, "data-val-perplexity": evaluation.val_perplexity,
    });
    const halved = evaluation.halved ? "; learning rate halved" : "";
    point.append(svgElement("title", {},
      `${evaluation.train_words.toLocaleString("en")} words: perplexity ${evaluation.val_perplexity.toFixed(2)}${halved}`));
    svg.append(point);
  }
}
