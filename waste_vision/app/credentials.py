"""Asking for a stream's user name and password again: the settings keep stream URLs without
their credentials (``redact.strip_credentials``), so reopening one at launch asks for them."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` put back (percent-escaped)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def ask_credentials(
    parent: QWidget | None, shown_url: str, user: str | None
) -> tuple[str, str] | None:
    """(user, password) typed in a small dialog, the password hidden; None if cancelled."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Stream login")
    form = QFormLayout(dialog)
    text = QLabel(f"{shown_url} needs its login again (passwords are not saved).")
    text.setWordWrap(True)
    form.addRow(text)
    user_edit = QLineEdit(user or "")
    password_edit = QLineEdit()
    password_edit.setEchoMode(QLineEdit.EchoMode.Password)
    form.addRow("User name:", user_edit)
    form.addRow("Password:", password_edit)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form.addRow(buttons)
    (password_edit if user else user_edit).setFocus()
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return user_edit.text().strip(), password_edit.text()
