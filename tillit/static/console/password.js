/* The account's own password change (docs/protocol.md E5, E12.5). A counselor's key
 * record is rewrapped here, in the browser: opened with the old password and locked with
 * the new one (fresh salt and IV, same kid), then sent with the new password so that the
 * server stores both in one step. Neither password nor the private key leaves memory. */
import { rewrapWithPassword } from "../mailbox-crypto.js";

var form = document.getElementById("password-form");
var statusNode = document.getElementById("password-status");
var submit = document.getElementById("password-submit");
var recordNode = document.getElementById("password-key-record");
var d = form.dataset;

function say(text) { statusNode.textContent = text; }

form.addEventListener("submit", async function (ev) {
  ev.preventDefault();
  var oldInput = document.getElementById("old-password");
  var newInput = document.getElementById("new-password");
  var againInput = document.getElementById("new-password-again");
  var oldPassword = oldInput.value, newPassword = newInput.value;
  if (newPassword.length < Number(d.min)) { say(d.short); return; }
  if (newPassword.length > Number(d.max)) { say(d.long); return; }
  if (newPassword !== againInput.value) { say(d.differ); return; }
  if (newPassword === oldPassword) { say(d.same); return; }
  submit.disabled = true;
  say(d.working);
  var stale = false;
  try {
    var body = { old_password: oldPassword, new_password: newPassword };
    if (recordNode) {
      try {
        body.key = await rewrapWithPassword(JSON.parse(recordNode.textContent), oldPassword, newPassword);
      } catch (e) {
        // Not opened by the old password: a typo (the server says so), or a key made
        // before an admin's reset, which nothing can rewrap.
        stale = true;
      }
    }
    var res = await fetch("/api/console/password", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": d.csrf },
      body: JSON.stringify(body)
    });
    var data = await res.json().catch(function () { return {}; });
    if (res.ok) {
      oldInput.value = newInput.value = againInput.value = "";
      if (body.key) recordNode.textContent = JSON.stringify(body.key);
      say(stale ? d.keyStale : body.key ? d.doneKey : d.done);
    } else if (res.status === 401) {
      say(d.wrong);
    } else if (res.status === 429) {
      say(d.throttled);
    } else {
      say(d.failed.replace("{message}", (data.error && data.error.message) || String(res.status)));
    }
  } catch (e) {
    say(d.failed.replace("{message}", String(e && e.message || e)));
  } finally {
    oldPassword = newPassword = "";
    submit.disabled = false;
  }
});
