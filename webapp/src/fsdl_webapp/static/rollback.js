// The rollback page: the person's MLflow login goes with this one request (behind the web app's own
// login, which the browser sends), never stored.
"use strict";

async function rollBack(event) {
  event.preventDefault();
  const button = $("rollback-button");
  button.disabled = true;
  try {
    const response = await fetch(window.FSDL.rollbackUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        from_version: window.FSDL.from,
        to_version: window.FSDL.to,
        mlflow_username: $("rollback-user").value,
        mlflow_password: $("rollback-password").value,
      }),
    });
    const body = await readJson(response);
    if (!response.ok) throw new Error(body.error);
    showMessage("success", `Version ${body.to_version} is ${body.alias} again (rolled back from ${body.from_version}); MLflow recorded it.`);
    $("rollback-password").value = "";
    setTimeout(() => window.location.assign(window.FSDL.modelUrl), 2500);
  } catch (error) {
    showMessage("danger", `Not rolled back: ${error.message}`);
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => $("rollback-form").addEventListener("submit", rollBack));
