"""Credentials in stream URLs never reach a screen, a log or a settings file.

``rtsp://user:secret@cam/stream`` is shown as ``rtsp://user:***@cam/stream``; the settings keep
the URL without its credentials (``strip_credentials``) and the app asks for them again.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://userinfo@host... ; userinfo may hold ':' (user:password) and percent-escapes
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@:\s]*)(?::[^/@\s]*)?@")


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (the user name stays)."""

    def sub(m: re.Match) -> str:
        user = m.group("user")
        return f"{m.group('scheme')}{user}:***@" if user else f"{m.group('scheme')}***@"

    return _USERINFO.sub(sub, text)


def strip_credentials(url: str) -> str:
    """The URL without ``user:password@`` (what may be stored)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def has_credentials(url: str) -> bool:
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None
