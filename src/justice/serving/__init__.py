"""The safety service's serving store (store.py: its tables, SQLAlchemy) and the mirror of the
prison database in it (mirror.py). Below both the safety rules (justice.safety) and the web app
(justice.web), which read and write it."""
