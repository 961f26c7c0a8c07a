"""/auditLogs/signIns and /auditLogs/directoryAudits: shapes per version, filters, order, keyset paging,
permissions, and refusals of what is not supported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient

from passgate.context import Actor, RequestContext
from passgate.core import errors
from passgate.core.errors import PassgateError
from passgate.logs.writer import MULTI_FACTOR, SignInAttempt, authentication_step, record_audit, record_sign_in
from passgate.store.db import Database
from passgate.store.tables import SignIn, User
from tests.integration.graph_helpers import Graph, error_of
from tests.integration.test_signin_support import enrol, passkey_sign_in

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.6778.85 Safari/537.36")
BETA_ONLY = {"authenticationDetails", "authenticationRequirement", "authenticationRequirementPolicies",
             "authenticationMethodsUsed", "authenticationProtocol", "signInEventTypes", "sessionId",
             "originalRequestId", "mfaDetail"}
STRENGTH = {"authenticationStrengthId": "00000000-0000-0000-0000-000000000004",
            "displayName": "Phishing-resistant MFA", "authenticationStrengthResult": "satisfied"}
POLICIES = [
    {"id": "11111111-1111-1111-1111-111111111111", "displayName": "Passkeys for admins",
     "enforcedGrantControls": [], "enforcedSessionControls": [], "result": "success",
     "authenticationStrength": STRENGTH, "conditionsSatisfied": "application,users"},
    {"id": "22222222-2222-2222-2222-222222222222", "displayName": "Block Linux (report-only)",
     "enforcedGrantControls": ["Block"], "enforcedSessionControls": [], "result": "reportOnlyFailure"},
]


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    calls = Graph(client, db)
    calls.token()
    return calls


def users(db: Database, *names: str) -> list[User]:
    out = []
    with db.transaction() as session:
        for name in names:
            user = User(user_principal_name=name, display_name=name.split("@")[0].title(),
                        webauthn_handle=name.encode().ljust(32, b"_"), created_at=T0)
            session.add(user)
            out.append(user)
    return out


def write(db: Database, at: datetime, user: User | None = None, *, app: str | None = None, error: Any = None,
          ip: str = "192.0.2.1", agent: str | None = CHROME_MAC, **attempt: Any) -> str:
    """One entry through the real writer, as a sign-in at `at` would leave it."""
    with db.transaction(write=True) as session:
        if user is not None:
            user = session.get(User, user.id)
        entry = record_sign_in(
            session, RequestContext(now=at, ip_address=ip, user_agent=agent),
            SignInAttempt(method=attempt.pop("method", "Passkey (device-bound)"), user=user,
                          app_id=app, app_display_name=f"App {app}" if app else None, **attempt),
            PassgateError(error) if error is not None else None,
        )
        session.flush()
        return entry.id


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["value"]]


def walk(graph: Graph, first: str) -> tuple[list[str], int]:
    """Every id, following @odata.nextLink to the end; and how many pages that took."""
    seen: list[str] = []
    url: str | None = first
    pages = 0
    while url is not None:
        answer = graph.get(url)
        seen += ids(answer)
        pages += 1
        url = answer.json().get("@odata.nextLink")
        if url is not None:
            assert url.startswith("http://localhost:8443/"), url
    return seen, pages


def times(db: Database) -> dict[str, datetime]:
    with db.transaction() as session:
        return {row.id: row.created_at for row in session.query(SignIn)}


# -- what an entry carries ---------------------------------------------------------------------
def test_a_real_passkey_sign_in_reads_back_with_its_authentication_details(
        client: TestClient, db: Database) -> None:
    user_id, authenticator, passkey = enrol(client, db, "ann@example.com")
    answer, _ = passkey_sign_in(client, authenticator, "ann@example.com")
    assert answer.status_code == 200, answer.text
    graph = Graph(client, db, "beta")
    listed = graph.get(f"/auditLogs/signIns?$filter=userId eq '{user_id}'").json()["value"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["userPrincipalName"] == "ann@example.com" and entry["status"]["errorCode"] == 0
    assert entry["isInteractive"] is True and entry["clientAppUsed"] == "Browser"
    assert entry["conditionalAccessStatus"] == "notApplied" and entry["appliedConditionalAccessPolicies"] == []
    assert entry["authenticationRequirement"] == "singleFactorAuthentication"
    assert entry["signInEventTypes"] == ["interactiveUser"] and entry["authenticationMethodsUsed"] == ["FIDO"]
    (step,) = entry["authenticationDetails"]
    assert step["authenticationMethod"] == "Passkey (device-bound)" and step["succeeded"] is True
    assert passkey["displayName"] in step["authenticationMethodDetail"]
    assert step["authenticationStepRequirement"] == "Primary authentication"
    assert step["authenticationStepDateTime"] == entry["createdDateTime"]
    one = graph.get(f"/auditLogs/signIns/{entry['id']}").json()
    assert one["@odata.context"] == "http://localhost:8443/beta/$metadata#auditLogs/signIns/$entity"
    assert {k: v for k, v in one.items() if k != "@odata.context"} == entry


def test_a_refused_sign_in_reads_back_with_its_code_and_what_to_do(client: TestClient, db: Database) -> None:
    answer = client.post("/api/signin/passkey/options", json={"username": "nobody@example.com"})
    assert answer.status_code == 400
    entry = Graph(client, db, "beta").get("/auditLogs/signIns?$filter=status/errorCode ne 0").json()["value"][0]
    assert entry["status"] == {"errorCode": errors.USER_NOT_FOUND.number,
                               "failureReason": errors.USER_NOT_FOUND.message,
                               "additionalDetails": errors.USER_NOT_FOUND.action}
    assert entry["userId"] == "" and entry["userPrincipalName"] == "nobody@example.com"
    (step,) = entry["authenticationDetails"]
    assert step["succeeded"] is False and step["authenticationStepResultDetail"] == errors.USER_NOT_FOUND.message


def test_v1_shape_leaves_out_beta_properties_and_hides_report_only_results(graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    steps = [authentication_step("Passkey (device-bound)", "YubiKey 5", T0, True),
             authentication_step("Passkey (synced)", "iCloud Keychain", T0 + timedelta(seconds=20), True,
                                 "MFA successfully completed", "Multifactor authentication")]
    entry_id = write(db, T0, ann, app="app-1", applied_policies=POLICIES, conditional_access_status="success",
                     authentication_details=steps, authentication_requirement=MULTI_FACTOR, session_id="s-1",
                     authentication_protocol="oAuth2")
    v1 = graph.get(f"/auditLogs/signIns/{entry_id}").json()
    assert not BETA_ONLY & set(v1)
    assert v1["@odata.context"] == "http://localhost:8443/v1.0/$metadata#auditLogs/signIns/$entity"
    assert v1["conditionalAccessStatus"] == "success"
    assert v1["deviceDetail"]["operatingSystem"] == "MacOs"
    assert v1["deviceDetail"]["browser"] == "Chrome 131.0.6778.85"
    assert v1["resourceId"] == "app-1" and v1["resourceDisplayName"] == "App app-1"
    assert [set(p) for p in v1["appliedConditionalAccessPolicies"]] == [
        {"id", "displayName", "enforcedGrantControls", "enforcedSessionControls", "result"}] * 2
    assert [p["result"] for p in v1["appliedConditionalAccessPolicies"]] == ["success", "unknownFutureValue"]
    prefer = {"Prefer": "include-unknown-enum-members"}
    shown = graph.get(f"/auditLogs/signIns/{entry_id}", headers=prefer).json()
    assert [p["result"] for p in shown["appliedConditionalAccessPolicies"]] == ["success", "reportOnlyFailure"]

    beta = Graph(graph.client, db, "beta")
    full = beta.get(f"/auditLogs/signIns/{entry_id}", headers=prefer).json()
    assert set(full) >= BETA_ONLY
    assert full["appliedConditionalAccessPolicies"] == POLICIES
    assert full["authenticationDetails"] == steps
    assert full["authenticationRequirement"] == MULTI_FACTOR and full["sessionId"] == "s-1"
    assert full["authenticationProtocol"] == "oAuth2"
    assert full["mfaDetail"] == {"authMethod": "Passkey (synced)", "authDetail": "iCloud Keychain"}
    hidden = beta.get(f"/auditLogs/signIns/{entry_id}").json()
    assert [p["result"] for p in hidden["appliedConditionalAccessPolicies"]] == ["success", "unknownFutureValue"]
    assert hidden["appliedConditionalAccessPolicies"][0]["authenticationStrength"] == STRENGTH
    listed = graph.get("/auditLogs/signIns").json()
    assert listed["@odata.context"] == "http://localhost:8443/v1.0/$metadata#auditLogs/signIns"
    assert listed["value"] == [{k: v for k, v in v1.items() if k != "@odata.context"}]


# -- filters ---------------------------------------------------------------------------------------
@pytest.fixture
def spread(db: Database) -> dict[str, Any]:
    """Twelve entries an hour apart: two users, two apps, two IPs, three failures."""
    ann, bob = users(db, "ann@example.com", "bob@example.com")
    made: dict[str, Any] = {"ann": ann.id, "bob": bob.id, "rows": []}
    for hour in range(12):
        who = ann if hour % 2 == 0 else bob
        error = errors.TAP_INVALID if hour in (3, 7) else errors.USER_DISABLED if hour == 10 else None
        row_id = write(db, T0 + timedelta(hours=hour), who, app="app-a" if hour < 6 else "app-b", error=error,
                       ip="192.0.2.1" if hour % 3 else "198.51.100.7")
        made["rows"].append({"id": row_id, "hour": hour, "user": who.id, "app": "app-a" if hour < 6 else "app-b",
                             "error": error.number if error else 0, "ip": "192.0.2.1" if hour % 3 else "198.51.100.7"})
    return made


def expected(spread: dict[str, Any], keep: Any, descending: bool = True) -> list[str]:
    rows = [r for r in spread["rows"] if keep(r)]
    rows.sort(key=lambda r: r["hour"], reverse=descending)
    return [r["id"] for r in rows]


def at(hour: float) -> str:
    return (T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_every_filter_alone_and_combined(graph: Graph, spread: dict[str, Any], version: str) -> None:
    graph.version = version
    ann, bob = spread["ann"], spread["bob"]
    cases: list[tuple[str, Any]] = [
        ("", lambda r: True),
        (f"userId eq '{ann}'", lambda r: r["user"] == ann),
        (f"userId eq '{bob.upper()}'", lambda r: r["user"] == bob),
        ("userPrincipalName eq 'BOB@example.com'", lambda r: r["user"] == bob),
        ("appId eq 'app-b'", lambda r: r["app"] == "app-b"),
        ("ipAddress eq '198.51.100.7'", lambda r: r["ip"] == "198.51.100.7"),
        (f"createdDateTime ge {at(3)}", lambda r: r["hour"] >= 3),
        (f"createdDateTime gt {at(3)}", lambda r: r["hour"] > 3),
        (f"createdDateTime le {at(3)}", lambda r: r["hour"] <= 3),
        (f"createdDateTime lt {at(3)}", lambda r: r["hour"] < 3),
        (f"createdDateTime eq {at(5)}", lambda r: r["hour"] == 5),
        (f"createdDateTime ge {at(2)} and createdDateTime lt {at(8)}", lambda r: 2 <= r["hour"] < 8),
        ("createdDateTime ge 2026-03-01T14:30:00.1234567+02:00", lambda r: r["hour"] >= 1),
        ("status/errorCode eq 0", lambda r: r["error"] == 0),
        ("status/errorCode ne 0", lambda r: r["error"] != 0),
        (f"status/errorCode eq {errors.TAP_INVALID.number}", lambda r: r["error"] == errors.TAP_INVALID.number),
        (f"userId eq '{bob}' and status/errorCode ne 0 and createdDateTime lt {at(9)}",
         lambda r: r["user"] == bob and r["error"] != 0 and r["hour"] < 9),
        (f"appId eq 'app-a' AND userPrincipalName eq 'ann@example.com' and createdDateTime ge {at(1)}",
         lambda r: r["app"] == "app-a" and r["user"] == ann and r["hour"] >= 1),
        ("userId eq 'no-such-user'", lambda r: False),
    ]
    for text, keep in cases:
        query = f"?$filter={quote(text)}" if text else ""
        assert ids(graph.get(f"/auditLogs/signIns{query}")) == expected(spread, keep), text
        joiner = "&" if query else "?"
        ascending = graph.get(f"/auditLogs/signIns{query}{joiner}$orderby=createdDateTime asc")
        assert ids(ascending) == expected(spread, keep, descending=False), text


def test_orderby_spellings(graph: Graph, spread: dict[str, Any]) -> None:
    newest_first = expected(spread, lambda r: True)
    assert ids(graph.get("/auditLogs/signIns?$orderby=createdDateTime")) == newest_first
    assert ids(graph.get("/auditLogs/signIns?$orderby=createdDateTime%20desc")) == newest_first
    assert ids(graph.get("/auditLogs/signIns?$orderby=CreatedDateTime%20ASC")) == newest_first[::-1]


# -- paging ------------------------------------------------------------------------------------------
def test_pages_cover_every_entry_once_with_equal_timestamps_and_keep_the_filter(
        graph: Graph, db: Database) -> None:
    ann, bob = users(db, "ann@example.com", "bob@example.com")
    for second in range(5):
        for _ in range(4):  # four entries share each timestamp: the id breaks the tie
            write(db, T0 + timedelta(seconds=second), ann)
            write(db, T0 + timedelta(seconds=second), bob)
    stored = times(db)
    with db.transaction() as session:
        anns = [r.id for r in session.query(SignIn).filter(SignIn.user_id == ann.id)]
    for order in ("desc", "asc"):
        every, pages = walk(graph, f"/auditLogs/signIns?$top=3&$orderby=createdDateTime%20{order}")
        assert sorted(every) == sorted(stored) and len(every) == len(set(every)) == 40
        assert pages == 14
        keys = [(stored[i], i) for i in every]
        assert keys == sorted(keys, reverse=order == "desc")
        mine, _ = walk(graph, f"/auditLogs/signIns?$top=7&$filter=userId%20eq%20'{ann.id}'"
                              f"&$orderby=createdDateTime%20{order}")
        assert sorted(mine) == sorted(anns) and len(mine) == 20
    first = graph.get(f"/auditLogs/signIns?$top=8&$filter=userId eq '{ann.id}'&$orderby=createdDateTime asc").json()
    options = parse_qs(urlsplit(first["@odata.nextLink"]).query)
    assert options["$filter"] == [f"userId eq '{ann.id}'"] and options["$top"] == ["8"]
    assert options["$orderby"] == ["createdDateTime asc"]


def test_a_page_that_ends_exactly_has_no_next_link(graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    for minute in range(4):
        write(db, T0 + timedelta(minutes=minute), ann)
    assert "@odata.nextLink" not in graph.get("/auditLogs/signIns?$top=4").json()
    assert "@odata.nextLink" in graph.get("/auditLogs/signIns?$top=3").json()


def test_entries_written_after_the_first_page_do_not_shift_the_next(graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    for minute in range(6):
        write(db, T0 + timedelta(minutes=minute), ann)
    first = graph.get("/auditLogs/signIns?$top=3").json()
    write(db, T0 + timedelta(hours=1), ann)  # newer than everything: belongs before page 1
    second = graph.get(first["@odata.nextLink"]).json()
    assert len(set(ids_of(first)) | set(ids_of(second))) == 6


def ids_of(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["value"]]


# -- refusals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "code", "named"), [
    ("$filter=displayName eq 'x'", errors.UNSUPPORTED_FILTER, "displayName"),
    ("$filter=userId ne 'x'", errors.UNSUPPORTED_FILTER, "'ne'"),
    ("$filter=userId eq 'a' or userId eq 'b'", errors.UNSUPPORTED_FILTER, "'or'"),
    ("$filter=startswith(userPrincipalName,'a')", errors.UNSUPPORTED_FILTER, "startswith"),
    ("$filter=riskEventTypes_v2/any(t: t eq 'unfamiliarFeatures')", errors.UNSUPPORTED_FILTER, "riskEventTypes"),
    ("$filter=status/errorCode gt 0", errors.UNSUPPORTED_FILTER, "'gt'"),
    ("$filter=userId eq", errors.UNSUPPORTED_FILTER, "incomplete"),
    ("$filter=", errors.UNSUPPORTED_FILTER, "empty"),
    ("$filter=createdDateTime ge '2026-01-01T00:00:00Z'", errors.INVALID_FILTER_VALUE, "without quotes"),
    ("$filter=createdDateTime ge 2026-01-01", errors.INVALID_FILTER_VALUE, "createdDateTime"),
    ("$filter=createdDateTime ge 2026-02-31T00:00:00Z", errors.INVALID_FILTER_VALUE, "not a real time"),
    ("$filter=status/errorCode eq '50057'", errors.INVALID_FILTER_VALUE, "whole number"),
    ("$filter=status/errorCode eq 99999999999", errors.INVALID_FILTER_VALUE, "whole number"),
    ("$filter=userId eq 42", errors.INVALID_FILTER_VALUE, "single quotes"),
    ("$top=0", errors.INVALID_TOP, "1 to 1000"),
    ("$top=1001", errors.INVALID_TOP, "1 to 1000"),
    ("$top=ten", errors.INVALID_TOP, "1 to 1000"),
    ("$orderby=userId", errors.UNSUPPORTED_ORDER_BY, "createdDateTime desc"),
    ("$orderby=createdDateTime sideways", errors.UNSUPPORTED_ORDER_BY, "createdDateTime asc"),
    ("$skiptoken=not-a-token", errors.INVALID_SKIP_TOKEN, "nextLink"),
    ("$skiptoken=MXxkfDk5OTk5OTk5OTk5OTk5OTk5OTk5OTl8eA", errors.INVALID_SKIP_TOKEN, "nextLink"),
    ("$skip=10", errors.INVALID_REQUEST, "$skip"),
    ("$top=5&$top=6", errors.INVALID_REQUEST, "more than once"),
])
def test_unsupported_queries_are_refused_with_a_code_naming_the_problem(
        graph: Graph, query: str, code: errors.ErrorCode, named: str) -> None:
    for version in ("v1.0", "beta"):
        graph.version = version
        answer = graph.get(f"/auditLogs/signIns?{query}")
        assert answer.status_code == code.status, (query, answer.text)
        error = error_of(answer)
        assert error["code"] == code.name and named in error["message"], (query, error)


def test_a_token_for_the_other_order_is_refused(graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    for minute in range(3):
        write(db, T0 + timedelta(minutes=minute), ann)
    link = graph.get("/auditLogs/signIns?$top=1").json()["@odata.nextLink"]
    token = parse_qs(urlsplit(link).query)["$skiptoken"][0]
    answer = graph.get(f"/auditLogs/signIns?$top=1&$orderby=createdDateTime%20asc&$skiptoken={token}")
    assert error_of(answer)["code"] == errors.INVALID_SKIP_TOKEN.name


def test_unknown_ids_are_404(graph: Graph) -> None:
    for path in ("/auditLogs/signIns/6f0f0e6e-0000-4000-8000-000000000000", "/auditLogs/signIns/" + "x" * 300,
                 "/auditLogs/directoryAudits/6f0f0e6e-0000-4000-8000-000000000000"):
        assert error_of(graph.get(path))["code"] == errors.NOT_FOUND.name


def test_reading_logs_needs_audit_log_read_all(graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    entry = write(db, T0, ann)
    for path in ("/auditLogs/signIns", f"/auditLogs/signIns/{entry}", "/auditLogs/directoryAudits"):
        for version in ("v1.0", "beta"):
            graph.version = version
            assert graph.get(path, token="").status_code == 401
            assert error_of(graph.get(path, token="")) ["code"] == errors.INVALID_TOKEN.name
            denied = graph.get(path, permissions=("User.Read.All", "Policy.Read.All"))
            assert denied.status_code == 403 and "AuditLog.Read.All" in error_of(denied)["message"]
            assert graph.get(path, permissions=("AuditLog.Read.All",)).status_code == 200


# -- directory audits ----------------------------------------------------------------------------------
def test_directory_audits_in_graph_shape_filtered_and_paged(graph: Graph, db: Database) -> None:
    admin = Actor(kind="user", id="aaaaaaaa-0000-4000-8000-000000000001", display_name="Adele",
                  user_principal_name="adele@example.com")
    with db.transaction(write=True) as session:
        for minute in range(5):
            ctx = RequestContext(now=T0 + timedelta(minutes=minute), ip_address="192.0.2.9",
                                 actor=admin if minute % 2 else Actor(kind="app", id="app-9", display_name="Script"))
            record_audit(session, ctx, "Update user", category="UserManagement" if minute < 3 else "Policy",
                         operation="Update", target_type="User", target_id=f"user-{minute}",
                         changes=[{"displayName": "accountEnabled", "oldValue": True, "newValue": False}],
                         details={"why": "test"})
    base = "/auditLogs/directoryAudits"
    listed = graph.get(base).json()
    assert listed["@odata.context"] == "http://localhost:8443/v1.0/$metadata#auditLogs/directoryAudits"
    ours = [a for a in listed["value"] if a["activityDisplayName"] == "Update user"]
    assert [a["targetResources"][0]["id"] for a in ours] == [f"user-{m}" for m in (4, 3, 2, 1, 0)]
    newest = ours[0]
    assert newest["initiatedBy"] == {"user": None, "app": {"appId": "app-9", "displayName": "Script",
                                                           "servicePrincipalId": None, "servicePrincipalName": None}}
    assert newest["targetResources"][0]["modifiedProperties"] == [
        {"displayName": "accountEnabled", "oldValue": "true", "newValue": "false"}]
    assert newest["additionalDetails"] == [{"key": "why", "value": "test"}]
    assert newest["result"] == "success" and newest["activityDateTime"] == at(4 / 60)

    def targets(query: str) -> list[str]:
        answer = graph.get(f"{base}?{query}")
        assert answer.status_code == 200, answer.text
        return [a["targetResources"][0]["id"] for a in answer.json()["value"]
                if a["activityDisplayName"] == "Update user"]

    assert targets("$filter=initiatedBy/user/id eq 'AAAAAAAA-0000-4000-8000-000000000001'") == ["user-3", "user-1"]
    assert targets("$filter=initiatedBy/user/userPrincipalName eq 'adele@example.com'") == ["user-3", "user-1"]
    assert targets("$filter=initiatedBy/app/appId eq 'app-9'") == ["user-4", "user-2", "user-0"]
    assert targets("$filter=category eq 'Policy'") == ["user-4", "user-3"]
    window = f"$filter=activityDateTime ge {at(1 / 60)} and activityDateTime lt {at(3 / 60)}"
    assert targets(window) == ["user-2", "user-1"]
    oldest_first = targets("$filter=category eq 'UserManagement'&$orderby=activityDateTime asc")
    assert oldest_first == ["user-0", "user-1", "user-2"]
    every, pages = walk(graph, f"{base}?$top=2&$filter=activityDisplayName eq 'Update user'")
    assert len(every) == len(set(every)) == 5 and pages == 3
    one = graph.get(f"{base}/{newest['id']}").json()
    assert {k: v for k, v in one.items() if k != "@odata.context"} == newest
    for query, code in (("$filter=targetResources/any(t: t/id eq 'x')", errors.UNSUPPORTED_FILTER),
                        ("$orderby=createdDateTime", errors.UNSUPPORTED_ORDER_BY),
                        ("$filter=activityDateTime ge yesterday", errors.INVALID_FILTER_VALUE)):
        assert error_of(graph.get(f"{base}?{query}"))["code"] == code.name


def test_an_sso_entry_names_its_browser_session_and_an_old_style_caller_gets_defaults(
        graph: Graph, db: Database) -> None:
    (ann,) = users(db, "ann@example.com")
    entry_id = write(db, T0, ann, app="app-1", method="Passkey", method_detail="Previously satisfied",
                     details={"sessionId": "0f0f0f0f-0000-4000-8000-000000000001", "protocol": "oidc"}, agent=None)
    beta = Graph(graph.client, db, "beta")
    entry = beta.get(f"/auditLogs/signIns/{entry_id}").json()
    assert entry["sessionId"] == "0f0f0f0f-0000-4000-8000-000000000001"
    assert entry["authenticationDetails"][0]["authenticationStepResultDetail"] == (
        "First factor requirement satisfied by claim in the token")
    assert entry["deviceDetail"]["operatingSystem"] == "" and entry["deviceDetail"]["browser"] == ""
    assert entry["authenticationProtocol"] == "none" and entry["mfaDetail"] == {"authMethod": None, "authDetail": None}
