"""The asset: every configuration key of the binary's app.json, same names, types and
defaults, so an IMAP asset's settings carry over (a test keeps the two in step)."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from soar_sdk.asset import AssetField, BaseAsset

from .as_given import AsGiven


class Asset(BaseAsset, AsGiven):
    """An IMAP mailbox, as the binary's `config`."""

    server: str = AssetField(description="Server IP/Hostname (no port; see port)", required=True)
    port: int | None = AssetField(
        description="IMAP port (default 993 with use_ssl or OAuth, else 143)", required=False
    )
    auth_type: str = AssetField(
        description="Authentication Mechanism to Use",
        required=False,
        default="Basic",
        value_list=["Basic", "OAuth"],
    )
    username: str = AssetField(description="Username (also the XOAUTH2 user)", required=True)
    password: str | None = AssetField(
        description="Password (Basic authentication)", required=False, sensitive=True
    )
    client_id: str | None = AssetField(description="OAuth Client ID", required=False)
    client_secret: str | None = AssetField(
        description="OAuth Client Secret", required=False, sensitive=True
    )
    auth_url: str = AssetField(
        description="OAuth Authorization URL",
        required=False,
        default="https://accounts.google.com/o/oauth2/auth",
    )
    token_url: str = AssetField(
        description="OAuth Token URL", required=False, default="https://oauth2.googleapis.com/token"
    )
    scopes: str = AssetField(
        description="OAuth API Scope (JSON formatted list, or space separated)",
        required=False,
        default='["https://mail.google.com/"]',
    )
    folder: str = AssetField(
        description="Folder to ingest mails from (default is inbox)",
        required=False,
        default="inbox",
    )
    ingest_manner: str = AssetField(
        description="How to ingest",
        required=True,
        default="oldest first",
        value_list=["oldest first", "latest first"],
    )
    first_run_max_emails: int = AssetField(
        description="Maximum emails to poll first time", required=True, default=2000
    )
    max_emails: int = AssetField(description="Maximum emails to poll", required=True, default=100)
    use_ssl: bool = AssetField(
        description="Use SSL (implicit TLS); without it the connector upgrades with STARTTLS",
        required=False,
        default=False,
    )
    verify_server_cert: bool = AssetField(
        description="Verify the server certificate chain and host name",
        required=False,
        default=True,
    )
    ca_cert: str | None = AssetField(
        description="Path of a PEM CA certificate to trust in addition to the system store",
        required=False,
    )
    allow_plaintext_auth: bool = AssetField(
        description="Allow sending credentials without TLS (not recommended)",
        required=False,
        default=False,
    )
    timeout_secs: int = AssetField(
        description="Connect, read and write timeout of every network step, in seconds",
        required=False,
        default=60,
    )
    max_email_size_mb: int = AssetField(
        description="Larger emails are ingested with headers only and a note",
        required=False,
        default=50,
    )
    data_dir: str | None = AssetField(
        description=(
            "Directory of the state store and the vault (default $SOAR_IMAP_HOME, else the XDG"
            " data directory)"
        ),
        required=False,
    )
    refresh_token: str | None = AssetField(
        description="OAuth refresh token for headless operation", required=False, sensitive=True
    )
    oauth_grant: str = AssetField(
        description="OAuth grant used to obtain access tokens",
        required=False,
        default="refresh_token",
        value_list=["refresh_token", "client_credentials"],
    )
    extract_attachments: bool = AssetField(
        description="Extract Attachments", required=False, default=True
    )
    extract_urls: bool = AssetField(description="Extract URLs", required=False, default=True)
    extract_ips: bool = AssetField(description="Extract IPs", required=False, default=True)
    extract_domains: bool = AssetField(
        description="Extract Domain Names", required=False, default=True
    )
    extract_hashes: bool = AssetField(description="Extract Hashes", required=False, default=True)
    add_body_to_header_artifacts: bool = AssetField(
        description="Add email body to the Email Artifact", required=False, default=False
    )
    after_ingest: str = AssetField(
        description=(
            "What to do to a mail once its container is delivered: none (leave it), mark_seen,"
            " flag or move (to after_ingest_folder)"
        ),
        required=False,
        default="none",
        value_list=["none", "mark_seen", "flag", "move"],
    )
    after_ingest_folder: str | None = AssetField(
        description=(
            "Folder processed mail is moved to with after_ingest move (created when missing)"
        ),
        required=False,
    )

    # A missing required key arrives as None, for the binary to name (see as_given.py).
    @model_validator(mode="before")
    @classmethod
    def _missing_is_none(cls, values: Any) -> Any:  # noqa: ANN401 (pydantic's raw input)
        if isinstance(values, dict):
            for name, info in cls.model_fields.items():
                if info.is_required():
                    values.setdefault(name, None)
        return values

    def binary_config(self) -> dict[str, Any]:
        """The binary's `config`: every key that is set, as given."""
        config: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                config[name] = value
        return config

    def __repr__(self) -> str:
        # Never the secrets, whoever prints the asset.
        return f"Asset(server={self.server!r}, username={self.username!r}, folder={self.folder!r})"

    __str__ = __repr__
