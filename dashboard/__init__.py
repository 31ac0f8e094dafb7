"""The bureau dashboard: a web app that reads PostgreSQL, never the hot path."""
