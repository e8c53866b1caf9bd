"""Reports: reachability, incidents, dashboard and exports, read from the collector's tables.

Reports only read: the tables, their rollups and every write belong to ``collectors``.
"""
