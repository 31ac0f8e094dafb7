// Draws the page's charts from the JSON the server embedded in #page-data (codes and numbers), named in the
// page's language by #page-labels (no inline scripts: CSP; no text in this file: every word is translated).
(function () {
  "use strict";
  var el = document.getElementById("page-data");
  var labelsEl = document.getElementById("page-labels");
  if (!el || !labelsEl || typeof Chart === "undefined") { return; }
  var data = JSON.parse(el.textContent);
  var L = JSON.parse(labelsEl.textContent);
  var blue = "#1d4f91", green = "#1e7d4f", amber = "#b7791f", red = "#b42318", grey = "#9aa5b1";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;
  Chart.defaults.locale = L.locale;  // numbers in tooltips and on the axes: 1,234 as in the tables

  function named(table, key) { return (table && table[key]) || key; }

  function bars(id, labels, values, colors, horizontal, series) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: series, data: values, backgroundColor: colors }] },
      options: {
        indexAxis: horizontal ? "y" : "x",
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true }, y: { beginAtZero: true } }
      }
    });
  }

  if (data.funnel) {
    // The seven steps from submission to an active savings function, as far as each got.
    bars("funnel-chart", data.funnel.map(function (r) { return named(L.steps, r.key); }),
      data.funnel.map(function (r) { return r.reached; }), [blue, blue, blue, blue, blue, green, green], true,
      L.applications);
  }
  if (data.reasons) {
    bars("reasons-chart", data.reasons.map(function (r) { return named(L.reasons, r.reason); }),
      data.reasons.map(function (r) { return r.count; }), red, true, L.applications);
  }
  if (data.agreement && data.backlogs) {
    var ages = data.buckets.map(function (b) { return named(L.ages, b); });
    bars("backlog-agreement-chart", ages, data.buckets.map(function (b) { return data.agreement.buckets[b]; }),
      amber, false, L.applications);
    data.backlogs.forEach(function (backlog) {
      bars("backlog-" + backlog.key + "-chart", ages,
        data.buckets.map(function (b) { return backlog.buckets[b]; }), amber, false, L.cards);
    });
  }
  if (data.runs) {
    var runs = data.runs.slice().reverse();
    var states = ["ACCEPTED", "COMPLETED", "FAILED", "SUBMITTED", "AWAITING_AGREEMENT", "REJECTED"];
    var colors = [blue, green, red, "#5b7fb8", amber, grey];
    var canvas = document.getElementById("runs-chart");
    if (canvas) {
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: runs.map(function (r) { return named(L.runs, String(r.run_id)); }),
          datasets: states.map(function (s, i) {
            return { label: named(L.states, s), backgroundColor: colors[i],
              data: runs.map(function (r) { return r.in_scope[s] || 0; }) };
          })
        },
        options: { maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
      });
    }
  }
}());
