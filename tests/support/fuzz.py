"""Hostile input for the API fuzz tests, and the one property every answer must have.

The property is the project's standard: bad input gets a 4xx in Glance's error format,
never a 500.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support import databases

#: Deterministic for CI; the API fixture lives for the whole test, not one example.
#: ``GLIMPSE_FUZZ_EXAMPLES=<n>`` searches deeper, with a new random seed each run.
_DEEP = os.environ.get("GLIMPSE_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_DEEP or 100),
    derandomize=not _DEEP,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated SQLite database for a fuzz module's ``database_url`` fixture.

    The fuzz tests run on SQLite only, to stay quick: what they exercise is parsing and
    validation; the limits other databases put on stored values are pinned by plain
    tests that run on every backend.
    """
    url = databases.create_database("sqlite", str(tmp_path_factory.mktemp("fuzz-db")))
    yield url
    databases.drop_database(url)


def fewer(examples: int) -> settings:
    """:data:`FUZZ` with fewer examples, for tests whose examples are slow."""
    return settings(FUZZ, max_examples=int(_DEEP or examples))


#: Strings that commonly break parsers: empty, NUL, huge, 4-byte UTF-8, lone
#: surrogates, percent escapes, SQL, numbers beyond 64 bits, dates and operators.
NASTY_TEXT: list[str] = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 256,
    "y" * 1000,
    "\U0001f600",
    "\ud800",
    "\u202e\ufeff",
    "%00",
    "%ff",
    "../../etc/passwd",
    "' OR 1=1 --",
    "null",
    "true",
    "-1",
    "0",
    "1e400",
    "9" * 40,
    "-9" + "9" * 40,
    "NaN",
    "2024-02-30T25:61:61Z",
    "9999-12-31T23:59:59Z",
    "0000-00-00",
    "gte:",
    "in:",
    'in:"a,b',
    "lt:2024-01-01T00:00:00Z",
    ":",
    "::",
    "a,b,,c",
    "asc",
    "desc",
    "name:asc,",
    "00000000-0000-0000-0000-000000000000",
    "admin",
]


def text() -> st.SearchStrategy[str]:
    """Short random text (NUL and every plane included) or one of :data:`NASTY_TEXT`."""
    return st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=20))


def url_text() -> st.SearchStrategy[str]:
    """:func:`text` that a URL can carry (UTF-8 encodable: no lone surrogates)."""
    return text().filter(lambda value: "\ud800" not in value)


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, -1, 2**31, 2**63, 2**64, 1.5, -0.0, 1e308]),
        text(),
    )


def json_values(keys: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """Any JSON value, nested a few levels; object keys drawn from ``keys`` or text."""
    key_strategy = keys if keys is not None else text()
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(key_strategy, inner, max_size=4),
        ),
        max_leaves=8,
    )


def objects(
    keys: list[str], values: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects whose keys are mostly the schema's (with any value), sometimes not."""
    key_strategy = st.one_of(st.sampled_from(keys), st.sampled_from(keys), text())
    return st.dictionaries(key_strategy, values or json_values(), max_size=6)


def bodies(keys: list[str]) -> st.SearchStrategy[bytes]:
    """Request bodies: mostly schema-like objects, else any JSON value or broken JSON."""
    return st.one_of(
        objects(keys).map(encode),
        objects(keys).map(encode),
        json_values().map(encode),
        st.sampled_from(
            [
                b"",
                b"{",
                b"[1,",
                b'{"a": NaN}',
                b'{"a": Infinity}',
                b"\xff\xfe{}",
                b'{"a": "\\ud800"}',
                b"[" * 5000 + b"]" * 5000,
                b'{"name": "x", "name": 1}',
                b"null",
                b"12",
                b'"s"',
            ]
        ),
        st.binary(max_size=40),
    )


def encode(value: Any) -> bytes:
    """JSON as a client would send it (escaped, so lone surrogates survive)."""
    return json.dumps(value).encode()


def query(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query parameters, repeated at will: the endpoint's names with hostile values."""
    name = st.one_of(st.sampled_from(names), st.sampled_from(names), url_text())
    return st.lists(st.tuples(name, url_text()), max_size=5)


#: Accept headers and the error format Glance answers each with.
ERROR_FORMATS = {
    "application/json": "application/json",
    "*/*": "text/html; charset=UTF-8",
    "text/html": "text/html; charset=UTF-8",
    "text/plain": "text/plain; charset=UTF-8",
    "application/json;q=0.1,*/*": "text/html; charset=UTF-8",
}
ACCEPTS = list(ERROR_FORMATS)


def assert_handled(response: Any) -> None:
    """The answer is not a 5xx, and a 4xx is in Glance's error format for its Accept."""
    request = response.request
    where = f"{request.method} {request.url} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code < 400 or request.method == "HEAD":
        return
    assert_error_body(response, request.headers.get("accept"))


def assert_error_body(response: Any, accept: str | None) -> None:
    """A 4xx body is Glance's: JSON, HTML or plain text as ``accept`` prefers.

    For an Accept header not in :data:`ERROR_FORMATS`, any of the three will do, as
    long as the body is what its Content-Type says.
    """
    status = response.status_code
    where = f"{response.request.method} {response.request.url} -> {status}: {response.text[:300]}"
    content_type = response.headers["content-type"]
    if accept in ERROR_FORMATS:
        assert content_type == ERROR_FORMATS[accept], where
    if content_type == "application/json":
        body = response.json()
        assert set(body) == {"message", "code", "title"}, where
        assert body["code"] == f"{status} {body['title']}", where
    elif content_type == "text/html; charset=UTF-8":
        assert f"<title>{status} " in response.text and f"<h1>{status} " in response.text, where
    else:
        assert content_type == "text/plain; charset=UTF-8", where
        assert response.text.startswith(f"{status} "), where
