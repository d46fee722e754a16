"""The binary's state and tokens kept in SOAR's ingest_state and auth_state."""

import json

from src import state


def test_the_stored_position_goes_out_with_the_tokens_as_secrets() -> None:
    ingest = {"soar_imap": {"soar_imap_state": 1, "folders": {"f": {"next_uid": 7}}}}
    auth = {
        "oauth": {
            "token": {"access_token": "A", "refresh_token": "R", "expires_at": 1700000123.9},
            "client_id": "cid",
        }
    }
    sent = state.request_state(ingest, {"next_muid": 99}, auth)
    assert sent["folders"] == {"f": {"next_uid": 7}}
    # The reference's keys are only read when we have no state of our own.
    assert "next_muid" not in sent
    blob = json.loads(sent["secrets"]["oauth_token"])
    assert blob == {
        "access_token": "A",
        "refresh_token": "R",
        "expires_at": 1700000123,
        "client_id": "cid",
    }


def test_an_upgraded_reference_asset_keeps_its_poll_position() -> None:
    legacy = {
        "app_version": "3.3.2",
        "first_run": False,
        "next_muid": 42,
        "pending_email_uids": [3, 4],
        "oauth_token": {"access_token": "old", "refresh_token": "r"},
    }
    sent = state.request_state({}, legacy, {})
    assert sent == {
        "first_run": False,
        "next_muid": 42,
        "pending_email_uids": [3, 4],
        "oauth_token": {"access_token": "old", "refresh_token": "r"},
    }
    # 3.4+ encrypted its tokens with a key we do not have: position only.
    encrypted = dict(legacy, is_encrypted=True, oauth_token={"access_token": "gAAAA..."})
    assert "oauth_token" not in state.request_state(None, encrypted, None)


def test_a_returned_state_is_split_into_position_and_tokens() -> None:
    ingest: dict[str, object] = {}
    auth: dict[str, object] = {"oauth": {"session": {"session_id": "s"}, "client_id": "cid"}}
    blob = {
        "access_token": "new",
        "refresh_token": "R2",
        "expires_at": 1800000000,
        "obtained_at": 1799996400,
        "client_id": "cid",
        "token_url": "https://t/token",
        "grant": "refresh_token",
    }
    returned = {"folders": {"f": {"next_uid": 9}}, "secrets": {"oauth_token": json.dumps(blob)}}
    state.store_returned(returned, ingest, auth)
    assert ingest == {"soar_imap": {"folders": {"f": {"next_uid": 9}}}}
    oauth = auth["oauth"]
    assert isinstance(oauth, dict)
    assert oauth["session"] == {"session_id": "s"}, "a pending sign-in survives a refresh"
    assert oauth["token"]["access_token"] == "new"
    assert oauth["token"]["token_type"] == "Bearer"
    # And back: the blob the binary gets next time is the one it handed back.
    assert json.loads(state.token_blob(oauth) or "") == blob


def test_runs_that_must_not_move_the_position_keep_only_the_tokens() -> None:
    auth: dict[str, object] = {}
    state.store_returned({"folders": {"x": {}}, "secrets": {}}, None, auth)
    assert auth == {}
    state.store_returned(None, None, auth)
    assert auth == {}


def test_a_refused_access_token_is_stored_as_empty_not_dropped() -> None:
    oauth = state.oauth_from_blob(json.dumps({"refresh_token": "R", "client_id": "c"}), {})
    assert oauth["token"]["access_token"] == ""
    assert state.token_blob(oauth) == json.dumps({"refresh_token": "R", "client_id": "c"})


def test_a_refresh_token_counts_only_for_the_client_it_was_issued_to() -> None:
    oauth = {"token": {"access_token": "a", "refresh_token": "r"}, "client_id": "one"}
    assert state.has_refresh_token(oauth, "one")
    assert not state.has_refresh_token(oauth, "two")
    assert not state.has_refresh_token({"token": {"access_token": "a"}}, "one")
    assert not state.has_refresh_token(None, "one")
