/* Tillit operations panel: polls /api/console/ops every few seconds and writes the
   four numbers into the page. Numbers only; no content, no names. No inline script:
   texts come from data attributes on #ops. */
(function () {
  "use strict";
  var EVERY_MS = 5000;
  var box = document.getElementById("ops");
  var status = document.getElementById("ops-status");
  if (!box || !status) return;
  var timer = null;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all;
    });
  }

  function set(name, text) {
    var el = document.getElementById("ops-" + name);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function show(data) {
    set("counselors_online", String(data.counselors_online));
    set("queue_length", String(data.queue_length));
    set("chats_in_progress", String(data.chats_in_progress));
    var wait = Math.max(0, Math.floor(Number(data.longest_wait_s) || 0));
    set("longest_wait_s", fill(box.dataset.duration, { m: Math.floor(wait / 60), s: wait % 60 }));
    var now = new Date();
    var hh = String(now.getHours()).padStart(2, "0");
    var mm = String(now.getMinutes()).padStart(2, "0");
    var ss = String(now.getSeconds()).padStart(2, "0");
    status.textContent = fill(box.dataset.updated, { time: hh + ":" + mm + ":" + ss });
  }

  function poll() {
    fetch("/api/console/ops", { credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) {
          status.textContent = box.dataset.sessionEnded;
          clearInterval(timer);
          return null;
        }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (data) { if (data) show(data); })
      .catch(function () { status.textContent = box.dataset.failed; });
  }

  timer = setInterval(poll, EVERY_MS);
  poll();
})();
