"""The WebSocket client: prints every notification once and resumes after a restart."""
