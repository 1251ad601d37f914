"""The error an import job ends with."""

from __future__ import annotations


class ImportFailed(Exception):
    """The import cannot succeed; the message is shown to the user in the task."""
