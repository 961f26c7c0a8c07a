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
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Request
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..directory import is_guid
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


def _canonical(name: str, known: Sequence[str]) -> str | None:
    return next((k for k in known if k.lower() == name.lower()), None)


def parse(
    request: Request, *, filterable: Sequence[str] = (), selectable: Sequence[str] = (), paged: bool = True
) -> Query:
    """Read the query options, or refuse them with a message that says what is supported."""
    seen: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if not key.startswith("$"):
            continue
        if key not in _SUPPORTED or (key in ("$top", "$skiptoken") and not paged) or (
            key == "$filter" and not filterable) or (key == "$select" and not selectable):
            raise bad_request(f"The query option {shown(key, 40)} is not supported on this resource.")
        if key in seen:
            raise bad_request(f"The query option {key} was given more than once.")
        if "\x00" in value:
            raise bad_request(f"The query option {key} contains a NUL character.")
        seen[key] = value
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


def next_link(request: Request, rows: list[T], query: Query) -> str | None:
    if len(rows) <= query.top:
        return None
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"]
    items.append(("$skiptoken", rows[query.top - 1].id))
    base = str(request.url).split("?", 1)[0]
    return f"{base}?{urlencode(items, safe=_LINK_SAFE, quote_via=quote)}"


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
