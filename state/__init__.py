"""The sync job's local state: the rebuildable cache (``store``), the run lock (``lock``), the
hash-chained audit log (``audit``), and the incremental fetch that keeps the cache fresh (``fetch``).

The cache and the audit log live in separate SQLite files on purpose: ``sync --full`` deletes and rebuilds
the cache, never the audit log.
"""
