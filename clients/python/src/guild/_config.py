"""Connection settings, from arguments or the environment the ``nats`` CLI and Guild's
own tools read (README.md, "Connecting to NATS")."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import InvalidArgument

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_HOME = ".guild"


@dataclass(frozen=True)
class Settings:
    """Where NATS is, how to authenticate, and where Guild's credentials folder is.

    Every field has the environment variable Guild's CLI and services read:

    ============  ===============  ==============================================
    field         variable         what
    ============  ===============  ==============================================
    url           NATS_URL         server URL(s), comma separated
    creds         NATS_CREDS       a credentials file: the default identity
    nkey          NATS_NKEY        a file holding an nkey seed
    user          NATS_USER        user (a token when no password is given)
    password      NATS_PASSWORD    password
    ca            NATS_CA          CA certificate(s) to trust
    cert, key     NATS_CERT/KEY    a client certificate and its key
    home          GUILD_HOME       Guild's folder (``.guild``): ``<home>/creds``
                                   holds the operator's and agents' credentials
    as_agent      GUILD_AS         act as this agent by default, with
                                   ``<home>/creds/<id>.creds``
    ============  ===============  ==============================================

    Identity, as the CLI decides it: ``creds`` (or another NATS option) when given;
    else ``as_agent``'s credentials in ``<home>/creds``; else the operator's there
    (``operator.creds``, which ``guild dev`` writes) when the file exists.
    """

    url: str = DEFAULT_URL
    creds: Path | None = None
    nkey: Path | None = None
    user: str | None = None
    password: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    home: Path = Path(DEFAULT_HOME)
    as_agent: str | None = None
    #: Seconds a request waits for its reply (a consume waits longer: its own timeout too).
    timeout: float = 10.0
    #: Save credentials received from spawns as ``<home>/creds/<id>.creds`` (mode 0600).
    save_credentials: bool = False
    #: The connection name the server's monitoring shows.
    name: str = "guild-python"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``env`` (``os.environ`` by default); ``overrides`` win."""
        env = os.environ if env is None else env

        def var(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        def path(name: str) -> Path | None:
            value = var(name)
            return Path(value) if value else None

        values: dict[str, object] = {
            "url": var("NATS_URL") or DEFAULT_URL,
            "creds": path("NATS_CREDS"),
            "nkey": path("NATS_NKEY"),
            "user": var("NATS_USER"),
            "password": var("NATS_PASSWORD"),
            "ca": path("NATS_CA"),
            "cert": path("NATS_CERT"),
            "key": path("NATS_KEY"),
            "home": path("GUILD_HOME") or Path(DEFAULT_HOME),
            "as_agent": var("GUILD_AS"),
        }
        for k, v in overrides.items():
            if k not in cls.__dataclass_fields__:
                raise InvalidArgument(f"unknown setting {k!r}", rule="unknown_setting", field=k)
            if v is not None:
                values[k] = Path(v) if k in ("creds", "nkey", "ca", "cert", "key", "home") and isinstance(v, str) else v
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    @property
    def creds_dir(self) -> Path:
        """``<home>/creds``: the CLI's credentials folder."""
        return self.home / "creds"

    @property
    def servers(self) -> list[str]:
        """The server URLs."""
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def check(self) -> None:
        """Refuses contradictory settings, naming the variable."""
        if not self.servers:
            raise InvalidArgument("NATS_URL is empty", rule="empty_url", field="NATS_URL")
        if self.password and not self.user:
            raise InvalidArgument("NATS_PASSWORD needs NATS_USER", rule="password_without_user", field="NATS_PASSWORD")
        if (self.cert is None) != (self.key is None):
            raise InvalidArgument(
                "NATS_CERT and NATS_KEY go together", rule="half_a_certificate", field="NATS_CERT"
            )
        explicit = self.creds or self.nkey or self.user
        if self.as_agent and explicit:
            raise InvalidArgument(
                "GUILD_AS picks the agent's credentials from <home>/creds; with NATS_CREDS "
                "(or another NATS option) give one or the other",
                rule="two_identities",
                field="GUILD_AS",
            )
        if self.timeout <= 0:
            raise InvalidArgument("timeout must be positive", rule="invalid_timeout", field="timeout")

    def tls_context(self) -> ssl.SSLContext | None:
        """A TLS context when the settings ask for TLS."""
        wanted = self.ca or self.cert or any(u.startswith("tls://") for u in self.servers)
        if not wanted:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.cert and self.key:
            ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx
