"""json_codec: pydantic-core's JSON for the database's JSON columns and Graph's answers, interchangeable with the
standard library's both ways (what one writes the other reads back equal), and the standard library's
behaviour where pydantic-core's differs (strings that are not valid Unicode)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate import json_codec

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(VALUES)
def test_what_either_writes_the_other_reads_back_equal(value: Any) -> None:
    assert json.loads(json_codec.dumps(value)) == value
    assert json_codec.loads(json_codec.dumps(value)) == value
    assert json_codec.loads(json.dumps(value)) == value
    assert json_codec.loads(json_codec.dumps_text(value)) == value


def test_the_text_is_compact_utf8_as_graph_answered_before() -> None:
    value = {"displayName": "Zoë Ångström 🔑", "n": [1, 2.5, None, True], "nested": {"a": ""}}
    # Starlette's JSONResponse, which Graph's answers went through: no spaces, characters as themselves.
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert json_codec.dumps(value) == expected
    assert json_codec.dumps_text(value) == expected.decode()


def test_a_lone_surrogate_is_written_escaped_and_read_back() -> None:
    # json.loads accepts "\ud800" from a request body; pydantic-core neither writes nor reads it.
    value = json.loads('{"upn": "a\\ud800b"}')
    written = json_codec.dumps(value)
    assert b"\\ud800" in written
    assert json_codec.loads(written) == value
    assert json_codec.loads(written.decode()) == value


@pytest.mark.parametrize("bad", [b"", b"{", b"[1,]", b"{'a': 1}", b"nul", b"1 2"])
def test_what_is_not_json_raises_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        json_codec.loads(bad)


def test_what_json_cannot_hold_raises_as_before() -> None:
    with pytest.raises((TypeError, ValueError)):
        json_codec.dumps({"a": object()})
