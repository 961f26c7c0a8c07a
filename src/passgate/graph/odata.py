"""The OData query subset the Graph routes understand.

`$top` with keyset paging (`@odata.nextLink` carries `$skiptoken`, the last id of the page, and the
next page starts after it), `$filter=<property> eq '<value>'` on the properties a route names, and
`$select`. Any other system query option is refused rather than silently ignored, so a script never
mistakes an unfiltered or unsorted answer for what it asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Request
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..core import errors
from ..core.errors import PassgateError
from ..directory import is_guid
from ..logs.queries import Comparison, LogQuery, Position, Value
from .base import bad_request, shown

MAX_TOP = 999
DEFAULT_TOP = 100
_SUPPORTED = ("$top", "$skiptoken", "$filter", "$select")
_LINK_SAFE = "$',()"
_EQ = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True, slots=True)
class Query:
    top: int = DEFAULT_TOP
    skiptoken: str | None = None
    filter: tuple[str, str] | None = None  # (Graph property name, value)
    select: tuple[str, ...] | None = None


def filtered(items: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    """A small collection served from memory, narrowed by the query's `eq` filter (case-insensitive, as
    Graph compares strings)."""
    if query.filter is None:
        return items
    prop, value = query.filter
    return [i for i in items if str(i[prop]).lower() == value.lower()]


def _canonical(name: str, known: Sequence[str]) -> str | None:
    return next((k for k in known if k.lower() == name.lower()), None)


def _options(request: Request, supported: Sequence[str]) -> dict[str, str]:
    """The request's system query options, each given once, every one of them supported here."""
    seen: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if not key.startswith("$"):
            continue
        if key not in supported:
            raise bad_request(f"The query option {shown(key, 40)} is not supported on this resource.")
        if key in seen:
            raise bad_request(f"The query option {key} was given more than once.")
        if "\x00" in value:
            raise bad_request(f"The query option {key} contains a NUL character.")
        seen[key] = value
    return seen


def parse(
    request: Request, *, filterable: Sequence[str] = (), selectable: Sequence[str] = (), paged: bool = True
) -> Query:
    """Read the query options, or refuse them with a message that says what is supported."""
    supported = [k for k in _SUPPORTED if not (
        (k in ("$top", "$skiptoken") and not paged) or (k == "$filter" and not filterable)
        or (k == "$select" and not selectable))]
    seen = _options(request, supported)
    top = DEFAULT_TOP
    if "$top" in seen:
        raw = seen["$top"].strip()
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not 1 <= int(raw) <= MAX_TOP:
            raise bad_request(f"$top must be a whole number from 1 to {MAX_TOP}.")
        top = int(raw)
    skiptoken = seen.get("$skiptoken")
    if skiptoken is not None and not is_guid(skiptoken):
        raise bad_request("$skiptoken is not one this server issued; follow @odata.nextLink as given.")
    condition = None
    if "$filter" in seen:
        match = _EQ.match(seen["$filter"])
        prop = _canonical(match.group(1), filterable) if match else None
        if match is None or prop is None:
            raise bad_request(
                f"Unsupported $filter {shown(seen['$filter'])!r}: only "
                + " or ".join(f"{p} eq 'value'" for p in filterable)
                + " is supported here."
            )
        condition = (prop, match.group(2).replace("''", "'"))
    select = None
    if "$select" in seen:
        names = [n.strip() for n in seen["$select"].split(",") if n.strip()]
        chosen = [_canonical(n, selectable) for n in names]
        unknown = [n for n, c in zip(names, chosen, strict=True) if c is None]
        if not names or unknown:
            raise bad_request(
                f"$select names unknown properties ({shown(', '.join(unknown))}); known: {', '.join(selectable)}."
            )
        select = tuple(c for c in chosen if c is not None)
    return Query(top=top, skiptoken=skiptoken.lower() if skiptoken else None, filter=condition, select=select)


def page(session: Session, statement: Select[T], key: InstrumentedAttribute[str], query: Query) -> list[T]:
    """One page in `key` order, fetching one row more than asked to learn whether another page follows."""
    if query.skiptoken is not None:
        statement = statement.where(key > query.skiptoken)
    return list(session.scalars(statement.order_by(key).limit(query.top + 1)))


def link_after(request: Request, skiptoken: str) -> str:
    """This request's URL with every option kept (the filter, the order, $top) and a new $skiptoken."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"]
    items.append(("$skiptoken", skiptoken))
    base = str(request.url).split("?", 1)[0]
    return f"{base}?{urlencode(items, safe=_LINK_SAFE, quote_via=quote)}"


def next_link(request: Request, rows: list[T], query: Query) -> str | None:
    if len(rows) <= query.top:
        return None
    return link_after(request, rows[query.top - 1].id)


def fragment(entity_set: str, query: Query) -> str:
    """The @odata.context fragment, naming the selected properties as Graph does."""
    return f"{entity_set}({','.join(query.select)})" if query.select else entity_set


def project(item: dict[str, Any], query: Query) -> dict[str, Any]:
    """Apply $select: annotations (`@odata.*`) stay, other properties only when selected."""
    if query.select is None:
        return item
    return {k: v for k, v in item.items() if k.startswith("@") or k in query.select}


def collection(
    request: Request,
    context: str,
    rows: list[T],
    query: Query,
    serialise: Callable[[T], dict[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Graph's collection body: @odata.context, value, and @odata.nextLink when more follows."""
    body: dict[str, Any] = {"@odata.context": context, **(extra or {})}
    link = next_link(request, rows, query)
    if link is not None:
        body["@odata.nextLink"] = link
    body["value"] = [project(serialise(row), query) for row in rows[: query.top]]
    return body


# -- the log resources (/auditLogs): `and`-combined comparisons, a time order, keyset tokens ------------
STRING_VALUE, INTEGER_VALUE, DATETIME_VALUE, ANY_VALUE = "string", "integer", "datetime", "any"
_RANGE = ("eq", "ge", "gt", "le", "lt")


@dataclass(frozen=True, slots=True)
class Filterable:
    """A Graph property a log query may compare: the service's field, the literal it takes, the operators."""

    field: str
    kind: str = STRING_VALUE
    operators: tuple[str, ...] = ("eq",)
    casefold: bool = False  # ids and names are stored lower-case; Graph compares them case-insensitively
    # For a collection property filtered as `prop/any(t: t eq 'value')`: each Graph value and what it means.
    members: tuple[tuple[str, Value], ...] = ()


def time_range(field: str) -> Filterable:
    return Filterable(field, DATETIME_VALUE, _RANGE)


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})?)?)"
    r"|(?P<number>-?[0-9]+(?![0-9A-Za-z:.-]))|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<other>\S))"
)
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,7})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            break
        kind = found.lastgroup
        assert kind is not None
        out.append((kind, found.group(kind)))
        position = found.end()
    return out


def _filter_help(filters: Mapping[str, Filterable]) -> str:
    shown_props = []
    for name, spec in filters.items():
        if spec.kind == ANY_VALUE:
            shown_props.append(f"{name}/any(t: t eq {' or '.join(repr(m) for m, _ in spec.members)})")
        else:
            shown_props.append(f"{name} ({', '.join(spec.operators)})")
    return "Supported: " + "; ".join(shown_props) + ", joined with 'and'."


def _literal(name: str, spec: Filterable, kind: str, text: str) -> Value:
    if spec.kind == DATETIME_VALUE:
        found = _ISO.fullmatch(text) if kind == "time" else None
        if found is None:
            raise PassgateError(
                errors.INVALID_FILTER_VALUE,
                f"{name} takes a time such as 2026-01-31T00:00:00Z, without quotes; got {shown(text, 60)}.",
            )
        try:  # Graph's seven fractional digits are cut to the six both databases keep
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError):  # February 31st; year 1 east of UTC
            raise PassgateError(errors.INVALID_FILTER_VALUE, f"{name}: {shown(text, 60)} is not a real time.") from None
    if spec.kind == INTEGER_VALUE:
        if kind != "number" or len(text) > 10:
            raise PassgateError(
                errors.INVALID_FILTER_VALUE, f"{name} takes a whole number without quotes; got {shown(text, 60)}."
            )
        return int(text)
    if kind != "string":
        raise PassgateError(
            errors.INVALID_FILTER_VALUE, f"{name} takes a string in single quotes; got {shown(text, 60)}."
        )
    value = text[1:-1].replace("''", "'")
    if len(value) > 320:
        raise PassgateError(errors.INVALID_FILTER_VALUE, f"The value for {name} is longer than any stored one.")
    return value.lower() if spec.casefold else value


def parse_filter(text: str, filters: Mapping[str, Filterable]) -> tuple[Comparison, ...]:
    """`<property> <op> <literal> [and ...]` over the named properties, or a 400 naming what is not supported."""
    tokens = _tokens(text)
    if not tokens:
        raise PassgateError(errors.UNSUPPORTED_FILTER, "$filter is empty. " + _filter_help(filters))
    known = {name.lower(): name for name in filters}
    out: list[Comparison] = []
    index = 0
    while True:
        if index + 3 > len(tokens):
            raise PassgateError(
                errors.UNSUPPORTED_FILTER,
                f"$filter {shown(text)!r} is incomplete: each part is <property> <operator> <value>. "
                + _filter_help(filters),
            )
        (kind, word), (_, op), (value_kind, value) = tokens[index : index + 3]
        collection = known.get(word.lower().removesuffix("/any")) if word.lower().endswith("/any") else None
        if kind == "word" and collection is not None and filters[collection].kind == ANY_VALUE:
            out.append(_any(collection, filters[collection], tokens[index + 1 : index + 8], text))
            index += 8
            if index == len(tokens):
                return tuple(out)
            _expect_and(tokens[index], filters)
            index += 1
            continue
        name = known.get(word.lower()) if kind == "word" and "/any" not in word.lower() else None
        if name is None:
            what = f"function or construct {shown(word, 40)!r}" if kind == "word" and index + 1 < len(tokens) and (
                tokens[index + 1][1] == "(") else f"property {shown(word, 40)!r}"
            raise PassgateError(errors.UNSUPPORTED_FILTER, f"Filtering on the {what} is not supported. "
                                + _filter_help(filters))
        spec = filters[name]
        if op.lower() not in spec.operators:
            raise PassgateError(
                errors.UNSUPPORTED_FILTER,
                f"The operator {shown(op, 20)!r} is not supported on {name}; use {', '.join(spec.operators)}.",
            )
        if spec.kind == ANY_VALUE:
            raise PassgateError(errors.UNSUPPORTED_FILTER, f"{name} is a collection; write " + _filter_help({
                name: spec}).removeprefix("Supported: ").removesuffix(", joined with 'and'."))
        out.append(Comparison(spec.field, op.lower(), _literal(name, spec, value_kind, value)))
        index += 3
        if index == len(tokens):
            return tuple(out)
        _expect_and(tokens[index], filters)
        index += 1


def _expect_and(token: tuple[str, str], filters: Mapping[str, Filterable]) -> None:
    if token[0] != "word" or token[1].lower() != "and":
        raise PassgateError(
            errors.UNSUPPORTED_FILTER,
            f"Only 'and' may join conditions; {shown(token[1], 20)!r} is not supported. " + _filter_help(filters),
        )


def _any(name: str, spec: Filterable, tokens: list[tuple[str, str]], text: str) -> Comparison:
    """`(t: t eq 'member')`, the one lambda form the log filters take."""
    shape = [kind if kind != "other" else value for kind, value in tokens]
    if shape != ["(", "word", ":", "word", "word", "string", ")"] or tokens[1][1] != tokens[3][1] or (
            tokens[4][1].lower() != "eq"):
        raise PassgateError(
            errors.UNSUPPORTED_FILTER,
            f"$filter {shown(text)!r}: only " + _filter_help({name: spec}).removeprefix("Supported: ").removesuffix(
                ", joined with 'and'.") + " is supported on this collection.",
        )
    member = tokens[5][1][1:-1].replace("''", "'")
    found = dict(spec.members)
    if member not in found:
        raise PassgateError(
            errors.INVALID_FILTER_VALUE,
            f"{name} has no member {shown(member, 40)!r} here; use {' or '.join(repr(m) for m in found)}.",
        )
    return Comparison(spec.field, "eq", found[member])


def parse_log_query(
    request: Request,
    filters: Mapping[str, Filterable],
    time_property: str,
    *,
    max_top: int = 1000,
    default_top: int = 1000,
) -> LogQuery:
    """$filter, $top, $orderby (the time property, desc by default) and $skiptoken for a log resource."""
    seen = _options(request, ("$filter", "$top", "$orderby", "$skiptoken"))
    top = default_top
    if "$top" in seen:
        raw = seen["$top"].strip()
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not 1 <= int(raw) <= max_top:
            raise PassgateError(errors.INVALID_TOP, f"Give a whole number from 1 to {max_top}; got {shown(raw, 20)!r}.")
        top = int(raw)
    descending = True
    if "$orderby" in seen:
        parts = seen["$orderby"].split()
        if not parts or parts[0].lower() != time_property.lower() or len(parts) > 2 or (
                len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise PassgateError(
                errors.UNSUPPORTED_ORDER_BY,
                f"Got {shown(seen['$orderby'], 60)!r}; use '{time_property} desc' or '{time_property} asc'.",
            )
        descending = len(parts) == 1 or parts[1].lower() == "desc"
    after = Position.parse(seen["$skiptoken"].strip(), descending) if "$skiptoken" in seen else None
    where = parse_filter(seen["$filter"], filters) if "$filter" in seen else ()
    return LogQuery(where=where, descending=descending, top=top, after=after)
