"""The metadata definitions catalog (``/v2/metadefs``): one module per resource.

* :mod:`.namespaces` — namespaces, and the whole-namespace reads and bulk deletes;
* :mod:`.objects`, :mod:`.properties`, :mod:`.tags` — what a namespace defines;
* :mod:`.resource_types` — resource types and their associations with namespaces;
* :mod:`.access` — who sees and who changes a namespace, shared by all of the above;
* :mod:`.records` — the snapshots handed to the HTTP layer; :mod:`.events` — notifications;
* :mod:`.definition_files` — the catalog as JSON files (``glimpse-manage db load_metadefs``,
  ``unload_metadefs``, ``export_metadefs``) and the set shipped in ``glimpse/etc/metadefs``.

Each public operation takes ``(rt, context, ...)``, checks visibility, policy and ownership
explicitly, and runs in one transaction. The row-level helpers they are built from
(``objects.add``, ``properties.add``, ``tags.replace_all``, ``resource_types.associate``,
``namespaces.insert``...) take a session and no context, so a definitions loader can reuse them.
"""
