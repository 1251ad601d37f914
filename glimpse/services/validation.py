"""Input checks shared by the services, beyond what the JSON schemas express."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from glimpse import errors

_FOUR_BYTE = re.compile("[\U00010000-\U0010ffff]")
# Lone surrogates can arrive through JSON escapes ("\ud800") and cannot be stored anywhere.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: Any, what: str) -> None:
    """Refuse characters the databases cannot store (4-byte UTF-8, lone surrogates)."""
    if isinstance(value, str):
        if _FOUR_BYTE.search(value) or _SURROGATE.search(value):
            raise errors.BadRequest(
                f"{what} contains characters (4-byte UTF-8) that are not supported."
            )
    elif isinstance(value, list):
        for item in value:
            check_text(item, what)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, what)
            check_text(item, what)


def check_url(url: str, what: str) -> None:
    """Refuse a URL that cannot be split into its parts (an unclosed ``[``).

    The stores, the URI filter and the responses all take URLs apart; one that cannot
    be is the client's mistake, so it is 400 here rather than an error deep inside.
    (Ports are left to the stores: an S3 secret may hold a ``/`` that ends the netloc.)
    """
    try:
        urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise errors.BadRequest(f"{what} cannot be parsed as a URL ({exc}).") from None


#: The most a TEXT column holds in MariaDB/MySQL, in bytes: what Glimpse stores as
#: text (definitions, descriptions, task inputs, location metadata) stays within it
#: on every database, so a document is refused alike everywhere.
MAX_TEXT_BYTES = 65535


def storable_text(value: str, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``value`` when a TEXT column can hold it; 400 naming ``what`` otherwise."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise errors.BadRequest(f"{what} is too large to store ({size} bytes; at most {limit}).")
    return value


def is_uuid(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36 and str(parsed) == value.lower()


def quota_exceeded(count: int, quota: int) -> bool:
    """Glance's convention: a negative quota means unlimited."""
    return quota >= 0 and count > quota
