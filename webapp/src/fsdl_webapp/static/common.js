// Helpers every page's script uses (loaded first by base.html).
"use strict";

// What the server passed to this page's script (a JSON block: the CSP runs no inline script).
window.FSDL = (() => {
  const node = document.getElementById("page-config");
  return node ? JSON.parse(node.textContent) : {};
})();

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

// Instants are sent in UTC (ISO 8601); show them in the reader's own time zone.
function showLocalTimes(root = document) {
  for (const node of root.querySelectorAll("time.local-time[datetime]")) {
    const instant = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(instant.getTime())) node.textContent = instant.toLocaleString();
  }
}

document.addEventListener("DOMContentLoaded", () => showLocalTimes());
