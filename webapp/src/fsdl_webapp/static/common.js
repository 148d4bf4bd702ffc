// Helpers every page's script uses (loaded first by base.html).
"use strict";

function $(id) {
  return document.getElementById(id);
}

function showMessage(kind, text) {
  const box = $("message");
  box.className = `alert alert-${kind}`;
  box.textContent = text;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch (error) {
    return { error: `the server answered ${response.status} ${response.statusText}` };
  }
}
