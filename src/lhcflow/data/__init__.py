"""Canonical event format and ingestion of external ROOT files."""
