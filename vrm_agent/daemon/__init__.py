"""The long-running agent: the HTTP server vendors talk to, and its background work."""
