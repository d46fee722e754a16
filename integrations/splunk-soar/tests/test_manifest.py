"""The manifest the SDK generates agrees with the binary's app.json: the same app, the
same actions, and every asset key with the same name, type, default and choices, so an
IMAP asset's settings carry over."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

APP_DIR = Path(__file__).resolve().parents[1]
#: The SDK's fixed identifier for test connectivity; SOAR maps it to the platform's.
SDK_IDENTIFIERS = {"test_asset_connectivity": "test_connectivity"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("manifest") / "manifest.json"
    soarapps = Path(sys.executable).parent / "soarapps"
    subprocess.run(
        [str(soarapps), "manifests", "create", str(out), "."],
        cwd=APP_DIR,
        check=True,
        capture_output=True,
    )
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


@pytest.fixture(scope="module")
def app_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "app.json").read_text())
    return loaded


def test_the_same_app(manifest: dict[str, Any], app_json: dict[str, Any]) -> None:
    for key in ("appid", "name", "type", "product_vendor", "product_name", "publisher"):
        assert manifest[key] == app_json[key], key
    # The package is the binary's version.
    assert manifest["app_version"] == app_json["app_version"]
    assert manifest["main_module"] == "src.app:app"


def test_the_same_actions(manifest: dict[str, Any], app_json: dict[str, Any]) -> None:
    binary = {
        SDK_IDENTIFIERS.get(a["identifier"], a["identifier"]): a["action"]
        for a in app_json["actions"]
    }
    sdk = {a["identifier"]: a["action"] for a in manifest["actions"]}
    assert sdk == binary
    by_id = {a["identifier"]: a for a in manifest["actions"]}
    binary_by_id = {a["identifier"]: a for a in app_json["actions"]}
    # get email takes the reference's parameters, with the same types.
    assert _params(by_id["get_email"]) == _params(binary_by_id["get_email"])
    # on poll takes the platform's poll parameters.
    assert set(by_id["on_poll"]["parameters"]) == set(binary_by_id["on_poll"]["parameters"])
    # parse email reads a vault file instead of a path on the host.
    parse = _params(by_id["parse_email"])
    assert parse.pop("vault_id") == "string"
    assert parse.pop("ingest_email") == "boolean"
    binary_parse = _params(binary_by_id["parse_email"])
    assert binary_parse.pop("path") == "string"
    assert parse == binary_parse


def _params(action: dict[str, Any]) -> dict[str, str]:
    return {name: p["data_type"] for name, p in action.get("parameters", {}).items()}


def test_every_asset_key_as_the_binary_declares_it(
    manifest: dict[str, Any], app_json: dict[str, Any]
) -> None:
    sdk = manifest["configuration"]
    binary = app_json["configuration"]
    assert list(sdk) == sorted(binary, key=lambda key: binary[key]["order"])
    for key, declared in binary.items():
        generated = sdk[key]
        for field in ("data_type", "required", "description", "order"):
            assert generated.get(field) == declared.get(field), (key, field)
        assert generated.get("default") == declared.get("default"), key
        assert generated.get("value_list") == declared.get("value_list"), key
    secrets = {key for key, spec in sdk.items() if spec["data_type"] == "password"}
    assert secrets == {"password", "client_secret", "refresh_token"}


def test_the_oauth_webhook_is_declared(manifest: dict[str, Any]) -> None:
    webhook = manifest["webhook"]
    assert webhook["requires_auth"] is False, "the provider's redirect carries no SOAR session"
    assert [r["url_pattern"] for r in webhook["routes"]] == ["oauth"]
