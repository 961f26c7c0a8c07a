"""The log read APIs' query language and paging tokens, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate.core import errors
from passgate.core.errors import PassgateError
from passgate.graph.audit_logs import AUDIT_FILTERS, SIGN_IN_FILTERS
from passgate.graph.odata import parse_filter
from passgate.logs.queries import Comparison, Position

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("userId eq 'ABC'", (Comparison("user_id", "eq", "abc"),)),
    ("USERID EQ 'abc'", (Comparison("user_id", "eq", "abc"),)),
    ("userPrincipalName eq 'O''Brien@Example.com'", (Comparison("user_principal_name", "eq", "o'brien@example.com"),)),
    ("ipAddress eq '2001:DB8::1'", (Comparison("ip_address", "eq", "2001:DB8::1"),)),
    ("createdDateTime ge 2026-03-01T12:00:00Z", (Comparison("created_at", "ge", T),)),
    ("createdDateTime lt 2026-03-01T13:00:00+01:00", (Comparison("created_at", "lt", T),)),
    ("createdDateTime gt 2026-03-01T12:00:00.0000010Z",
     (Comparison("created_at", "gt", T + timedelta(microseconds=1)),)),
    ("createdDateTime le 2026-03-01T12:00Z", (Comparison("created_at", "le", T),)),
    ("status/errorCode ne 0", (Comparison("error_code", "ne", 0),)),
    ("  status/errorCode   eq 50057  and appId eq 'x' ", (Comparison("error_code", "eq", 50057),
                                                          Comparison("app_id", "eq", "x"))),
])
def test_sign_in_filters(text: str, expected: tuple[Comparison, ...]) -> None:
    assert parse_filter(text, SIGN_IN_FILTERS) == expected


def test_audit_filters_reach_into_initiated_by() -> None:
    assert parse_filter("initiatedBy/user/id eq 'A' and category eq 'Policy'", AUDIT_FILTERS) == (
        Comparison("initiated_by_user_id", "eq", "a"), Comparison("category", "eq", "Policy"))


@pytest.mark.parametrize(("text", "code"), [
    ("", errors.UNSUPPORTED_FILTER),
    ("userId", errors.UNSUPPORTED_FILTER),
    ("userId eq 'a' and", errors.UNSUPPORTED_FILTER),
    ("userId eq 'a' or appId eq 'b'", errors.UNSUPPORTED_FILTER),
    ("not userId eq 'a'", errors.UNSUPPORTED_FILTER),
    ("(userId eq 'a')", errors.UNSUPPORTED_FILTER),
    ("userId in ('a', 'b')", errors.UNSUPPORTED_FILTER),
    ("contains(userPrincipalName, 'a')", errors.UNSUPPORTED_FILTER),
    ("createdDateTime ge 2026-13-01T00:00:00Z", errors.INVALID_FILTER_VALUE),
    ("createdDateTime ge 2026-03-01T00:00:00", errors.INVALID_FILTER_VALUE),
    ("createdDateTime ge 17", errors.INVALID_FILTER_VALUE),
    ("createdDateTime ge 0001-01-01T00:00:00+01:00", errors.INVALID_FILTER_VALUE),
    ("createdDateTime ge 9999-12-31T23:59:59-01:00", errors.INVALID_FILTER_VALUE),
    ("status/errorCode eq 1.5", errors.INVALID_FILTER_VALUE),
    ("userId eq 'unterminated", errors.INVALID_FILTER_VALUE),
    ("userId eq '" + "x" * 400 + "'", errors.INVALID_FILTER_VALUE),
])
def test_refusals(text: str, code: errors.ErrorCode) -> None:
    with pytest.raises(PassgateError) as raised:
        parse_filter(text, SIGN_IN_FILTERS)
    assert raised.value.code == code


@given(st.text(max_size=300))
def test_any_filter_text_parses_or_is_refused_with_a_log_query_code(text: str) -> None:
    try:
        parse_filter(text, SIGN_IN_FILTERS)
    except PassgateError as refused:
        assert refused.code in (errors.UNSUPPORTED_FILTER, errors.INVALID_FILTER_VALUE)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
       st.uuids().map(str), st.booleans())
def test_a_position_survives_its_token(at: datetime, row_id: str, descending: bool) -> None:
    position = Position(at, row_id, descending)
    assert Position.parse(position.token(), descending) == position
    with pytest.raises(PassgateError) as raised:
        Position.parse(position.token(), not descending)
    assert raised.value.code == errors.INVALID_SKIP_TOKEN


@given(st.text(max_size=200))
def test_any_other_token_is_refused_cleanly(token: str) -> None:
    try:
        position = Position.parse(token, True)
    except PassgateError as refused:
        assert refused.code == errors.INVALID_SKIP_TOKEN
    else:
        assert position.descending and 0 < len(position.id) <= 36


@given(st.datetimes(), st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_any_written_time_is_read_as_that_instant_or_refused(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    written = moment.replace(tzinfo=zone).isoformat()
    try:
        (found,) = parse_filter(f"createdDateTime ge {written}", SIGN_IN_FILTERS)
    except PassgateError as refused:
        assert refused.code == errors.INVALID_FILTER_VALUE  # only at the ends of the calendar
        assert moment.year in (1, 9999)
    else:
        assert found.value == moment.replace(tzinfo=zone)
