"""The window's keyboard shortcuts, in one table: the actions take their keys from it and
Help → Keyboard shortcuts lists it, so the two cannot disagree."""

from __future__ import annotations

from html import escape

from PySide6.QtGui import QKeySequence

# Action name -> (keys, what they do). Portable names: Qt shows Ctrl as ⌘ on macOS.
SHORTCUTS: dict[str, tuple[str, str]] = {
    "change_target": ("Ctrl+T", "Change the selected session's target"),
    "kill": ("Ctrl+K", "Kill the selected session (Delete in the table too)"),
    "kill_all": ("Ctrl+Shift+K", "Kill every session (asks first)"),
    "dismiss": ("Ctrl+D", "Dismiss the selected ended session"),
    "clear_ended": ("Ctrl+Shift+D", "Dismiss every ended session"),
    "copy_join_link": ("Ctrl+Shift+C", "Copy the first join link"),
    "find_in_log": ("Ctrl+F", "Filter the selected session's log"),
    "select_session": ("Alt+1 … Alt+9", "Select the first to ninth session"),
    "preview_session": ("1 … 9", "Put the first to ninth session on the program's preview"),
    "take": ("Space", "Take the preview onto the program (a cut)"),
    "fade": ("F", "Take the preview with a fade (its time is in the Program panel)"),
    "slate": ("B", "The program's slate on or off"),
    "settings": ("Ctrl+,", "Open Settings"),
    "restart": ("Ctrl+Shift+R", "Restart the relay"),
    "shortcuts": ("F1", "Show these shortcuts"),
    "quit": ("Ctrl+Q", "Quit (stops every session properly)"),
}


def key_of(name: str) -> QKeySequence:
    """The key sequence of one action in the table."""
    return QKeySequence(SHORTCUTS[name][0])


def shortcuts_html() -> str:
    """The table as HTML for a message box, in the platform's spelling of the keys."""
    rows = []
    for keys, what in SHORTCUTS.values():
        shown = (
            keys
            if "…" in keys
            else QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)
        )
        keys_cell = f"<b>{escape(shown, quote=False)}</b>&nbsp;&nbsp;"
        rows.append(f"<tr><td>{keys_cell}</td><td>{escape(what, quote=False)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"
