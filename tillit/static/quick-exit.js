/* Quick exit (issue 3): the link, or Shift alone three times within 5 s each (key-up,
 * capture phase), leaves at once and leaves nothing on screen, in memory or in the
 * back/forward cache: README.md "The quick exit and what stays on the visitor's device".
 * visitor.js registers hooks: token() (a live chat's resume token or null), wipe(), and
 * optionally socketEnder() (chat:end on the socket when the beacon is refused). */
(function () {
  "use strict";

  var WINDOW_MS = 5000;
  var PRESSES = 3;
  var cfgEl = document.getElementById("tillit-config");
  var cfg = {};
  try { cfg = JSON.parse(cfgEl ? cfgEl.textContent : "{}"); } catch (e) { cfg = {}; }
  var hooks = {};
  var leaving = false;

  function call(name) {
    try { return hooks[name] ? hooks[name]() : null; } catch (e) { return null; }
  }

  function beacon(token, reason) {
    if (!token || !cfg.exit_endpoint || !navigator.sendBeacon) return false;
    var body = { resume_token: token };
    if (reason) body.reason = reason;
    try {
      // A string body goes as text/plain: no preflight, and the server accepts it.
      return navigator.sendBeacon(cfg.exit_endpoint, JSON.stringify(body));
    } catch (e) {
      return false;
    }
  }

  /* Nothing of the page stays drawn: a blank cover on top, then the document emptied. */
  function blank() {
    var root = document.documentElement;
    root.classList.add("quick-exiting");
    if (!document.getElementById("exit-cover")) {
      var cover = document.createElement("div");
      cover.id = "exit-cover";
      cover.className = "exit-cover";
      root.appendChild(cover);
    }
  }

  function emptyBody() {
    var body = document.body;
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
  }

  function exitUrl() {
    var link = document.getElementById("quick-exit");
    return (link && link.href) || cfg.exit_url || "about:blank";
  }

  function leave(ev) {
    if (ev && ev.preventDefault) ev.preventDefault();
    if (leaving) return;
    leaving = true;
    var url = exitUrl();
    blank();
    var token = call("token");
    var endOnSocket = call("socketEnder");
    call("wipe");
    emptyBody();
    if (!beacon(token, "quick_exit") && typeof endOnSocket === "function") {
      try { endOnSocket(); } catch (e) { /* leaving anyway */ }
    }
    token = null;
    endOnSocket = null;
    window.location.replace(url);
  }

  /* ---- Shift three times ---- */
  var count = 0;
  var lastAt = 0;
  var shiftDown = false;
  var shiftUsed = false;
  var resetTimer = null;
  var statusEl = document.getElementById("exit-status");

  function announce(step) {
    if (!statusEl) return;
    var text = step ? statusEl.getAttribute("data-step-" + step) : "";
    statusEl.textContent = text || "";
  }

  function reset() {
    count = 0;
    lastAt = 0;
    clearTimeout(resetTimer);
    announce(0);
  }

  function onKeyDown(ev) {
    if (leaving) return;
    if (ev.key === "Shift") {
      if (!ev.repeat) {
        shiftDown = true;
        shiftUsed = false;
      }
      return;
    }
    // Any other key: a held Shift was a modifier, and the count starts again.
    if (shiftDown) shiftUsed = true;
    if (count) reset();
  }

  function onKeyUp(ev) {
    if (leaving || ev.key !== "Shift") return;
    var counts = shiftDown && !shiftUsed;
    shiftDown = false;
    shiftUsed = false;
    if (!counts) { reset(); return; }
    var now = Date.now();
    if (count && now - lastAt > WINDOW_MS) count = 0;
    count += 1;
    lastAt = now;
    if (count >= PRESSES) {
      announce("leaving");
      leave();
      return;
    }
    announce(count);
    clearTimeout(resetTimer);
    resetTimer = setTimeout(reset, WINDOW_MS);
  }

  /* Shift held while clicking (selecting text) is also a modifier. */
  function onPointerDown(ev) {
    if (ev.shiftKey) shiftUsed = true;
  }

  document.addEventListener("keydown", onKeyDown, true);
  document.addEventListener("keyup", onKeyUp, true);
  document.addEventListener("pointerdown", onPointerDown, true);
  window.addEventListener("blur", function () { shiftDown = false; shiftUsed = false; });

  /* ---- the link and the skip link ---- */
  var link = document.getElementById("quick-exit");
  if (link) link.addEventListener("click", leave);
  var skip = document.getElementById("skip-to-exit");
  if (skip && link) {
    // A fragment link would add a history entry: move focus instead.
    skip.addEventListener("click", function (ev) {
      ev.preventDefault();
      link.focus();
    });
  }

  /* ---- back/forward cache ---- */
  window.addEventListener("pagehide", function () {
    if (leaving) return;
    var token = call("token");
    call("wipe");
    blank();
    emptyBody();
    // The keys are gone with the page, so the chat cannot go on: end it now rather than
    // leave the counselor waiting for the resume window.
    beacon(token, null);
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) window.location.reload();
  });

  window.TillitQuickExit = {
    register: function (h) { hooks = h || {}; },
    leave: function () { leave(); }
  };
})();
