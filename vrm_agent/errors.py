"""The one exception hierarchy of the package.

Every error the package raises derives from :class:`VrmAgentError`, so a caller (the CLI above all)
can catch one type and print one clear line. No bare aiohttp or rdflib error leaves the package.
"""

from __future__ import annotations


class VrmAgentError(Exception):
    """Base of every error raised by vrm-agent."""


class ConfigError(VrmAgentError):
    """The agent's configuration is missing, unreadable or incomplete."""


class PodError(VrmAgentError):
    """A request to a Solid pod (or its identity provider) failed.

    Carries what a person needs to understand the failure: the method, the URL, the HTTP status
    (``None`` when no answer came) and the server's own message.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.server_message = server_message
        super().__init__(message)

    def __str__(self) -> str:
        text = self.args[0] if self.args else type(self).__name__
        if self.method or self.url:
            where = " ".join(p for p in (self.method, self.url) if p)
            text += f" ({where}" + (f" -> {self.status})" if self.status else ")")
        if self.server_message:
            text += f": {self.server_message}"
        return text


class PodUnreachable(PodError):
    """No HTTP answer: the server is down, the port is closed, the name does not resolve."""


class NotASolidServer(PodError):
    """The server answered, but not as a Solid server (no WebID profile, no issuer, no storage)."""


class AuthenticationError(PodError):
    """Logging in failed: wrong client id or secret, or an identity provider that refuses us."""


class Unauthorized(PodError):
    """401: the pod did not accept our credentials for this request."""


class Forbidden(PodError):
    """403: authenticated, but this agent may not do this on this resource."""


class NotFound(PodError):
    """404: no resource at this URL."""


class Conflict(PodError):
    """409: the request conflicts with the resource's state (a non-empty container, a patch
    that does not apply)."""


class PreconditionFailed(PodError):
    """412: an If-Match or If-None-Match condition failed: someone else changed the resource."""


class RdfSyntaxError(PodError):
    """A body that should be RDF (Turtle, JSON-LD) could not be parsed."""
