// ferry status page: polls /v1/migrations every second and redraws the table.
// Everything shown comes from Redis and may be hostile (error messages are not
// validated), so text only ever goes in through textContent and setAttribute -- never
// innerHTML. No dependencies, no build step.
"use strict";

(function () {
  var REFRESH_MS = 1000;
  var previous = {}; // dataset -> {at, objects, bytes}: rates over the last interval

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], i = 0;
    n = Number(n) || 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || !isFinite(s) || s < 0) return "-";
    s = Math.round(s);
    if (s >= 3600) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
    if (s >= 60) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    return s + "s";
  }

  function row(m, now) {
    var tr = el("tr", m.chunk_of ? "chunk" : "");
    var objs = Number(m.objects_done) || 0, bytes = Number(m.bytes_done) || 0;
    var total = m.objects_total, rate = Number(m.objects_per_second) || 0;
    var brate = Number(m.bytes_per_second) || 0, eta = m.eta_seconds;
    var prev = previous[m.dataset];

    // Machine-readable copies of the numbers (tests and scripts read these).
    tr.setAttribute("data-dataset", String(m.dataset));
    tr.setAttribute("data-status", String(m.status));
    tr.setAttribute("data-objects-done", String(objs));
    tr.setAttribute("data-objects-total", total === null ? "" : String(total));
    tr.setAttribute("data-total-lower-bound", m.objects_total_lower_bound ? "true" : "false");
    tr.setAttribute("data-bytes-done", String(bytes));
    tr.setAttribute("data-verify", m.verify ? String(m.verify) : "");

    // The rate since the count last changed says more than the average since the start
    // (which includes counting the source and any hand-over); the server's average is
    // the fallback.
    if (prev && m.status === "running" && objs > prev.objects && now - prev.at >= 500) {
      var secs = (now - prev.at) / 1000;
      rate = (objs - prev.objects) / secs;
      brate = Math.max(0, bytes - prev.bytes) / secs;
      if (total !== null && !m.objects_total_lower_bound) eta = Math.max(0, total - objs) / rate;
    }
    if (!prev || objs !== prev.objects || now - prev.at > 10000)
      previous[m.dataset] = { at: now, objects: objs, bytes: bytes };

    tr.appendChild(el("td", "dataset", m.dataset));
    var st = el("td", "status");
    st.appendChild(el("span", "badge " + String(m.status).replace(/[^a-z]/g, ""), m.status));
    tr.appendChild(st);

    var bar = el("td", "bar"), p = el("progress");
    p.max = 1;
    if (m.progress !== null && m.progress !== undefined) {
      p.value = Number(m.progress);
      bar.appendChild(p);
      bar.appendChild(el("span", "pct", (Number(m.progress) * 100).toFixed(1) + "%"));
    } else {
      p.removeAttribute("value"); // indeterminate: the source is still being counted or listed
      bar.appendChild(p);
      bar.appendChild(el("span", "pct", "?"));
    }
    if (m.status === "done" || m.status === "failed") p.className = m.status;
    if (m.status === "failed_objects") p.className = "failed";
    tr.appendChild(bar);

    tr.appendChild(el("td", "num objects", objs + " / " + (total === null ? "?" :
      (m.objects_total_lower_bound ? "\u2265 " : "") + total)));
    tr.appendChild(el("td", "num bytes", fmtBytes(bytes)));
    tr.appendChild(el("td", "num rate", rate > 0 && (m.status === "running" || m.status === "done")
      ? rate.toFixed(rate < 10 ? 1 : 0) + "/s  " + fmtBytes(brate) + "/s" : "-"));
    tr.appendChild(el("td", "num eta", m.status === "running" ? fmtDuration(eta) : "-"));
    tr.appendChild(el("td", "verify", m.verify ? String(m.verify).replace(/,/g, ", ") : "-"));
    tr.appendChild(el("td", "worker", m.worker || "-"));
    var why = m.last_error ? (m.error_class ? m.error_class + ": " : "") + m.last_error : "";
    if (Number(m.objects_failed) > 0 || Number(m.objects_vanished) > 0)
      why += (why ? " \u2014 " : "") + Number(m.objects_copied) + " copied, " +
        Number(m.objects_identical) + " identical, " + Number(m.objects_vanished) + " vanished, " +
        Number(m.objects_failed) + " failed" + (m.report ? "; report " + m.report : "");
    var err = el("td", "error", why);
    tr.appendChild(err);
    return tr;
  }

  function render(data) {
    var now = Date.now(), counts = { running: 0, pending: 0, done: 0, failed: 0, failed_objects: 0 };
    var list = Array.isArray(data.migrations) ? data.migrations : [];
    var tbody = $("rows"), fresh = document.createDocumentFragment();

    list.forEach(function (m) {
      if (!m || typeof m !== "object") return;
      if (Object.prototype.hasOwnProperty.call(counts, m.status) && !m.chunk_of) counts[m.status]++;
      fresh.appendChild(row(m, now));
    });
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    tbody.appendChild(fresh);

    $("worker").textContent = data.worker || "-";
    Object.keys(counts).forEach(function (k) { $("count-" + k).textContent = String(counts[k]); });
    $("dlq-records").textContent = String(data.dlq_records === undefined ? "-" : data.dlq_records);
    $("in-flight").textContent = String(data.in_flight === undefined ? "-" : data.in_flight);
    $("empty").hidden = list.length > 0;
    $("updated").textContent = new Date(now).toLocaleTimeString();
    $("updated").setAttribute("data-ms", String(now));
  }

  function problem(text) {
    var b = $("banner");
    b.textContent = text;
    b.hidden = !text;
  }

  function refresh() {
    fetch("v1/migrations", { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      })
      .then(function (r) {
        if (!r.ok) {
          problem("Cannot read the migrations: " + ((r.body && r.body.message) || "error"));
          return;
        }
        problem("");
        render(r.body);
      })
      .catch(function (e) { problem("The worker does not answer (" + e + ")."); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }

  refresh();
})();
