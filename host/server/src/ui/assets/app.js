// Portolan's pages work without this script; it adds what needs one:
// - a run page follows its log live (Server-Sent Events) and reloads when
//   the run ends, to show the result and the buttons that now apply;
// - the catalog searches as you type and filters as you choose.
"use strict";

function followRun(log) {
  const id = log.dataset.run;
  let after = Number(log.dataset.after || 0);
  const status = document.getElementById("run-status");
  const source = new EventSource(`/runs/${encodeURIComponent(id)}/events?after=${after}`);
  source.addEventListener("log", (event) => {
    const line = JSON.parse(event.data);
    if (line.seq <= after) return;
    after = line.seq;
    const row = document.createElement("span");
    row.className = `line ${line.level || "info"}`;
    row.dataset.seq = String(line.seq);
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = String(line.at || "").slice(11, 19);
    const level = document.createElement("span");
    level.className = "level";
    level.textContent = line.level || "info";
    row.append(at, " ", level, " ", String(line.message), "\n");
    log.append(row);
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("status", (event) => {
    source.close();
    const run = JSON.parse(event.data);
    if (status) {
      status.dataset.status = run.status;
      status.textContent = run.status;
    }
    // The page shows the result and the buttons that apply to an ended run.
    window.location.reload();
  });
}

function liveCatalog(form) {
  let timer = null;
  const submit = () => form.requestSubmit ? form.requestSubmit() : form.submit();
  form.querySelectorAll("select").forEach((select) => select.addEventListener("change", submit));
  const q = form.querySelector("input[type=search]");
  if (q) {
    q.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const params = new URLSearchParams(new FormData(form));
        const url = `/catalog?${params}`;
        const response = await fetch(url, { headers: { accept: "text/html" } });
        if (!response.ok) return;
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = doc.getElementById("results");
        const current = document.getElementById("results");
        if (fresh && current && q.value === new URLSearchParams(params).get("q")) {
          current.replaceWith(fresh);
          history.replaceState(null, "", url);
        }
      }, 250);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  if (log && log.dataset.done === "false") followRun(log);
  const catalog = document.querySelector("form[data-live=catalog]");
  if (catalog) liveCatalog(catalog);
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
