"""Who a connection is: the principal a Guild credential names, and where credentials
are kept (the spawn replies this client received, and the CLI's credentials folder)."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from pathlib import Path

from .errors import InvalidArgument

# An agent id, mission id or message id: one subject token (proto-schemas/README.md).
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JWT = re.compile(r"-----BEGIN NATS USER JWT-----\s*(\S+)\s*------END NATS USER JWT------")

OPERATOR = "operator"
OBSERVER = "observer"


def check_id(value: object, field: str) -> str:
    """``value`` as an id, or :class:`InvalidArgument` naming ``field``."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidArgument(
            f"{value!r} is not an id: 1 to 64 of A-Z a-z 0-9 - _",
            rule="invalid_id",
            field=field,
        )
    return value


def principal_of_creds(text: str) -> str | None:
    """The principal a ``.creds`` file was minted for: its user JWT's ``name``
    (``operator``, ``observer`` or an agent id); ``None`` when it is not Guild's."""
    m = _JWT.search(text)
    if not m:
        return None
    parts = m.group(1).split(".")
    if len(parts) != 3:
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(body))
    except (ValueError, json.JSONDecodeError):
        return None
    name = claims.get("name") if isinstance(claims, dict) else None
    if isinstance(name, str) and ID_PATTERN.match(name):
        return name
    return None


def inbox_prefix(principal: str) -> str:
    """The reply-inbox prefix a principal's credentials allow."""
    if principal in (OPERATOR, OBSERVER):
        return f"_INBOX.{principal}"
    return f"_INBOX.agent.{principal}"


class CredentialStore:
    """Credentials by principal: those received from spawns and re-issues (in memory,
    and written to the folder when ``save`` is on), then ``<folder>/<id>.creds``."""

    def __init__(self, folder: Path | None, save: bool = False) -> None:
        self.folder = folder
        self.save = save
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, principal: str, creds: str) -> Path | None:
        """Keeps ``creds`` for ``principal``; returns the file written, if any."""
        with self._lock:
            self._known[principal] = creds
        if not (self.save and self.folder):
            return None
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{principal}.creds"
        tmp = path.with_suffix(".creds.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(creds)
        os.replace(tmp, path)
        return path

    def forget(self, principal: str) -> None:
        """Drops what was received for ``principal`` (the file, if any, stays)."""
        with self._lock:
            self._known.pop(principal, None)

    def find(self, principal: str) -> str | None:
        """The credentials text for ``principal``, or ``None``."""
        with self._lock:
            known = self._known.get(principal)
        if known is not None:
            return known
        if self.folder is None:
            return None
        path = self.folder / f"{principal}.creds"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def where(self, principal: str) -> str:
        """Where credentials for ``principal`` would be looked for, for messages."""
        if self.folder is None:
            return "this client's spawn replies (no credentials folder)"
        return f"this client's spawn replies and {self.folder / (principal + '.creds')}"
