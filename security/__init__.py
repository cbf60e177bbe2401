"""Checks of the project itself: the dependency audit (python -m security.dependency_audit)."""
