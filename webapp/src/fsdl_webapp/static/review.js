// The review queue: accept, reject or relabel answers one at a time (keyboard) or in bulk.
"use strict";

const review = { items: [], focus: 0 };

function percent(p) {
  return `${(100 * p).toFixed(0)}%`;
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// Agreement counts distinct clients, never answers: one client's many answers count once.
function agreement(item) {
  if (item.agreeing_clients === 0 && item.disagreeing_clients === 0) return "no other client answered this image";
  return `${plural(item.agreeing_clients, "other client gives", "other clients give")} the same answer, ` +
    `${plural(item.disagreeing_clients, "gives", "give")} another`;
}

function origin(item) {
  if (!item.answer_client) return "no answer";
  return `from client ${item.answer_client} (${plural(item.client_pending, "answer", "answers")} of it waiting)`;
}

function describe(item) {
  const node = $("item-template").content.firstElementChild.cloneNode(true);
  node.dataset.id = item.prediction_id;
  node.querySelector("img").src = window.FSDL.imageUrl.replace("PREDICTION", item.prediction_id);
  node.querySelector(".claim").textContent = item.sampled && item.claimed_label === null
    ? `No answer: a confident prediction sampled for review`
    : `Claimed: ${item.claimed_label}${item.correct ? " (confirms the model)" : " (corrects the model)"}`;
  node.querySelector(".predicted").textContent =
    `Model: ${item.predicted_label}, ${percent(item.confidence)} sure` +
    (item.claimed_probability !== null && !item.correct ? `; ${percent(item.claimed_probability)} for the claim` : "");
  node.querySelector(".details").textContent =
    `${item.model_name} version ${item.model_version} · ${agreement(item)} · ${origin(item)} · ` +
    `${new Date(1000 * (item.answered_at || item.created_at)).toLocaleString()}`;
  node.querySelector(".accept").addEventListener("click", () => decide([item.prediction_id], "accept"));
  node.querySelector(".reject").addEventListener("click", () => decide([item.prediction_id], "reject"));
  node.querySelector(".relabel").addEventListener("change", (event) => {
    if (event.target.value) decide([item.prediction_id], "relabel", event.target.value);
  });
  node.querySelector(".select").addEventListener("change", updateBulk);
  node.addEventListener("click", (event) => {
    if (event.target === node) setFocus(review.items.indexOf(item));
  });
  return node;
}

function nodes() {
  return Array.from(document.querySelectorAll("#queue .review-item"));
}

function setFocus(index) {
  const all = nodes();
  if (all.length === 0) return;
  review.focus = Math.max(0, Math.min(index, all.length - 1));
  all.forEach((node, i) => node.classList.toggle("active-item", i === review.focus));
  all[review.focus].focus({ preventScroll: false });
}

function selected() {
  return nodes().filter((node) => node.querySelector(".select").checked).map((node) => node.dataset.id);
}

function updateBulk() {
  const any = selected().length > 0;
  $("accept-selected").disabled = !any;
  $("reject-selected").disabled = !any;
}

async function loadQueue() {
  const response = await fetch(`${window.FSDL.queueUrl}?limit=200`);
  const data = await readJson(response);
  if (!response.ok) {
    showMessage("danger", `Could not load the queue: ${data.error}`);
    return;
  }
  review.items = data.items;
  $("queue").replaceChildren(...data.items.map(describe));
  $("queue-summary").textContent =
    data.pending === 0 ? "Nothing waits for review." : `${data.pending} waiting for review.`;
  updateBulk();
  setFocus(Math.min(review.focus, data.items.length - 1));
}

async function loadLog() {
  const response = await fetch(window.FSDL.decisionsUrl);
  const data = await readJson(response);
  if (!response.ok) return;
  const rows = data.decisions.map((d) => {
    const row = document.createElement("tr");
    for (const text of [
      new Date(1000 * d.decided_at).toLocaleString(),
      d.reviewer,
      d.action,
      d.label || "—",
      d.prediction_id.slice(0, 8),
    ]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    return row;
  });
  document.querySelector("#decision-log tbody").replaceChildren(...rows);
}

async function decide(ids, action, label) {
  if (ids.length === 0) return;
  const decisions = ids.map((id) => (action === "relabel" ? { prediction_id: id, action, label } : { prediction_id: id, action }));
  const response = await fetch(window.FSDL.decisionsUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ decisions }),
  });
  const data = await readJson(response);
  if (!response.ok && !data.results) {
    showMessage("danger", `Not recorded: ${data.error}`);
    return;
  }
  const failed = (data.results || []).filter((r) => r.error);
  if (failed.length) showMessage("warning", `${failed.length} not recorded: ${failed[0].error}`);
  else showMessage("success", `${ids.length} ${action === "reject" ? "rejected" : action === "relabel" ? `relabelled as ${label}` : "accepted"}.`);
  await Promise.all([loadQueue(), loadLog()]);
}

function onKey(event) {
  if (event.target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const item = review.items[review.focus];
  if (event.key === "j" || event.key === "ArrowDown") setFocus(review.focus + 1);
  else if (event.key === "k" || event.key === "ArrowUp") setFocus(review.focus - 1);
  else if (!item) return;
  else if (event.key === "a") decide([item.prediction_id], "accept");
  else if (event.key === "r") decide([item.prediction_id], "reject");
  else if (event.key === "x") {
    const box = nodes()[review.focus].querySelector(".select");
    box.checked = !box.checked;
    updateBulk();
  } else if (/^[1-9]$/.test(event.key) && Number(event.key) <= window.FSDL.classes.length) {
    decide([item.prediction_id], "relabel", window.FSDL.classes[Number(event.key) - 1]);
  } else return;
  event.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  // Only what the reviewer has seen: items whose image has loaded (images load as they scroll into
  // view). The server accepts nothing whose image it has not shown.
  $("select-all").addEventListener("click", () => {
    for (const node of nodes()) {
      const image = node.querySelector("img");
      if (image.complete && image.naturalWidth > 0) node.querySelector(".select").checked = true;
    }
    updateBulk();
  });
  $("accept-selected").addEventListener("click", () => decide(selected(), "accept"));
  $("reject-selected").addEventListener("click", () => decide(selected(), "reject"));
  document.addEventListener("keydown", onKey);
  loadQueue();
  loadLog();
});
