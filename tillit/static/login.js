// Tillit counselor console: login page. No inline script (CSP); texts come from data-*
// attributes that the template fills in through gettext.
(function () {
  "use strict";

  function init() {
    var form = document.getElementById("login-form");
    if (!form) return;
    var user = document.getElementById("login-username");
    var pass = document.getElementById("login-password");
    var totp = document.getElementById("login-totp");
    var submit = document.getElementById("login-submit");
    var errorBox = document.getElementById("login-error");
    var busy = false;

    function showError(text, focusEl) {
      errorBox.textContent = text;
      if (focusEl) focusEl.focus();
    }

    user.focus();

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (busy) return;
      var username = user.value.trim();
      var password = pass.value;
      var code = totp.value.replace(/\s+/g, "");
      if (!username || !password || !code) {
        showError(form.dataset.msgMissing, !username ? user : !password ? pass : totp);
        return;
      }
      busy = true;
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      errorBox.textContent = "";
      fetch("/api/console/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: username, password: password, totp: code }),
        credentials: "same-origin",
      })
        .then(function (res) {
          if (res.status === 200) {
            res.json().then(function (data) {
              location.assign(data && typeof data.home === "string" && /^\/console(\/|$)/.test(data.home) ? data.home : "/console");
            }, function () { location.assign("/console"); });
            return;
          }
          pass.value = "";
          totp.value = "";
          if (res.status === 429) {
            showError(form.dataset.msgRateLimited, pass);
          } else if (res.status === 401) {
            showError(form.dataset.msgUnauthorized, pass);
          } else {
            showError(form.dataset.msgError, pass);
          }
          busy = false;
          submit.disabled = false;
          form.removeAttribute("aria-busy");
        })
        .catch(function () {
          showError(form.dataset.msgError, null);
          busy = false;
          submit.disabled = false;
          form.removeAttribute("aria-busy");
        });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
