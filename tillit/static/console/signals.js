/* New-chat signals (issue 15): a chime and a desktop notification, both opt-in. */
import { $, t, notify } from "./config.js";

// Opt-in, off by default: a chime made with WebAudio (no audio file) and a desktop
// notification. Permission is asked only when the counselor ticks the box (a click).
// A notification says "New chat waiting" or "Urgent chat waiting" and nothing else: no
// chat id, language or text, since it shows outside the page (lock screen, other apps).
var SIGNAL_KEY = "tillit-console-signals";
var signals = { sound: false, notify: false, primed: false, known: new Map(), audio: null };

function saveSignals() {
  try {
    localStorage.setItem(SIGNAL_KEY, JSON.stringify({ sound: signals.sound, notify: signals.notify }));
  } catch (e) {
    /* private mode or storage off: the choice lasts for this page only */
  }
}

function notificationsAllowed() {
  return "Notification" in window && window.Notification.permission === "granted";
}

function audioContext() {
  var Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!signals.audio) signals.audio = new Ctx();
  if (signals.audio.state === "suspended" && signals.audio.resume) {
    signals.audio.resume().catch(function () {});
  }
  return signals.audio;
}

function playChime(urgent) {
  var ctx = audioContext();
  if (!ctx) return;
  // Two soft notes for a new chat; three higher, quicker ones for danger now.
  var notes = urgent ? [880, 1175, 880] : [660, 880];
  var step = urgent ? 0.16 : 0.22;
  var start = ctx.currentTime + 0.02;
  notes.forEach(function (freq, i) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    var t0 = start + i * step;
    osc.type = "sine";
    osc.frequency.setValueAtTime(freq, t0);
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(urgent ? 0.3 : 0.18, t0 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + step * 0.95);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(t0);
    osc.stop(t0 + step);
  });
}

function showNewChatNotification(urgent) {
  if (!notificationsAllowed()) return;
  try {
    var n = new window.Notification(t(urgent ? "signal_urgent" : "signal_new"), {
      tag: urgent ? "tillit-urgent-chat" : "tillit-new-chat",
      renotify: true,
      requireInteraction: urgent,
      silent: signals.sound,
      icon: "/static/favicon.svg",
    });
    n.onclick = function () {
      window.focus();
      n.close();
    };
  } catch (e) {
    /* some browsers only allow notifications from a service worker: the chime remains */
  }
}

// Called with every new queue: signals chats that were not in it before, and chats that
// turned into danger now. The first queue after loading the page only sets the baseline.
export function signalQueueChanges(list) {
  var fresh = false;
  var urgent = false;
  var next = new Map();
  list.forEach(function (q) {
    var before = signals.known.get(q.chat_id);
    next.set(q.chat_id, !!q.danger_now);
    if (before === undefined) fresh = true;
    if (q.danger_now && before !== true) urgent = true;
  });
  signals.known = next;
  if (!signals.primed) {
    signals.primed = true;
    return;
  }
  if (!fresh && !urgent) return;
  if (signals.sound) playChime(urgent);
  if (signals.notify) showNewChatNotification(urgent);
}

export function initSignals() {
  var soundBox = $("signal-sound");
  var notifyBox = $("signal-notify");
  if (!soundBox || !notifyBox) return;
  var saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(SIGNAL_KEY) || "{}") || {};
  } catch (e) {
    saved = {};
  }
  signals.sound = saved.sound === true;
  signals.notify = saved.notify === true && notificationsAllowed();
  soundBox.checked = signals.sound;
  notifyBox.checked = signals.notify;
  if (!("Notification" in window)) {
    notifyBox.disabled = true;
    notifyBox.closest("label").title = t("signal_unsupported");
  }
  soundBox.addEventListener("change", function () {
    signals.sound = soundBox.checked;
    if (signals.sound) audioContext(); // created within the click, so it may play
    saveSignals();
  });
  notifyBox.addEventListener("change", function () {
    if (!notifyBox.checked) {
      signals.notify = false;
      saveSignals();
      return;
    }
    var N = window.Notification;
    var answer = N.permission === "default" ? N.requestPermission() : Promise.resolve(N.permission);
    Promise.resolve(answer).then(function (permission) {
      signals.notify = permission === "granted";
      notifyBox.checked = signals.notify;
      if (!signals.notify) notify(t("signal_blocked"), "error");
      saveSignals();
    });
  });
  if (signals.sound) {
    // A page may start audio only after a gesture: resume on the first one.
    document.addEventListener("pointerdown", function () {
      audioContext();
    }, { once: true });
  }
}
