"""The transaction core: checkout, admission, discharge and counter flows (no UI toolkit)."""
