"""Temporary Access Pass methods through the Graph-compatible admin API (entra-graph.md §3.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate.core import tap as tap_rules
from passgate.methods_policy import TAP as TAP_CONFIGURATION
from passgate.signin import taps
from passgate.store.db import Database
from passgate.store.tables import Setting, TemporaryAccessPass
from tests.integration.graph_helpers import Graph, error_of

TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
FIELDS = {
    "@odata.type", "id", "temporaryAccessPass", "createdDateTime", "startDateTime", "lifetimeInMinutes",
    "isUsableOnce", "isUsable", "methodUsabilityReason",
}


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


@pytest.fixture
def user(graph: Graph) -> dict[str, Any]:
    return graph.new_user("newhire@contoso.example", "New Hire")


def methods(user: dict[str, Any]) -> str:
    return f"/users/{user['id']}/authentication/temporaryAccessPassMethods"


def _stored(db: Database) -> list[TemporaryAccessPass]:
    with db.transaction() as session:
        return list(session.scalars(select(TemporaryAccessPass)))


def _set_policy(db: Database, **values: Any) -> None:
    with db.transaction() as session:
        session.merge(Setting(name=TAP_CONFIGURATION, value=values))


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_issue_shows_the_pass_once_and_never_again(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    created = graph.post(methods(user), {})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"] == (
        f"http://localhost:8443/v1.0/$metadata#users('{user['id']}')/authentication/temporaryAccessPassMethods/$entity"
    )
    assert set(body) - {"@odata.context"} == FIELDS
    assert body["@odata.type"] == TAP_TYPE
    secret = body["temporaryAccessPass"]
    assert isinstance(secret, str)
    assert len(secret) == 8
    assert set(secret) <= set(tap_rules.ALPHABET)
    assert (body["lifetimeInMinutes"], body["isUsableOnce"]) == (60, False)
    assert (body["isUsable"], body["methodUsabilityReason"]) == (True, "EnabledByPolicy")
    assert before - timedelta(seconds=5) <= _parse(body["createdDateTime"]) <= datetime.now(UTC)
    assert body["startDateTime"] == body["createdDateTime"]
    assert body["startDateTime"].endswith("Z")

    # Stored only as a hash that verifies the secret.
    [row] = _stored(db)
    assert row.id == body["id"]
    assert secret not in row.pass_hash
    assert taps.matches(row, secret)
    assert not taps.matches(row, secret.swapcase())

    listed = graph.get(methods(user))
    assert listed.status_code == 200
    assert listed.json()["@odata.context"] == (
        f"http://localhost:8443/v1.0/$metadata#users('{user['id']}')/authentication/temporaryAccessPassMethods"
    )
    [item] = listed.json()["value"]
    one = graph.get(f"{methods(user)}/{body['id']}").json()
    by_upn = graph.get(f"/users/NEWHIRE@contoso.example/authentication/temporaryAccessPassMethods/{body['id']}").json()
    readonly = graph.get(f"{methods(user)}/{body['id']}", permissions=("UserAuthenticationMethod.Read.All",)).json()
    expected = {**body, "temporaryAccessPass": None}
    del expected["@odata.context"]
    for read in (item, one, by_upn, readonly):
        read.pop("@odata.context", None)
        assert read == expected
    for text in (listed.text, graph.get(f"{methods(user)}/{body['id']}").text):
        assert secret not in text

    [record] = graph.audits("Admin registered security info")
    assert secret not in repr((record.target_resources, record.additional_details))
    assert record.initiated_by["app"]["appId"]
    assert record.target_resources[0]["id"] == user["id"]
    assert {"displayName": "TemporaryAccessPass.lifetimeInMinutes", "oldValue": None, "newValue": 60} in (
        record.target_resources[0]["modifiedProperties"]
    )


def test_graph_example_body_with_future_start(graph: Graph, user: dict[str, Any]) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    created = graph.post(
        methods(user),
        {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "lifetimeInMinutes": 480, "isUsableOnce": False},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert _parse(body["startDateTime"]) == start
    assert (body["lifetimeInMinutes"], body["isUsableOnce"]) == (480, False)
    assert (body["isUsable"], body["methodUsabilityReason"]) == (False, "NotYetValid")


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("2031-06-05T10:00:00+02:00", datetime(2031, 6, 5, 8, 0, tzinfo=UTC)),
        ("2031-06-05T10:00:00", datetime(2031, 6, 5, 10, 0, tzinfo=UTC)),
        ("2031-06-05T10:00:00.1234567Z", datetime(2031, 6, 5, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2031-06-05", datetime(2031, 6, 5, tzinfo=UTC)),
    ],
)
def test_start_times_are_read_as_iso_8601_in_utc(
    graph: Graph, user: dict[str, Any], given: str, meant: datetime
) -> None:
    body = graph.post(methods(user), {"startDateTime": given}).json()
    assert _parse(body["startDateTime"]) == meant
    assert body["methodUsabilityReason"] == "NotYetValid"


def test_usability_reasons(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    past = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    expired = graph.post(methods(user), {"startDateTime": past, "lifetimeInMinutes": 60}).json()
    assert (expired["isUsable"], expired["methodUsabilityReason"]) == (False, "Expired")
    once = graph.post(methods(user), {"isUsableOnce": True}).json()
    assert (once["isUsableOnce"], once["isUsable"], once["methodUsabilityReason"]) == (True, True, "EnabledByPolicy")
    _set_policy(db, state="disabled")
    listed = graph.get(methods(user)).json()["value"]
    assert [(p["isUsable"], p["methodUsabilityReason"]) for p in listed] == [(False, "DisabledByPolicy")]


def test_reissue_replaces_the_old_pass(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    first = graph.post(methods(user), {"lifetimeInMinutes": 60}).json()
    second = graph.post(methods(user), {"lifetimeInMinutes": 120, "isUsableOnce": True}).json()
    assert second["id"] != first["id"]
    assert second["temporaryAccessPass"] != first["temporaryAccessPass"]
    [row] = _stored(db)
    assert row.id == second["id"]
    assert not taps.matches(row, first["temporaryAccessPass"])
    assert taps.matches(row, second["temporaryAccessPass"])
    assert [p["id"] for p in graph.get(methods(user)).json()["value"]] == [second["id"]]
    assert graph.get(f"{methods(user)}/{first['id']}").status_code == 404
    records = graph.audits("Admin registered security info")
    assert len(records) == 2
    details = {d["key"]: d["value"] for d in records[1].additional_details}
    assert details["replacedMethodId"] == first["id"]
    assert details["methodId"] == second["id"]


def test_delete_removes_the_pass_and_is_audited(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    issued = graph.post(methods(user), {}).json()
    gone = graph.delete(f"{methods(user)}/{issued['id'].upper()}")
    assert gone.status_code == 204
    assert gone.content == b""
    assert graph.get(methods(user)).json()["value"] == []
    assert graph.get(f"{methods(user)}/{issued['id']}").status_code == 404
    assert graph.delete(f"{methods(user)}/{issued['id']}").status_code == 404
    assert _stored(db) == []
    [record] = graph.audits("Admin deleted security info")
    assert record.target_resources[0]["userPrincipalName"] == "newhire@contoso.example"
    assert {"key": "methodId", "value": issued["id"]} in record.additional_details


@pytest.mark.parametrize("lifetime", [9, 10, 59, 481, 43200, 43201, 10**12, -60, 0])
def test_lifetime_outside_policy_is_refused_and_keeps_the_old_pass(
    graph: Graph, db: Database, user: dict[str, Any], lifetime: int
) -> None:
    kept = graph.post(methods(user), {}).json()
    before = graph.snapshot()
    answer = graph.post(methods(user), {"lifetimeInMinutes": lifetime})
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "TemporaryAccessPassLifetimeOutOfRange"
    assert error["innerError"]["passgateCode"] == 135105
    assert "lifetimeInMinutes must be between 60 and 480" in error["message"]
    assert graph.snapshot() == before
    [row] = _stored(db)
    assert taps.matches(row, kept["temporaryAccessPass"])


def test_lifetime_bounds_follow_the_policy(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    _set_policy(db, minimumLifetimeInMinutes=10, maximumLifetimeInMinutes=43200, defaultLifetimeInMinutes=30)
    assert graph.post(methods(user), {}).json()["lifetimeInMinutes"] == 30
    assert graph.post(methods(user), {"lifetimeInMinutes": 10}).status_code == 201
    assert graph.post(methods(user), {"lifetimeInMinutes": 43200}).status_code == 201
    assert graph.post(methods(user), {"lifetimeInMinutes": 9}).status_code == 400
    assert graph.post(methods(user), {"lifetimeInMinutes": 43201}).status_code == 400


def test_one_time_only_policy_refuses_multi_use(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    _set_policy(db, isUsableOnce=True)
    graph.token()
    before = graph.snapshot()
    refused = graph.post(methods(user), {"isUsableOnce": False})
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "TemporaryAccessPassMultiUseNotAllowed"
    assert graph.snapshot() == before
    assert graph.post(methods(user), {}).json()["isUsableOnce"] is True


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"startDateTime": "tomorrow"}, "startDateTime"),
        ({"startDateTime": "2031-13-01T00:00:00Z"}, "startDateTime"),
        ({"startDateTime": "2031-06-05T25:00:00Z"}, "startDateTime"),
        ({"startDateTime": ""}, "startDateTime"),
        ({"startDateTime": 1717545600}, "startDateTime"),
        ({"startDateTime": "0001-01-01T00:00:00+05:00"}, "startDateTime"),
        ({"startDateTime": "9999-12-31T23:59:59Z"}, "startDateTime"),
        ({"startDateTime": "1900-01-01T00:00:00Z"}, "startDateTime"),
        ({"lifetimeInMinutes": "60"}, "lifetimeInMinutes"),
        ({"lifetimeInMinutes": 60.5}, "lifetimeInMinutes"),
        ({"lifetimeInMinutes": True}, "lifetimeInMinutes"),
        ({"isUsableOnce": "yes"}, "isUsableOnce"),
        ({"isUsableOnce": 1}, "isUsableOnce"),
        ({"temporaryAccessPass": "ChosenByMe"}, "temporaryAccessPass"),
        ({"isUsable": True}, "isUsable"),
        ({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod"}, "@odata.type"),
    ],
)
def test_invalid_body_names_the_property_and_saves_nothing(
    graph: Graph, user: dict[str, Any], body: dict[str, Any], named: str
) -> None:
    before = graph.snapshot()
    answer = graph.post(methods(user), body)
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "Request_BadRequest"
    assert named in error["message"]
    assert graph.snapshot() == before


def test_explicit_nulls_take_the_policy_defaults(graph: Graph, user: dict[str, Any]) -> None:
    body = {"@odata.type": TAP_TYPE, "startDateTime": None, "lifetimeInMinutes": None, "isUsableOnce": None}
    created = graph.post(methods(user), body)
    assert created.status_code == 201, created.text
    assert (created.json()["lifetimeInMinutes"], created.json()["isUsableOnce"]) == (60, False)


def test_unknown_users_and_method_ids_are_404(graph: Graph, user: dict[str, Any]) -> None:
    other = graph.new_user("other@contoso.example")
    others = graph.post(methods(other), {}).json()
    mine = graph.post(methods(user), {}).json()
    before = graph.snapshot()
    nobody = "00000000-0000-0000-0000-000000000001"
    for path in (
        f"/users/{nobody}/authentication/temporaryAccessPassMethods",
        "/users/ghost@contoso.example/authentication/temporaryAccessPassMethods",
        "/users/%00/authentication/temporaryAccessPassMethods",
    ):
        assert graph.get(path).status_code == 404
        assert graph.post(path, {}).status_code == 404
        assert graph.delete(f"{path}/{mine['id']}").status_code == 404
    for method_id in (others["id"], nobody, "not-a-guid", "x" * 300):
        assert graph.get(f"{methods(user)}/{method_id}").status_code == 404
        answer = graph.delete(f"{methods(user)}/{method_id}")
        assert answer.status_code == 404
        assert error_of(answer)["code"] == "Request_ResourceNotFound"
    assert graph.snapshot() == before
    for body in (b"{", b"[]", b"null"):
        assert graph.call("POST", methods(user), content=body).status_code == 400
    assert graph.snapshot() == before
