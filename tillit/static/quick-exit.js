/* Tillit quick exit (issue 3; README.md "The quick exit and what stays on the visitor's
 * device"): leave in one keystroke and
 * leave nothing on screen, in memory or in the back/forward cache.
 *
 * - The `#quick-exit` link works on its own without JavaScript (a plain link off the site).
 *   With JavaScript a click runs `leave()` instead, which does not add a history entry.
 * - Shift pressed alone three times, each within 5 s of the last, counted on key-up
 *   (GOV.UK "Exit this page"): Shift used as a modifier, or any other key, resets the count.
 *   Listeners run in the capture phase, so it works while typing in any field.
 * - `leave()` never waits on the network: blank cover first, then the page's state is
 *   dropped (visitor.js registers how), the chat is ended by `navigator.sendBeacon`
 *   (`POST` to the exit endpoint with the resume token), then `location.replace`.
 * - On `pagehide` the page clears itself, so a back/forward cache restore shows nothing;
 *   a restored page reloads as a fresh, empty page.
 *
 * visitor.js talks to this file only through `window.TillitQuickExit.register(hooks)`:
 *   hooks.token()     -> the resume token of a chat that is still going, or null;
 *   hooks.wipe()      -> drop transcript, keys and all state from memory;
 *   hooks.socketEnder() -> optional: a function that says `chat:end` on the open socket,
 *                        used only when the browser refuses the beacon (never awaited).
 */
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
