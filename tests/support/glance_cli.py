"""Running python-glanceclient's ``glance`` command against a test server.

Identity without Keystone: ``--os-auth-token user:project:roles`` (glanceclient
percent-encodes it on the wire). glanceclient reads image data from any stdin that is not a
terminal, so the command runs with stdin closed, as under cron.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

GLANCE = str(Path(sys.executable).with_name("glance"))


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    def table(self) -> list[dict[str, str]]:
        """The rows of the first prettytable in the output, keyed by its header.

        A cell wrapped over several lines is joined back: without a space where a long word
        (an id, a digest) was cut at the column's full width, with one where the text was
        wrapped between words.
        """
        lines = [line.rstrip() for line in self.out.splitlines() if line.startswith("|")]
        raw = [line[1:-1].split("|") for line in lines]
        if not raw:
            return []
        widths = [len(cell) - 2 for cell in raw[0]]
        header = [cell.strip() for cell in raw[0]]
        rows: list[list[list[str]]] = []  # per row, per column: the wrapped fragments
        for cells in raw[1:]:
            row = [cell.strip() for cell in cells]
            if rows and row[0] == "" and any(row):
                for fragments, more in zip(rows[-1], row, strict=True):
                    if more:
                        fragments.append(more)
            else:
                rows.append([[cell] if cell else [] for cell in row])
        return [
            dict(
                zip(header, (_unwrap(f, w) for f, w in zip(row, widths, strict=True)), strict=True)
            )
            for row in rows
        ]

    def properties(self) -> dict[str, str]:
        """A ``Property | Value`` table as a dict."""
        return {row["Property"]: row["Value"] for row in self.table()}

    def ids(self) -> set[str]:
        return {row["ID"] for row in self.table()}

    def column(self, name: str) -> list[str]:
        return [row[name] for row in self.table()]


Glance = Callable[..., Result]


def runner(server: str, home: Path) -> Glance:
    """``run(token, *args, expect=0)``: run ``glance`` as ``token`` and check its exit code
    (``expect=None`` checks nothing)."""
    # No OS_* settings from the caller's shell, and a private schema cache.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = str(home)

    def run(token: str, *args: str, expect: int | None = 0) -> Result:
        command = [
            "sh",
            "-c",
            'exec "$@" <&-',
            "glance",
            GLANCE,
            "--os-image-url",
            server,
            "--os-auth-token",
            token,
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        result = Result(done.returncode, done.stdout, done.stderr)
        if expect is not None:
            assert result.code == expect, result
        return result

    return run


def _unwrap(fragments: list[str], width: int) -> str:
    text = fragments[0] if fragments else ""
    for previous, fragment in itertools.pairwise(fragments):
        text += fragment if len(previous) >= width else " " + fragment
    return text
