"""``gcdial serve``: a click-to-dial HTTP API over the dialing core, with a durable store."""
