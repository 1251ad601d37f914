"""This node: its name, and whether a process that ran on it is still alive.

Work that a process leaves behind (an upload's temporary data, an import's working
folder) is recorded with the node's name and the process id, so that after a crash any
process on the same node can tell abandoned work from work in progress.
"""

from __future__ import annotations

import os
import socket

#: The name this node records its work under.
NAME = socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this node is running (this process counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True
