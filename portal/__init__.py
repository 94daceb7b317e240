"""The bureaus' pages: a page per unit, reached from the link in every message (portal/app.py)."""
