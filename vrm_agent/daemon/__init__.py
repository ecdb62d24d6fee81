"""The long-running agent: the HTTP server vendors talk to, and its background work."""

# Here rather than in the server module, so the command line can show them without loading it.
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8750
