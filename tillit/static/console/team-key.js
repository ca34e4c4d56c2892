/* The admin page's team recovery key (docs/protocol.md E12.5): made in this browser,
 * downloaded as tillit-team-key.json wrapped under the admin's passphrase, and only its
 * public key posted to the server (POST /console/admin/team-key). */
import { createPasswordKeys } from "../mailbox-crypto.js";

var form = document.getElementById("team-key-form");
var statusNode = document.getElementById("team-key-status");
var texts = { short: form.dataset.short, differ: form.dataset.differ, making: form.dataset.making };

function download(record) {
  var blob = new Blob([JSON.stringify(record, null, 2) + "\n"], { type: "application/json" });
  var url = URL.createObjectURL(blob);
  var a = document.createElement("a");
  a.href = url;
  a.download = "tillit-team-key.json";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
}

form.addEventListener("submit", async function (ev) {
  if (document.getElementById("team-key-pubkey").value) return; // made: post it
  ev.preventDefault();
  var pass = document.getElementById("team-passphrase");
  var again = document.getElementById("team-passphrase-again");
  if (pass.value.length < 16) { statusNode.textContent = texts.short; return; }
  if (pass.value !== again.value) { statusNode.textContent = texts.differ; return; }
  statusNode.textContent = texts.making;
  document.getElementById("team-key-create").disabled = true;
  try {
    var made = await createPasswordKeys(pass.value, "team-key");
    download(made.record);
    pass.value = "";
    again.value = "";
    document.getElementById("team-key-pubkey").value = made.pubkey;
    form.submit();
  } catch (e) {
    statusNode.textContent = String(e && e.message || e);
    document.getElementById("team-key-create").disabled = false;
  }
});
