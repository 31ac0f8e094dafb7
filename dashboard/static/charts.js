// Draws the page's charts from the JSON the server embedded in #page-data (no inline scripts: CSP).
(function () {
  "use strict";
  var el = document.getElementById("page-data");
  if (!el || typeof Chart === "undefined") { return; }
  var data = JSON.parse(el.textContent);
  var blue = "#1d4f91", green = "#1e7d4f", amber = "#b7791f", red = "#b42318", grey = "#9aa5b1";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;

  function bars(id, labels, values, colors, horizontal) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ data: values, backgroundColor: colors }] },
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
    bars("funnel-chart", data.funnel.map(function (r) { return r.label; }),
      data.funnel.map(function (r) { return r.reached; }), [blue, blue, blue, blue, blue, green, green], true);
  }
  if (data.reasons) {
    bars("reasons-chart", data.reasons.map(function (r) { return r.label; }),
      data.reasons.map(function (r) { return r.count; }), red, true);
  }
  if (data.agreement && data.backlogs) {
    bars("backlog-agreement-chart", data.buckets, data.buckets.map(function (b) { return data.agreement.buckets[b]; }), amber, false);
    data.backlogs.forEach(function (backlog) {
      bars("backlog-" + backlog.key + "-chart", data.buckets,
        data.buckets.map(function (b) { return backlog.buckets[b]; }), amber, false);
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
          labels: runs.map(function (r) { return "#" + r.run_id + " " + r.business_date; }),
          datasets: states.map(function (s, i) {
            return { label: s.toLowerCase().replace(/_/g, " "), backgroundColor: colors[i],
              data: runs.map(function (r) { return r.in_scope[s] || 0; }) };
          })
        },
        options: { maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
      });
    }
  }
}());
