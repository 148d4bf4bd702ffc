// Charts of the feedback log and the drift checks, drawn as plain SVG (no chart library, works offline).
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function barChart(container, groups, series, options) {
  // groups: [{label, values: {seriesName: number}}]; series: [{name, colour}]
  container.replaceChildren();
  if (!groups.length) {
    container.textContent = "No data yet.";
    return;
  }
  const width = 640, height = 220, left = 40, bottom = 40, top = 10;
  const max = options.max || Math.max(1, ...groups.flatMap((g) => series.map((s) => g.values[s.name] || 0)));
  const chart = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": options.title });
  const plotWidth = width - left - 10, plotHeight = height - top - bottom;
  const slot = plotWidth / groups.length, barWidth = Math.max(2, (slot * 0.8) / series.length);
  for (const tick of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - tick);
    chart.appendChild(svgElement("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid" }));
    chart.appendChild(svgElement("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "tick" }, options.format(max * tick)));
  }
  groups.forEach((group, i) => {
    series.forEach((s, j) => {
      const value = group.values[s.name] || 0;
      const h = (plotHeight * value) / max;
      const x = left + i * slot + slot * 0.1 + j * barWidth;
      const bar = svgElement("rect", { x, y: top + plotHeight - h, width: barWidth, height: h, fill: s.colour });
      bar.appendChild(svgElement("title", {}, `${group.label}: ${s.name} ${options.format(value)}`));
      chart.appendChild(bar);
    });
    if (groups.length <= 24 || i % Math.ceil(groups.length / 12) === 0) {
      chart.appendChild(svgElement("text", { x: left + i * slot + slot / 2, y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, group.label));
    }
  });
  const legend = svgElement("g", {});
  series.forEach((s, j) => {
    legend.appendChild(svgElement("rect", { x: left + j * 120, y: height - 16, width: 10, height: 10, fill: s.colour }));
    legend.appendChild(svgElement("text", { x: left + j * 120 + 14, y: height - 7, class: "tick" }, s.name));
  });
  chart.appendChild(legend);
  if (options.threshold !== undefined) {
    const y = top + plotHeight * (1 - options.threshold / max);
    const line = svgElement("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "threshold" });
    line.appendChild(svgElement("title", {}, `threshold ${options.threshold}`));
    chart.appendChild(line);
  }
  container.appendChild(chart);
}

function timeLabel(epochSeconds, bucketSeconds) {
  const date = new Date(epochSeconds * 1000);
  return bucketSeconds >= 86400 ? date.toLocaleDateString() : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function percent(value) {
  return `${(100 * value).toFixed(0)}%`;
}

function renderVersions(versions) {
  const body = document.querySelector("#versions-table tbody");
  body.replaceChildren();
  for (const v of versions) {
    const row = body.insertRow();
    const answered = v.accuracy === null ? "–" : `${percent(v.accuracy)} (${v.feedback})`;
    const sampled = v.sampled_accuracy === null
      ? `– (${v.sampled} drawn, none reviewed)`
      : `${percent(v.sampled_accuracy)} [${percent(v.sampled_accuracy_interval[0])}–${percent(v.sampled_accuracy_interval[1])}] (${v.sampled_reviewed})`;
    for (const cell of [`v${v.model_version}`, v.predictions, answered, sampled]) row.insertCell().textContent = cell;
  }
}

function renderDrift(data) {
  const threshold = data.settings.alpha;
  const checks = data.checks;
  const latest = checks.length ? checks[checks.length - 1] : null;
  let status = data.status;
  if (latest) {
    const when = new Date(latest.checked_at * 1000).toLocaleString();
    status = `Newest check (${when}, version ${latest.model_version}, ${latest.n_window} predictions): ` +
      `p = ${latest.p_value.toFixed(3)}, ${latest.drift ? "DRIFT" : "no drift"} at ${threshold}` +
      (data.persistent ? `; drift in the last ${data.settings.persist_checks} checks.` : ".");
  }
  const box = document.getElementById("drift-status");
  box.textContent = status;
  box.className = latest && latest.drift ? "mb-2 text-danger fw-semibold" : "mb-2";
  barChart(
    document.getElementById("drift-chart"),
    checks.map((c) => ({ label: new Date(c.checked_at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), values: { "−log10 p": -Math.log10(c.p_value) } })),
    [{ name: "−log10 p", colour: "#fd7e14" }],
    // On a log scale: the smallest p-value a check can give is 1/(permutations + 1).
    { title: "Drift evidence per check", max: Math.log10(latest ? latest.report.permutations + 1 : 1000), format: (v) => v.toFixed(1), threshold: -Math.log10(threshold) }
  );
  if (!latest) {
    document.getElementById("classes-chart").textContent = "No check yet.";
    document.getElementById("confidence-chart").textContent = "No check yet.";
    return;
  }
  const classes = latest.report.classes, total = latest.n_window;
  barChart(
    document.getElementById("classes-chart"),
    window.FSDL.classes.map((c) => ({ label: c, values: { window: classes.counts[c] / total, training: classes.prior[c] } })),
    [{ name: "window", colour: "#0d6efd" }, { name: "training", colour: "#adb5bd" }],
    { title: "Predicted classes against the training prior", max: 1, format: percent }
  );
  const confidence = latest.report.confidence;
  const referenceTotal = Math.max(1, confidence.reference_histogram.reduce((a, b) => a + b, 0));
  barChart(
    document.getElementById("confidence-chart"),
    confidence.histogram.map((n, i) => ({ label: (i / confidence.histogram.length).toFixed(1), values: { window: n / total, "test split": confidence.reference_histogram[i] / referenceTotal } })),
    [{ name: "window", colour: "#0d6efd" }, { name: "test split", colour: "#adb5bd" }],
    { title: "Confidence against the test split", max: 1, format: percent }
  );
}

function renderCorrections(corrections) {
  const table = document.getElementById("corrections-table");
  table.replaceChildren();
  const classes = window.FSDL.classes;
  const counts = {};
  for (const c of corrections) counts[`${c.predicted}>${c.corrected}`] = c.count;
  const max = Math.max(1, ...corrections.map((c) => c.count));
  const head = table.createTHead().insertRow();
  head.insertCell().textContent = "";
  for (const name of classes) head.insertCell().textContent = name;
  const body = table.createTBody();
  for (const predicted of classes) {
    const row = body.insertRow();
    row.insertCell().textContent = predicted;
    for (const corrected of classes) {
      const cell = row.insertCell();
      const count = counts[`${predicted}>${corrected}`] || 0;
      cell.textContent = count || "";
      if (count) cell.style.backgroundColor = `rgba(220, 53, 69, ${0.15 + (0.6 * count) / max})`;
    }
  }
}

function age(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} seconds`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86400)} days`;
}

function renderQueue(queue) {
  const waiting =
    queue.pending === 0
      ? "Nothing waits for review."
      : `${queue.pending} answer${queue.pending === 1 ? "" : "s"} waiting for review; the oldest for ${age(queue.oldest_age_seconds)}.`;
  const days = queue.limits.max_age_seconds / 86400;
  document.getElementById("review-queue").textContent = waiting;
  document.getElementById("review-expired").textContent =
    `Expired unreviewed, with their uploads: ${queue.expired.age} after ${days} days, ` +
    `${queue.expired.cap} past the queue's most of ${queue.limits.max_pending}.`;
}

async function refresh() {
  const bucket = document.getElementById("bucket").value;
  const box = document.getElementById("message");
  try {
    const response = await fetch(`${window.FSDL.statsUrl}?bucket_seconds=${bucket}`);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error);
    box.className = "alert d-none";
    barChart(
      document.getElementById("timeline-chart"),
      data.timeline.map((t) => ({ label: timeLabel(t.start, data.bucket_seconds), values: { predictions: t.predictions, feedback: t.feedback } })),
      [{ name: "predictions", colour: "#0d6efd" }, { name: "feedback", colour: "#198754" }],
      { title: "Predictions and feedback over time", format: (v) => Math.round(v) }
    );
    barChart(
      document.getElementById("accuracy-chart"),
      data.versions.filter((v) => v.accuracy !== null).map((v) => ({ label: `v${v.model_version}`, values: { accuracy: v.accuracy } })),
      [{ name: "accuracy", colour: "#6f42c1" }],
      { title: "Live accuracy per model version", max: 1, format: (v) => `${Math.round(100 * v)}%` }
    );
    renderQueue(data.review_queue);
    const drift = await fetch(window.FSDL.driftUrl);
    if (drift.ok) renderDrift(await drift.json());
    renderVersions(data.versions);
    renderCorrections(data.corrections);
  } catch (error) {
    box.className = "alert alert-danger";
    box.textContent = `Could not load the statistics: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("bucket").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 30000);
});
