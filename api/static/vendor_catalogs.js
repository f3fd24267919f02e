// /vendor/catalogs: drag-and-drop onto the file picker, a confirmation before --sync, and live
// progress of queued and running jobs (polls each job's JSON; no page reload).
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var drop = document.getElementById("catalog-drop");
  var input = document.getElementById("catalog-file");
  var chosen = document.getElementById("catalog-chosen");
  if (drop && input) {
    var show = function () {
      chosen.textContent = input.files.length ? "Chosen: " + input.files[0].name : "";
    };
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (kind) {
      drop.addEventListener(kind, function (event) { event.preventDefault(); drop.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (kind) {
      drop.addEventListener(kind, function () { drop.classList.remove("dragging"); });
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        show();
      }
    });
  }
  if (form) {
    form.addEventListener("submit", function (event) {
      var sync = document.getElementById("catalog-sync");
      var confirmed = document.getElementById("catalog-sync-confirmed");
      if (sync && sync.checked) {
        if (!window.confirm("Remove every product of yours that this file does not list?")) {
          event.preventDefault();
          return;
        }
        confirmed.checked = true;
      }
      document.getElementById("upload-sending").textContent = "Sending the file…";
    });
  }

  function seconds(value) {
    if (value === null || value === undefined) { return ""; }
    value = Math.round(value);
    return value >= 120 ? Math.round(value / 60) + " min" : value + " s";
  }

  function render(row, job) {
    row.dataset.status = job.status;
    row.querySelector("[data-testid=job-status]").textContent = job.status;
    var bar = row.querySelector("[data-testid=job-progress]");
    bar.value = job.percent || 0;
    bar.textContent = (job.percent || 0) + "%";
    var text = job.rows_done + (job.rows_total ? " of " + job.rows_total : "") + " rows, " + job.images_done + " images";
    if (job.rows_per_s) { text += ", " + job.rows_per_s + " rows/s"; }
    if (job.status === "running" && job.eta_s !== null) { text += ", about " + seconds(job.eta_s) + " left"; }
    row.querySelector("[data-testid=job-counts]").textContent = text;
    var outcome = row.querySelector("[data-testid=job-outcome]");
    if (job.status === "done") {
      outcome.textContent = job.accepted + " in, " + job.rejected + " rejected" +
        (job.summary && job.summary.removed ? ", " + job.summary.removed + " removed" : "");
      if (job.report_url) {
        var link = document.createElement("a");
        link.href = job.report_url;
        link.setAttribute("download", "");
        link.dataset.testid = "job-report";
        link.textContent = "reject report (CSV)";
        var hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = " of job " + job.id;
        link.appendChild(hidden);
        outcome.appendChild(document.createTextNode(" · "));
        outcome.appendChild(link);
      }
    } else if (job.status === "failed") {
      outcome.textContent = "";
      var error = document.createElement("span");
      error.className = "error-text";
      error.dataset.testid = "job-error";
      error.textContent = job.error || "failed";
      outcome.appendChild(error);
    }
  }

  function follow(row) {
    var id = row.dataset.job;
    var poll = function () {
      fetch("/vendor/catalogs/jobs/" + id + "/progress.json", { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (job) {
          if (!job) { return; }
          render(row, job);
          if (job.status === "queued" || job.status === "running") { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    poll();
  }

  document.querySelectorAll("tr[data-job]").forEach(function (row) {
    if (row.dataset.status === "queued" || row.dataset.status === "running") { follow(row); }
  });
})();
