/* The counselor's own notes on a chat (protocol E8): only they can read them, and the
 * server deletes them automatically. */
import { WF, el, t, errorMessage, formatClock, notify } from "./config.js";
import { emit } from "./state.js";

export function setupNotes(chat, panel) {
  var noteInput = panel.querySelector(".note-input");
  noteInput.id = "note-input-" + chat.n;
  if (WF.max_note_chars) noteInput.maxLength = WF.max_note_chars;
  panel.querySelector(".note-label").setAttribute("for", noteInput.id);
  panel.querySelector(".note-save").addEventListener("click", function () {
    var text = noteInput.value.trim();
    if (!text) return;
    emit("note:add", { chat_id: chat.id, text: text }).then(function (res) {
      if (!res.ok) return notify(t("note_failed", { message: errorMessage(res) }), "error");
      noteInput.value = "";
      showNote(panel.querySelector(".notes-list"), res.note);
    });
  });
  emit("note:list", { chat_id: chat.id }).then(function (res) {
    if (res.ok) (res.notes || []).forEach(function (n) {
      showNote(panel.querySelector(".notes-list"), n);
    });
  });
}

/* One note as a list item; the chat panel and the mailbox detail both list notes this way. */
export function showNote(list, note) {
  if (!note) return;
  var li = el("li", "note");
  li.appendChild(el("span", "note-time", formatClock((note.at || 0) * 1000)));
  var p = el("p", "note-text", note.text);
  p.dir = "auto";
  li.appendChild(p);
  list.appendChild(li);
}
