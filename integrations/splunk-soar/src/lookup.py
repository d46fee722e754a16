"""`get email` and `parse email`: one email's headers (and, for parse email, its
indicators), optionally saved as a container with its attachments in the vault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.exceptions import ActionFailure

from .asset import Asset
from .binary import JSON
from .ingest import VaultFiles, save_one
from .runner import first_data, run_action


def positive_integer(name: str, value: object) -> int | None:
    """A positive integer parameter (a number or a string of digits); None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        number = None
    if number is None or number <= 0:
        raise ActionFailure(f"parameters.{name} must be a positive integer, got {value!r}")
    return number


def get_email(
    params: Any,  # noqa: ANN401 (the app's GetEmailParams)
    soar: SOARClient[Any],
    asset: Asset,
    actions: ActionsManager,
) -> tuple[JSON, int | None]:
    """The email's decoded headers, and its SOAR container id when `ingest_email`.

    By `container_id` (it wins over `id`, as in the reference): the email is the
    container's `raw_email` in SOAR, and an ingested copy keeps the container's source
    data identifier, so it lands in that same container. By `id`: fetched from the
    server by UID, from `folder` or the asset's folder."""
    ingest = bool(params.ingest_email)
    container_id = positive_integer("container_id", params.container_id)
    with VaultFiles(soar) as files:
        if container_id is not None:
            raw, sdi, uid = _container_email(soar, container_id)
            email = files.path / "email.eml"
            email.write_bytes(raw)
            parameter = {"path": str(email), "id": uid}
            containers, outcome = run_action(
                "parse_email", asset, soar, actions, [parameter], vault_dir=files.path
            )
            headers = first_data(outcome).get("headers") or {}
            if not ingest:
                return headers, None
            found = dict(containers[0])
            found["source_data_identifier"] = sdi
            return headers, save_one(actions, soar, found, files)
        if params.id is None or not str(params.id).strip():
            raise ActionFailure(
                "get email needs parameters.id (the email's IMAP UID) or parameters.container_id"
            )
        parameter = {"id": params.id, "ingest_email": ingest}
        if params.folder:
            parameter["folder"] = params.folder
        containers, outcome = run_action(
            "get_email", asset, soar, actions, [parameter], vault_dir=files.path
        )
        headers = first_data(outcome)
        if not ingest or not containers:
            return headers, None
        return headers, save_one(actions, soar, containers[0], files)


def _container_email(soar: SOARClient[Any], container_id: int) -> tuple[bytes, str, int]:
    """A container's raw email (its bytes), source data identifier and UID, as the
    reference reads them."""
    try:
        container = soar.get(f"rest/container/{container_id}").json()
    except Exception as error:
        raise ActionFailure(f"cannot read container {container_id} from SOAR: {error}") from error
    data = container.get("data") if isinstance(container, dict) else None
    raw = data.get("raw_email") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(raw, str) or not raw:
        raise ActionFailure(
            "Container does not seem to be created from an IMAP email, raw_email data not found."
        )
    tokens = str(container.get("source_data_identifier") or "").split()
    if not tokens or not tokens[-1].isdigit():
        raise ActionFailure(
            "Container does not seem to be created from an IMAP email,"
            " email id not in proper format."
        )
    uid = int(tokens[-1])
    # The folder part is kept as it is (an old `<uid>` SDI becomes `<uid> : <uid>`).
    sdi = f"{tokens[0]} : {uid}"
    # Mail that was not UTF-8 is kept one character per byte (`raw_email_encoding`).
    encoding = "latin-1" if data.get("raw_email_encoding") == "latin-1" else "utf-8"
    return raw.encode(encoding), sdi, uid


def parse_email(
    params: Any,  # noqa: ANN401 (the app's ParseEmailParams)
    soar: SOARClient[Any],
    asset: Asset,
    actions: ActionsManager,
) -> tuple[JSON, int | None]:
    """The parsed email (name, SDI, headers, artifacts, warnings), and its SOAR container
    id when `ingest_email`."""
    vault_id = (params.vault_id or "").strip()
    raw = params.raw_email or ""
    if vault_id and raw:
        raise ActionFailure("give either parameters.vault_id or parameters.raw_email, not both")
    with VaultFiles(soar) as files:
        parameter: JSON = {}
        if vault_id:
            parameter["path"] = str(_vault_file(soar, vault_id))
        elif raw:
            parameter["raw_email"] = raw
        else:
            raise ActionFailure(
                "parse email needs parameters.vault_id (an .eml file in the vault) or"
                " parameters.raw_email (the message text)"
            )
        if params.id is not None:
            parameter["id"] = params.id
        if params.folder:
            parameter["folder"] = params.folder
        containers, outcome = run_action(
            "parse_email", asset, soar, actions, [parameter], vault_dir=files.path
        )
        data = dict(first_data(outcome))
        found = containers[0]
        data["artifacts"] = [
            {key: value for key, value in artifact.items() if key != "container_id"}
            for artifact in found.get("artifacts") or []
        ]
        if not params.ingest_email:
            return data, None
        return data, save_one(actions, soar, found, files)


def _vault_file(soar: SOARClient[Any], vault_id: str) -> Path:
    try:
        attachments = soar.vault.get_attachment(vault_id=vault_id)
    except Exception as error:
        raise ActionFailure(
            f"cannot look up vault id {vault_id} in the SOAR vault: {error}"
        ) from error
    for attachment in attachments:
        path = getattr(attachment, "path", None)
        if path and Path(path).is_file():
            return Path(path)
    raise ActionFailure(f"no file with vault id {vault_id} in the SOAR vault")
