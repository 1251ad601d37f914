"""Leftovers of image data writes nobody will finish, swept from the stores by age.

A write whose process dies leaves pieces behind: a temporary file, Swift segments,
an S3 multipart upload. Crash recovery removes those of the writes the database
tracks (:func:`glimpse.services.image_data.recover_interrupted_writes`); what it
cannot reach (a cleanup that failed while a store was down, an import whose worker
was killed) is swept here, by age, by ``glimpse-manage store purge_uploads``.
"""

from __future__ import annotations

import dataclasses

from glimpse import errors
from glimpse.store.errors import StoreError
from glimpse.store.registry import Stores


@dataclasses.dataclass
class Sweep:
    """What one store gave up (or would, in a dry run), or why it could not."""

    store_id: str
    removed: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


def sweep(
    stores: Stores,
    older_than_seconds: float,
    *,
    dry_run: bool = False,
    store_ids: list[str] | None = None,
) -> list[Sweep]:
    """Remove what unfinished writes left in ``store_ids`` (every store and the staging
    area by default) when untouched for ``older_than_seconds``.

    A store that fails is reported and the others are still swept. Raises
    :class:`~glimpse.errors.BadRequest` for an unknown store id.
    """
    if older_than_seconds < 0:
        raise errors.BadRequest("The age of leftovers to remove cannot be negative.")
    everything = {**stores.drivers, stores.staging.store_id: stores.staging}
    chosen = list(everything) if store_ids is None else store_ids
    unknown = [store_id for store_id in chosen if store_id not in everything]
    if unknown:
        raise errors.BadRequest(
            f"Unknown store {', '.join(unknown)}; the stores are {', '.join(everything)}."
        )
    results = []
    for store_id in chosen:
        driver = everything[store_id]
        if driver.read_only:
            continue  # it writes nothing, so nothing is left half-written
        try:
            removed = driver.cleanup_stale_temporaries(older_than_seconds, dry_run=dry_run)
        except StoreError as exc:
            results.append(Sweep(store_id, error=str(exc)))
            continue
        results.append(Sweep(store_id, removed))
    return results
