"""Follow calls to their outcome: notifications WebSocket, polling fallback, events, outcomes."""
