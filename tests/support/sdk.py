"""openstacksdk against a test server, without Keystone.

The ``admin_token`` auth type sends a fixed ``X-Auth-Token`` (here a
``user:project:roles`` identity) to a fixed endpoint; ``image_endpoint_override``
pointing at the unversioned root makes the SDK discover ``/v2/`` from the versions
document, as it would from a Keystone catalog entry.
"""

from __future__ import annotations

import openstack
import pytest
from openstack.connection import Connection
from openstack.image.v2.image import Image

#: The SDK's own deprecation notices about its internals are not ours to fix.
QUIET = [
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
]


def connection(endpoint: str, token: str, **options: object) -> Connection:
    """A Connection to ``endpoint`` acting as ``token``; ``options`` (``cacert``, say) go
    to the Connection."""
    return openstack.connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": endpoint, "token": token},
        image_endpoint_override=endpoint,
        image_api_version="2",
        **options,
    )


def create_active(conn: Connection, name: str, data: bytes) -> Image:
    """A raw image made active with ``data`` by the SDK's own create-and-upload, which
    waits for it and checks the checksum the server reports."""
    image: Image = conn.image.create_image(
        name,
        data=data,
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        wait=True,
        timeout=30,
        validate_checksum=True,
    )
    return image
