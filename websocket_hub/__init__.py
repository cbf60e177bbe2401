"""The WebSocket hub: follows the messages table and relays it to every listener."""
