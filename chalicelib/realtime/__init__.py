"""The WebSocket API: connections, rooms, fan-out, emitters, tickets and replay."""
