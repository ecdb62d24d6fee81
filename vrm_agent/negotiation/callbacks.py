"""Where a vendor may ask to be told: the rules for callback (inbox) addresses.

A vendor names the URL its notifications go to, and the agent POSTs there on its own. So the
URL must never lead back to the person: not into their storage, not to the agent itself, not to
their identity provider. The check is pure (strings in, a normalised URL or a typed error out)
and compares URLs after normalisation, so no other spelling of a forbidden place slips through:
scheme and host case, default ports, percent-encoding, dot segments, trailing dots in host
names, and the many spellings of the loopback addresses (``127.1``, ``0x7f.0.0.1``, ``[::1]``,
``[::ffff:127.0.0.1]``, ``localhost.``).

Plain ``http`` is accepted only on a loopback host (tests and the embedded default pod);
everything else must be ``https``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from vrm_agent.errors import VrmAgentError

MAX_CALLBACK_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_LABELS = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_UNRESERVED_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
LOOPBACK = "loopback"  # the one name every loopback spelling compares as


class CallbackRejected(VrmAgentError):
    """A callback address the agent will not send to; the message says why."""


@dataclass(frozen=True)
class NormalisedUrl:
    """A URL in one canonical spelling, with what comparisons need."""

    scheme: str
    host: str  # lower case, no trailing dot; IPv4 dotted, IPv6 compressed in brackets
    port: int
    path: str  # percent-encoding normalised, dot segments removed, at least "/"
    query: str

    @property
    def loopback(self) -> bool:
        return _is_loopback(self.host)

    @property
    def origin(self) -> tuple[str, str, int]:
        """The origin as compared: every loopback spelling is one host."""
        return (self.scheme, LOOPBACK if self.loopback else self.host, self.port)

    @property
    def url(self) -> str:
        default = _DEFAULT_PORTS[self.scheme] == self.port
        authority = self.host if default else f"{self.host}:{self.port}"
        return f"{self.scheme}://{authority}{self.path}" + (f"?{self.query}" if self.query else "")

    def inside(self, container: NormalisedUrl) -> bool:
        """Whether this URL is the container or lies below it (same origin, path prefix),
        also when the path is read fully decoded and case-folded: a server may do either."""
        if self.origin != container.origin:
            return False
        # The container's own URL without its slash counts too (servers redirect it there).
        prefix = container.path.rstrip("/") + "/"
        for path, within in ((self.path, prefix), (_loose(self.path), _loose(prefix))):
            if path.rstrip("/") + "/" == within or path.startswith(within):
                return True
        return False


def normalise(url: str) -> NormalisedUrl:
    """``url`` in canonical form; :class:`CallbackRejected` when it is not an absolute http(s)
    URL with a plain host (no user info, no zone ids, nothing that cannot be read one way)."""
    if not isinstance(url, str) or not url:
        raise CallbackRejected("the callback address is empty")
    if len(url) > MAX_CALLBACK_LENGTH:
        raise CallbackRejected(f"the callback address is longer than {MAX_CALLBACK_LENGTH}")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in url):
        raise CallbackRejected("the callback address holds spaces, control characters or '\\'")
    if _BAD_ESCAPE.search(url):
        raise CallbackRejected("the callback address holds a broken percent-escape")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRejected("the callback address is not a URL with a valid port") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise CallbackRejected("the callback address must be an absolute https URL")
    if "@" in parts.netloc:
        raise CallbackRejected("the callback address must not carry user information")
    host = _host(parts.hostname or "", bracketed=parts.netloc.split(":")[0].startswith("["))
    if port == 0:
        raise CallbackRejected("the callback address names port 0")
    return NormalisedUrl(scheme, host, port or _DEFAULT_PORTS[scheme],
                         _remove_dot_segments(_normalise_escapes(parts.path)) or "/",
                         _normalise_escapes(parts.query))


def check_callback(url: str, *, storage: str, agent: str, issuer: str | None = None) -> str:
    """The callback address in canonical form, if the agent may send notifications there.

    ``storage`` is the person's storage root, ``agent`` the agent's public URL and ``issuer``
    the person's OpenID issuer (each compared by origin, storage by path as well).
    """
    target = normalise(url)
    if target.scheme != "https" and not target.loopback:
        raise CallbackRejected("the callback address must be https (http only on loopback)")
    if target.inside(normalise(storage)):
        raise CallbackRejected("the callback address lies inside the person's storage")
    if target.origin == normalise(agent).origin:
        raise CallbackRejected("the callback address is the person's agent itself")
    if issuer and target.origin == normalise(issuer).origin:
        raise CallbackRejected("the callback address is the person's identity provider")
    return target.url


def _host(raw: str, *, bracketed: bool) -> str:
    host = unquote(raw).lower()
    if bracketed:
        if "%" in host:
            raise CallbackRejected("the callback address names an IPv6 zone")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise CallbackRejected("the callback address has a malformed IPv6 host") from exc
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else f"[{address.compressed}]"
    host = host.rstrip(".")
    if not host:
        raise CallbackRejected("the callback address names no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise CallbackRejected("the callback address has a host that is not a name") \
                from exc
    if not _HOST_LABELS.fullmatch(host):
        raise CallbackRejected("the callback address has a host that is not a name")
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        # As browsers read it (WHATWG URL): a numeric last label makes the host an IPv4
        # address in any of the legacy forms (127.1, 0x7f.1, 2130706433, 0177.0.0.1).
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError as exc:
            raise CallbackRejected("the callback address has a malformed IPv4 host") from exc
    return host


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    # 0.0.0.0 and :: reach the local machine as well when connected to.
    return address.is_loopback or address.is_unspecified


def _normalise_escapes(text: str) -> str:
    """Escapes of unreserved characters decoded, all other escapes in upper case (RFC 3986
    6.2.2); characters outside ASCII are escaped."""
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED_CHARS else "%" + match.group(1).upper()

    decoded = _UNRESERVED.sub(one, text)
    return "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode()) for c in
                   decoded)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, on whole segments."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    joined = "/".join(output)
    return joined if not path.startswith("/") or joined.startswith("/") else "/" + joined


def _loose(path: str) -> str:
    return _remove_dot_segments(unquote(path)).casefold()
