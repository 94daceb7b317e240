"""The domain: tables, the session, and the campaign's rules as plain functions (no Prefect here)."""
