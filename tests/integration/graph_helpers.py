"""A small Graph client for the admin API tests: app tokens by permission, calls, and database snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from passgate.context import RequestContext
from passgate.oidc.clients import GRAPH_PERMISSIONS, create_app_registration
from passgate.oidc.tokens import app_access_token
from passgate.store.db import Database
from passgate.store.tables import (
    App,
    DirectoryAudit,
    Group,
    GroupMember,
    RoleAssignment,
    TemporaryAccessPass,
    User,
)

ALL = tuple(sorted(GRAPH_PERMISSIONS))
GRAPH_ID = "https://graph.microsoft.com/v1.0/directoryObjects/"


class Graph:
    """Calls /v1.0 (or /beta) as an app holding the permissions asked for; the default holds them all."""

    def __init__(self, client: TestClient, db: Database, version: str = "v1.0") -> None:
        self.client = client
        self.db = db
        self.version = version
        self._tokens: dict[tuple[str, ...], str] = {}
        self.app_ids: dict[tuple[str, ...], str] = {}

    # -- tokens ------------------------------------------------------------------------------
    def token(self, *permissions: str) -> str:
        key = tuple(sorted(permissions)) if permissions else ALL
        if key not in self._tokens:
            with self.db.transaction() as session:
                new = create_app_registration(session, RequestContext(), f"graph test {len(self._tokens)}", list(key))
                app_id, secret = new.app.app_id, new.client_secret
            answer = self.client.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret},
            )
            assert answer.status_code == 200, answer.text
            self._tokens[key] = answer.json()["access_token"]
            self.app_ids[key] = app_id
        return self._tokens[key]

    def expired_token(self) -> str:
        """A correctly signed token for an app holding every permission, which expired an hour ago."""
        self.token()
        services = self.client.app.state.services  # type: ignore[attr-defined]
        with self.db.transaction() as session:
            app = session.scalar(select(App).where(App.app_id == self.app_ids[ALL]))
            assert app is not None
            issued = datetime.now().astimezone() - timedelta(hours=2)
            return app_access_token(services.keys.ring(RequestContext()), services.settings, app, issued, 3600)

    # -- calls -------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        token: str | None = None,
        permissions: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = dict(headers or {})
        if token is None:
            token = self.token(*permissions)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else f"/{self.version}{path}"
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
            answer: Response = self.client.request(method, url, content=content, headers=sent)
        else:
            answer = self.client.request(method, url, json=json, headers=sent)
        return answer

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Response:
        return self.call("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Response:
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.call("DELETE", path, **kwargs)

    # -- fixtures in the directory -------------------------------------------------------------
    def new_user(self, upn: str, display_name: str | None = None, **extra: Any) -> dict[str, Any]:
        answer = self.post("/users", {"userPrincipalName": upn, "displayName": display_name or upn, **extra})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def new_group(self, name: str) -> dict[str, Any]:
        answer = self.post(
            "/groups",
            {"displayName": name, "mailEnabled": False, "mailNickname": name.replace(" ", ""), "securityEnabled": True},
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    # -- what is stored ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Row counts and every user's stored values: equal snapshots mean nothing was changed."""
        with self.db.transaction() as session:
            counts = {
                table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (User, Group, GroupMember, RoleAssignment, TemporaryAccessPass)
            }
            # Registering the test's own apps is audited too; only directory changes matter here.
            counts["audits"] = session.scalar(
                select(func.count()).select_from(DirectoryAudit)
                .where(DirectoryAudit.category != "ApplicationManagement")
            )
            users = [
                (u.id, u.user_principal_name, u.display_name, u.mail, u.mail_nickname, u.account_enabled)
                for u in session.scalars(select(User).order_by(User.id))
            ]
            passes = [(t.id, t.pass_hash) for t in session.scalars(select(TemporaryAccessPass))]
        return {"counts": counts, "users": users, "passes": passes}

    def audits(self, activity: str | None = None) -> list[DirectoryAudit]:
        with self.db.transaction() as session:
            query = select(DirectoryAudit).order_by(DirectoryAudit.activity_at, DirectoryAudit.id)
            if activity is not None:
                query = query.where(DirectoryAudit.activity_display_name == activity)
            return list(session.scalars(query))


def error_of(answer: Response) -> dict[str, Any]:
    """The Graph error body, checked for shape."""
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "innerError"} <= set(error), error
    assert {"request-id", "date"} <= set(error["innerError"]), error
    return dict(error)
