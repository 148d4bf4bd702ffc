// Classify an upload, show the answer, and send the user's feedback. Plain JavaScript with fetch.
"use strict";

const state = { predictionId: null, predictedLabel: null };

function clearMessage() {
  $("message").className = "alert d-none";
}

function showPreview() {
  const file = $("image-input").files[0];
  const preview = $("preview");
  $("classify-button").disabled = !file;
  clearMessage();
  if (!file) {
    preview.classList.add("d-none");
    return;
  }
  preview.src = URL.createObjectURL(file);
  preview.classList.remove("d-none");
}

function renderProbabilities(probabilities) {
  const container = $("probabilities");
  container.replaceChildren();
  const sorted = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of sorted) {
    const percent = (100 * p).toFixed(1);
    const row = document.createElement("div");
    row.className = "d-flex align-items-center gap-2 mb-1";
    row.innerHTML = `<span class="prob-label"></span>
      <div class="progress flex-grow-1" role="progressbar" aria-valuemin="0" aria-valuemax="100">
        <div class="progress-bar"></div></div><span class="prob-value small"></span>`;
    row.querySelector(".prob-label").textContent = label;
    row.querySelector(".progress").setAttribute("aria-valuenow", percent);
    row.querySelector(".progress").setAttribute("aria-label", `${label} probability`);
    row.querySelector(".progress-bar").style.width = `${percent}%`;
    row.querySelector(".prob-value").textContent = `${percent}%`;
    container.appendChild(row);
  }
}

function resetFeedback() {
  $("feedback-form").reset();
  $("label-choice").classList.add("d-none");
  $("feedback-button").disabled = true;
  for (const input of document.querySelectorAll("#feedback-form input")) input.disabled = false;
}

async function classify(event) {
  event.preventDefault();
  const file = $("image-input").files[0];
  if (!file) return;
  const body = new FormData();
  body.append("image", file);
  $("classify-button").disabled = true;
  showMessage("info", "Classifying…");
  try {
    const response = await fetch(window.FSDL.predictUrl, { method: "POST", body });
    const data = await readJson(response);
    if (!response.ok) {
      $("result-card").classList.add("d-none");
      showMessage("danger", `Could not classify: ${data.error}`);
      return;
    }
    state.predictionId = data.prediction_id;
    state.predictedLabel = data.label;
    $("result-label").textContent = data.label;
    $("result-model").textContent = `${data.model.name} version ${data.model.version}`;
    renderProbabilities(data.probabilities);
    // Ask more prominently where an answer teaches the model most: low confidence or a close second.
    $("unsure-note").classList.toggle("d-none", !data.unsure);
    $("result-card").classList.toggle("border-warning", data.unsure);
    resetFeedback();
    // While uploads cannot be kept (the store is down), the prediction stands but no answer is asked for.
    $("unkept-note").classList.toggle("d-none", data.kept !== false);
    $("feedback-form").classList.toggle("d-none", data.kept === false);
    $("result-card").classList.remove("d-none");
    clearMessage();
  } catch (error) {
    showMessage("danger", `The server cannot be reached (${error.message}).`);
  } finally {
    $("classify-button").disabled = !$("image-input").files[0];
  }
}

function chosen(name) {
  const input = document.querySelector(`#feedback-form input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function updateFeedbackForm() {
  const correct = chosen("correct");
  $("label-choice").classList.toggle("d-none", correct !== "no");
  // A correction needs a class other than the predicted one; nothing is pre-selected.
  const label = chosen("label");
  const ready = correct === "yes" || (correct === "no" && label !== null && label !== state.predictedLabel);
  $("feedback-button").disabled = !ready;
}

async function sendFeedback(event) {
  event.preventDefault();
  const correct = chosen("correct") === "yes";
  const label = correct ? state.predictedLabel : chosen("label");
  $("feedback-button").disabled = true;
  try {
    const response = await fetch(window.FSDL.feedbackUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prediction_id: state.predictionId, correct, label }),
    });
    const data = await readJson(response);
    if (!response.ok) {
      showMessage("danger", `Feedback not stored: ${data.error}`);
      $("feedback-button").disabled = false;
      return;
    }
    for (const input of document.querySelectorAll("#feedback-form input")) input.disabled = true;
    const next =
      data.review_state === "accepted"
        ? "will be used in the next training run"
        : "will be used for training once a reviewer has checked it";
    showMessage("success", `Thank you! The image was stored as “${data.label}” and ${next}.`);
  } catch (error) {
    showMessage("danger", `The server cannot be reached (${error.message}).`);
    $("feedback-button").disabled = false;
  }
}

function init() {
  $("image-input").addEventListener("change", showPreview);
  $("upload-form").addEventListener("submit", classify);
  $("feedback-form").addEventListener("change", updateFeedbackForm);
  $("feedback-form").addEventListener("submit", sendFeedback);
}

document.addEventListener("DOMContentLoaded", init);
