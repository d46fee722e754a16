"""soar-imap as a Splunk SOAR app: the actions of the IMAP app, each run by the bundled
soar-imap binary (one JSON request, its containers and response mapped to SOAR).

The app's id, name and asset keys are the binary's app.json, which are the reference IMAP
app's: an existing IMAP asset's settings carry over. Run an action from a shell with
`python -m src.app action on_poll -a asset.json -p params.json` (see the README).

No `from __future__ import annotations` here: the SDK reads these annotations at run time.
"""

from collections.abc import Iterator
from typing import Any

from pydantic import ConfigDict
from soar_sdk.abstract import SOARClient
from soar_sdk.action_results import ActionOutput, OutputField
from soar_sdk.app import App
from soar_sdk.logging import getLogger
from soar_sdk.models.artifact import Artifact
from soar_sdk.models.container import Container
from soar_sdk.params import OnPollParams, Param, Params
from soar_sdk.webhooks.models import WebhookRequest, WebhookResponse

from . import connectivity, lookup, oauth, poll
from .as_given import AsGiven
from .asset import Asset

logger = getLogger()

APP_ID = "9f2e9f72-b0e5-45d6-92a7-09ef820476c1"

app = App(
    name="IMAP",
    app_type="email",
    logo="logo.svg",
    logo_dark="logo_dark.svg",
    product_vendor="Generic",
    product_name="IMAP",
    publisher="soar-imap",
    appid=APP_ID,
    python_version="3.13",
    fips_compliant=False,
    asset_cls=Asset,
).enable_webhooks(default_requires_auth=False)


@app.test_connectivity()
def test_connectivity(soar: SOARClient[Any], asset: Asset) -> None:
    """Connect, log in (signing in first when OAuth needs it), list folders and EXAMINE the
    asset's folder; the server's TLS, certificate and folder facts as progress."""
    connectivity.test(
        asset, soar, app.actions_manager, lambda: app.get_webhook_url(oauth.CALLBACK_ROUTE)
    )


@app.on_poll()
def on_poll(
    params: OnPollParams, soar: SOARClient[Any], asset: Asset
) -> Iterator[Container | Artifact]:
    """Ingest new mail of the asset's folder as containers, never marking it read."""
    yield from poll.poll(params, soar, asset, app.actions_manager)


class GetEmailParams(Params, AsGiven):
    """The reference app's get email parameters."""

    id: str | None = Param(
        description="Message UID to get", required=False, primary=True, cef_types=["imap email id"]
    )
    container_id: int | None = Param(
        description="Container ID to get email data from",
        required=False,
        primary=True,
        cef_types=["phantom container id"],
    )
    folder: str | None = Param(
        description="Folder name of email to get (used when id is given)", required=False
    )
    ingest_email: bool = Param(
        description="Create a container and artifacts", required=False, default=False
    )


class EmailHeaders(ActionOutput):
    """The email's top-level headers, decoded; the last of a repeated name. Every header
    is there; these are the ones declared for playbooks."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    Subject: str | None = OutputField()
    From: str | None = OutputField()
    To: str | None = OutputField()
    CC: str | None = OutputField()
    Date: str | None = OutputField()
    message_id: str | None = OutputField(alias="Message-ID")
    reply_to: str | None = OutputField(alias="Reply-To")
    return_path: str | None = OutputField(alias="Return-Path")
    Received: str | None = OutputField()
    authentication_results: str | None = OutputField(alias="Authentication-Results")
    received_spf: str | None = OutputField(alias="Received-SPF")
    content_type: str | None = OutputField(alias="Content-Type")
    x_originating_ip: str | None = OutputField(alias="X-Originating-IP")


class IngestSummary(ActionOutput):
    """The SOAR container the email went into, with `ingest_email`."""

    container_id: int | None = OutputField(cef_types=["phantom container id"])


@app.action(  # type: ignore[arg-type]  # the SDK's NamedCallable wants a settable __globals__
    description="Get an email's headers from the server by UID, or from a container",
    action_type="investigate",
    read_only=True,
    render_as="json",
    summary_type=IngestSummary,
)
def get_email(params: GetEmailParams, soar: SOARClient[Any], asset: Asset) -> EmailHeaders:
    """Fetch one email by UID (or read a container's raw email) and return its decoded
    headers; with ingest_email, save it as a container with its artifacts."""
    headers, container_id = lookup.get_email(params, soar, asset, app.actions_manager)
    if params.ingest_email:
        soar.set_summary(IngestSummary(container_id=container_id))
        soar.set_message(f"Container id: {container_id}")
    else:
        soar.set_message("Email not ingested.")
    return EmailHeaders.model_validate(headers)


class ParseEmailParams(Params, AsGiven):
    """An email from the vault or as text."""

    vault_id: str | None = Param(
        description="Vault id of an .eml file", required=False, primary=True, cef_types=["vault id"]
    )
    raw_email: str | None = Param(description="The message text (RFC 5322)", required=False)
    id: int | None = Param(
        description="UID to use in identifiers (non-negative integer, default 0)",
        required=False,
        cef_types=["imap email id"],
    )
    folder: str | None = Param(
        description=(
            "Folder hashed into the container's source data identifier"
            " (default: the asset's folder)"
        ),
        required=False,
    )
    ingest_email: bool = Param(
        description="Create a container and artifacts", required=False, default=False
    )


class Authentication(ActionOutput):
    """The receiving servers' SPF, DKIM and DMARC results, as written, and one verdict."""

    spf: str | None = OutputField(example_values=["pass", "softfail", "fail"])
    dkim: str | None = OutputField(example_values=["pass", "fail", "policy"])
    dmarc: str | None = OutputField(example_values=["pass", "bestguesspass", "fail"])
    verdict: str | None = OutputField(example_values=["pass", "fail", "suspicious", "undetermined"])


class ArtifactCef(ActionOutput):
    """An indicator's CEF fields; every field is there, these are declared for playbooks."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    sourceAddress: str | None = OutputField(cef_types=["ip"])
    fileHash: str | None = OutputField(cef_types=["hash"])
    requestURL: str | None = OutputField(cef_types=["url"])
    destinationDnsDomain: str | None = OutputField(cef_types=["domain"])
    fromEmail: str | None = OutputField(cef_types=["email"])
    toEmail: str | None = OutputField(cef_types=["email"])
    fileName: str | None = OutputField(cef_types=["file name"])
    vaultId: str | None = OutputField(cef_types=["vault id"])
    wrappedURL: str | None = OutputField()
    urlRewriter: str | None = OutputField(example_values=["microsoft_safelinks"])
    displayedURL: str | None = OutputField()
    originatingIp: str | None = OutputField(cef_types=["ip"])
    senderMismatch: list[str] | None = OutputField(example_values=["reply_to_domain"])
    emailAuthentication: Authentication | None = None


class UnwrappedUrl(ActionOutput):
    """A link a mail gateway rewrote: the original URL, the link as sent, and who wrapped it."""

    url: str | None = OutputField(cef_types=["url"])
    wrapped_url: str | None = OutputField()
    rewriter: str | None = OutputField(example_values=["microsoft_safelinks", "proofpoint_v3"])


class DisplayedUrl(ActionOutput):
    """A link whose text names another site than the link goes to."""

    url: str | None = OutputField(cef_types=["url"])
    displayed: str | None = OutputField()


class ParsedArtifact(ActionOutput):
    """One artifact the email gives."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    name: str | None = OutputField(example_values=["URL Artifact"])
    cef: ArtifactCef | None = None
    source_data_identifier: str | None = OutputField()


class ParsedEmail(ActionOutput):
    """The container the email makes, as a poll would make it."""

    container_name: str | None = OutputField()
    source_data_identifier: str | None = OutputField()
    artifact_count: int | None = OutputField()
    parse_warnings: list[str] | None = OutputField()
    headers: EmailHeaders | None = None
    artifacts: list[ParsedArtifact] | None = None
    email_authentication: Authentication | None = None
    sender_mismatch: list[str] | None = OutputField(example_values=["reply_to_domain"])
    originating_ip: str | None = OutputField(cef_types=["ip"])
    unwrapped_urls: list[UnwrappedUrl] | None = None
    displayed_urls: list[DisplayedUrl] | None = None


class ParseSummary(IngestSummary):
    """How many artifacts, and the container with `ingest_email`."""

    artifact_count: int | None = OutputField()


@app.action(  # type: ignore[arg-type]  # the SDK's NamedCallable wants a settable __globals__
    description="Parse an email from the vault or as text into the container a poll would make",
    action_type="investigate",
    read_only=True,
    render_as="json",
    summary_type=ParseSummary,
)
def parse_email(params: ParseEmailParams, soar: SOARClient[Any], asset: Asset) -> ParsedEmail:
    """Parse an .eml from the vault (or raw text) with no server: its headers, indicators
    and warnings; with ingest_email, save it as a container with its artifacts."""
    parsed, container_id = lookup.parse_email(params, soar, asset, app.actions_manager)
    soar.set_summary(
        ParseSummary(artifact_count=parsed.get("artifact_count"), container_id=container_id)
    )
    soar.set_message(
        f"Parsed email into container {parsed.get('container_name')!r} with"
        f" {parsed.get('artifact_count')} artifacts"
        + (f" (container id: {container_id})" if container_id is not None else "")
    )
    return ParsedEmail.model_validate(parsed)


@app.webhook(oauth.CALLBACK_ROUTE, allowed_methods=["GET"])
def oauth_callback(request: WebhookRequest[Asset]) -> WebhookResponse:
    """Where the OAuth provider redirects after the administrator signs in."""
    return oauth.callback(request)


if __name__ == "__main__":
    app.cli()
