"""vrm-agent: a personal VRM agent that keeps vendor relationships in the person's own Solid pod."""

__version__ = "0.1.0"
