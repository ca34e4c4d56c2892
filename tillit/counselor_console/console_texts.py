"""Texts that `static/console.js` needs at run time.

Keys are what console.js looks up; values are English gettext msgids in the `console`
domain (config/locales/<lang>/LC_MESSAGES/console.po). The console route translates them
and hands them to the page in the `tillit-config` JSON data island as `texts`.

Placeholders are `{name}` and are filled in by console.js, so a translation must keep
them unchanged. No plural forms here: wordings are chosen so that none is needed.
"""

from __future__ import annotations

CLIENT_TEXTS: dict[str, str] = {
    # Connection state (top bar)
    "connecting": "Connecting…",
    "connected": "Connected",
    "reconnecting": "Connection lost. Reconnecting…",
    "no_crypto": "This browser cannot encrypt chats. Use an up-to-date browser over HTTPS.",
    # Queue
    "danger_now": "Danger now",
    "acute_marked": "Acute concern marked",
    "waiting": "Waiting",
    "accept": "Accept",
    "accept_label": "Accept chat: {summary}",
    "accepting": "Opening…",
    "accept_failed": "Could not accept the chat: {message}",
    "queue_failed": "Could not load the queue: {message}",
    "not_stated": "Not stated",
    # New-chat signals (a desktop notification shows these and nothing else)
    "signal_new": "New chat waiting",
    "signal_urgent": "Urgent chat waiting",
    "signal_blocked": "The browser blocks notifications from this site. Allow them in the "
    "browser's site settings and tick the box again.",
    "signal_unsupported": "This browser cannot show notifications.",
    # Chat tabs and panels
    "chat_label": "Chat {n}",
    "unread": "Unread messages: {n}",
    "ended_short": "Ended",
    "you": "You",
    "visitor": "Visitor",
    "feeling": "Feeling",
    "resource": "Referral card",
    "resource_closed": "{label} – closed now. {hours}",
    "sending": "Sending…",
    "send_failed": "Not sent: {message}",
    "retry": "Try again",
    "undecryptable": "A message could not be decrypted.",
    "earlier_unavailable": "Earlier messages are not available after reload.",
    "key_changed": "The visitor's key changed. New safety code: compare it with the visitor again.",
    "own_key_changed": "New keys after reconnecting. New safety code: compare it with the visitor "
    "again.",
    "rejoin_failed": "Could not reopen the chat: {message}",
    "chat_gone": "This chat is no longer open on the server.",
    # Chat ended
    "ended_visitor": "The visitor left the chat.",
    "ended_quick_exit": "The visitor left by quick exit. They may not be safe right now.",
    "ended_timeout": "The chat timed out.",
    "ended_counselor": "The chat was ended by a counselor.",
    "ended_other": "The chat has ended.",
    "quick_exit_notice": "{chat}: the visitor left by quick exit.",
    # Closing
    "close_failed": "Could not close the chat: {message}",
    "close_conflict": "Not closed yet: a child is involved and a concern is marked. Record a "
    "reporting decision first.",
    "close_indicators": "Concern indicators marked: {list}",
    "none": "none",
    # Queue, transfer
    "busy": "You have as many chats as you may have at once. Close one first.",
    "back_to_queue": "Back to the queue",
    "transfer_failed": "Could not transfer the chat: {message}",
    "transferred": "{chat} was handed over.",
    "transferred_to_me": "A colleague ({name}) handed you a chat.",
    "returned": "{chat} went back to the queue.",
    # Reporting workflow
    "legal_reference": "Duty to report: {ref}",
    "others_reference": "Everyone else should report: {ref}",
    "police_reference": "Disclosure to the police is allowed, not required: {ref}",
    "suggested": "suggested",
    "wording_language": "Text in {language}:",
    "wording_fallback": "No text in {visitor}: this one is in {language}.",
    "choose": "Choose…",
    "report_failed": "Not saved: {message}",
    "decision_invalid": "The decision was not recorded: {message}",
    "decision_recorded": "Recorded: {decision}",
    # Notes
    "note_failed": "The note was not saved: {message}",
    # Generic
    "error": "Something went wrong: {message}",
    "logout_failed": "Could not log out. Try again.",
    "dismiss": "Dismiss",
    "show": "Show",
    # Mailboxes (E12)
    "mb_unlocking": "Unlocking…",
    "mb_unlocked": "Mailboxes unlocked.",
    "mb_unlock_failed": "Could not unlock. Check the password.",
    "mb_none": "No mailboxes with messages.",
    "mb_mine": "Yours",
    "mb_assigned": "With {name}",
    "mb_unassigned": "Not assigned",
    "mb_counts": "{unread} new, {total} in all",
    "mb_expires": "Deleted on {day} if unused",
    "mb_locked": "Unlock your mailbox key to read and answer.",
    "mb_locked_message": "Locked: unlock your mailbox key to read.",
    "mb_unreadable": "This message cannot be opened with your key.",
    "mb_from_visitor": "Visitor",
    "mb_from_counselor": "Counselor",
    "mb_proposed": "Proposed time: {time} ({minutes} min)",
    "mb_reply_sent": "Answer sent.",
    "mb_time_missing": "Choose a date and time first.",
    "mb_time_sent": "Time proposed.",
    "mb_transferred": "Transferred to {name}.",
    "mb_made_in_chat": "The visitor made a return code in this chat.",
    "mb_open": "Open the mailbox",
}
