"""Usage accounting: what a call cost (pricing.py) and how usage totals read (report.py). The totals
themselves are kept by the usage stores (addons/stores/usage.py and its SQLite and PostgreSQL twins)."""
