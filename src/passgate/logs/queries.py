"""Reading the sign-in log and the audit log: filtered, ordered by time, paged by keyset.

A page continues after a position, the (time, id) of the last row of the previous page, never after an
offset: with an index that ends in (time, id) for every filter, page 1,000 is one range scan of $top rows,
the same as page 1, and rows written meanwhile neither repeat nor go missing. The id breaks ties between
rows written in the same microsecond.
"""

from __future__ import annotations

import base64
import binascii
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, literal_column, select, tuple_
from sqlalchemy.orm import Session

from ..core import errors
from ..core.errors import PassgateError
from ..store.tables import DirectoryAudit, SignIn

_FOLLOW = "Follow @odata.nextLink exactly as it was returned."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")
Value = str | int | bool | datetime


@dataclass(frozen=True, slots=True)
class Comparison:
    """`field op value`, with `field` one of the names in SIGN_IN_FIELDS or AUDIT_FIELDS."""

    field: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last row's time and id, and the order it was read in."""

    at: datetime
    id: str
    descending: bool

    def token(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)  # exact: a float would round
        raw = f"1|{'d' if self.descending else 'a'}|{micros}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def parse(token: str, descending: bool) -> Position:
        """A token this module issued for the same order, or INVALID_SKIP_TOKEN."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            version, order, micros, row_id = raw.split("|")
            at = _EPOCH + timedelta(microseconds=int(micros))
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
            raise PassgateError(errors.INVALID_SKIP_TOKEN, _FOLLOW) from None
        if version != "1" or len(row_id) > 36 or not row_id:
            raise PassgateError(errors.INVALID_SKIP_TOKEN, _FOLLOW)
        if order != ("d" if descending else "a"):
            raise PassgateError(
                errors.INVALID_SKIP_TOKEN, "It was issued for the other $orderby direction; keep the query as it was."
            )
        return Position(at, row_id, descending)


@dataclass(frozen=True, slots=True)
class LogQuery:
    where: tuple[Comparison, ...] = ()
    descending: bool = True
    top: int = 1000
    after: Position | None = None


# The fields a query may compare, by the Python name the Graph adapter maps its property names to.
SIGN_IN_FIELDS: Mapping[str, Any] = {
    "id": SignIn.id,
    "created_at": SignIn.created_at,
    "user_id": SignIn.user_id,
    "user_principal_name": SignIn.user_principal_name,
    "app_id": SignIn.app_id,
    "ip_address": SignIn.ip_address,
    "error_code": SignIn.error_code,
    "correlation_id": SignIn.correlation_id,
    "is_interactive": SignIn.is_interactive,
    "conditional_access_status": SignIn.conditional_access_status,
}
AUDIT_FIELDS: Mapping[str, Any] = {
    "id": DirectoryAudit.id,
    "activity_at": DirectoryAudit.activity_at,
    "activity_display_name": DirectoryAudit.activity_display_name,
    "category": DirectoryAudit.category,
    "correlation_id": DirectoryAudit.correlation_id,
    "logged_by_service": DirectoryAudit.logged_by_service,
    "operation_type": DirectoryAudit.operation_type,
    "result": DirectoryAudit.result,
    "initiated_by_user_id": DirectoryAudit.initiated_by["user"]["id"].as_string(),
    "initiated_by_user_principal_name": DirectoryAudit.initiated_by["user"]["userPrincipalName"].as_string(),
    "initiated_by_user_display_name": DirectoryAudit.initiated_by["user"]["displayName"].as_string(),
    "initiated_by_app_id": DirectoryAudit.initiated_by["app"]["appId"].as_string(),
    "initiated_by_app_display_name": DirectoryAudit.initiated_by["app"]["displayName"].as_string(),
}


def _condition(column: Any, op: str, value: Value) -> ColumnElement[bool]:
    # Inline, not bound parameters: only a literal lets the databases match the partial indexes (failures,
    # error_code <> 0; non-interactive entries), including in the generic plan of a prepared statement.
    if isinstance(value, bool):
        value = literal_column("true" if value else "false")  # type: ignore[assignment]
    elif op == "ne" and value == 0:
        value = literal_column("0")  # type: ignore[assignment]
    operations = {
        "eq": column.__eq__, "ne": column.__ne__, "gt": column.__gt__,
        "ge": column.__ge__, "lt": column.__lt__, "le": column.__le__,
    }
    result: ColumnElement[bool] = operations[op](value)
    return result


def _statement(
    statement: Select[Any], fields: Mapping[str, Any], time: Any, row_id: Any, query: LogQuery
) -> Select[Any]:
    for comparison in query.where:
        statement = statement.where(_condition(fields[comparison.field], comparison.op, comparison.value))
    if query.after is not None:
        key = tuple_(time, row_id)
        mark = tuple_(query.after.at, query.after.id)
        statement = statement.where(key < mark if query.descending else key > mark)
    order = (time.desc(), row_id.desc()) if query.descending else (time.asc(), row_id.asc())
    # One row more than asked: it tells whether another page follows.
    return statement.order_by(*order).limit(query.top + 1)


def sign_ins_statement(query: LogQuery) -> Select[Any]:
    return _statement(select(SignIn.__table__), SIGN_IN_FIELDS, SignIn.created_at, SignIn.id, query)


# A sign-in log entry as a page reads it: its columns by name. Not ORM objects, whose loading cost a third of a
# 1,000-entry page (nothing here changes them), nor SQLAlchemy's rows, whose attribute access (0.7 µs each, 30
# columns) cost most of turning an entry into Graph's JSON; a named tuple's costs a tenth of it.
SignInRow = namedtuple("SignInRow", [column.key for column in SignIn.__table__.columns])  # type: ignore[misc]


def sign_ins(session: Session, query: LogQuery) -> list[Any]:
    """One page of sign-ins (SignInRow), plus the first row of the next page when there is one."""
    make = SignInRow._make
    return [make(row) for row in session.execute(sign_ins_statement(query))]


def directory_audits(session: Session, query: LogQuery) -> list[DirectoryAudit]:
    """One page of audit records, plus the first row of the next page when there is one."""
    statement = _statement(select(DirectoryAudit), AUDIT_FIELDS, DirectoryAudit.activity_at, DirectoryAudit.id, query)
    return list(session.scalars(statement))


def sign_in(session: Session, entry_id: str) -> SignIn:
    entry = session.get(SignIn, entry_id) if len(entry_id) <= 36 else None
    if entry is None:
        raise PassgateError(errors.NOT_FOUND, "No sign-in log entry has this id.")
    return entry


def directory_audit(session: Session, record_id: str) -> DirectoryAudit:
    record = session.get(DirectoryAudit, record_id) if len(record_id) <= 36 else None
    if record is None:
        raise PassgateError(errors.NOT_FOUND, "No audit record has this id.")
    return record


def next_position(rows: Sequence[Any], query: LogQuery, time_of: str) -> Position | None:
    """Where the next page starts, when this one was full and another row followed."""
    if len(rows) <= query.top:
        return None
    last = rows[query.top - 1]
    return Position(getattr(last, time_of), last.id, query.descending)
