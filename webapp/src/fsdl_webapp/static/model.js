// The model page's rollback: the person's MLflow login goes with this one request, never stored.
"use strict";

function basicAuth(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

async function rollBack(event) {
  event.preventDefault();
  const button = $("rollback-button");
  button.disabled = true;
  try {
    const response = await fetch(window.FSDL.rollbackUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: basicAuth($("rollback-user").value, $("rollback-password").value) },
      body: JSON.stringify({ from_version: window.FSDL.from, to_version: window.FSDL.to }),
    });
    const body = await readJson(response);
    if (!response.ok) throw new Error(body.error);
    showMessage("success", `Version ${body.to_version} is ${body.alias} again (rolled back from ${body.from_version}); MLflow recorded it.`);
    $("rollback-password").value = "";
    setTimeout(() => window.location.reload(), 2500);
  } catch (error) {
    showMessage("danger", `Not rolled back: ${error.message}`);
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => $("rollback-form").addEventListener("submit", rollBack));
