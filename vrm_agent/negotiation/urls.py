"""URLs compared as servers read them: one canonical spelling, for the rules on what a vendor
may name (callback addresses, targets).

Normalised are scheme and host case, default ports, percent-encoding (escapes of unreserved
characters decoded, others in upper case, non-ASCII escaped), dot segments, trailing dots in
host names, and the many spellings of IPv4 and loopback addresses (``127.1``, ``0x7f.0.0.1``,
``[::ffff:127.0.0.1]``). Pure: strings in, a normalised URL or a typed error out.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from vrm_agent.errors import VrmAgentError

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_LABELS = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_UNRESERVED_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
LOOPBACK = "loopback"  # the one name every loopback spelling compares as


class UrlRefused(VrmAgentError):
    """A URL that cannot be read one way; the message says why."""


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


def normalise(url: str, *, what: str = "the URL",
              error: type[UrlRefused] = UrlRefused) -> NormalisedUrl:
    """``url`` in canonical form; ``error`` (saying ``what`` the URL is) when it is not an
    absolute http(s) URL with a plain host (no user info, no zone ids, nothing that cannot be
    read one way)."""
    if not isinstance(url, str) or not url:
        raise error(f"{what} is empty")
    if len(url) > MAX_URL_LENGTH:
        raise error(f"{what} is longer than {MAX_URL_LENGTH}")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in url):
        raise error(f"{what} holds spaces, control characters or '\\'")
    if _BAD_ESCAPE.search(url):
        raise error(f"{what} holds a broken percent-escape")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise error(f"{what} is not a URL with a valid port") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise error(f"{what} must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise error(f"{what} must not carry user information")
    host = _host(parts.hostname or "", what=what, error=error,
                 bracketed=parts.netloc.split(":")[0].startswith("["))
    if port == 0:
        raise error(f"{what} names port 0")
    return NormalisedUrl(scheme, host, port or _DEFAULT_PORTS[scheme],
                         _remove_dot_segments(_normalise_escapes(parts.path)) or "/",
                         _normalise_escapes(parts.query))


def _host(raw: str, *, bracketed: bool, what: str, error: type[UrlRefused]) -> str:
    host = unquote(raw).lower()
    if bracketed:
        if "%" in host:
            raise error(f"{what} names an IPv6 zone")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise error(f"{what} has a malformed IPv6 host") from exc
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else f"[{address.compressed}]"
    host = host.rstrip(".")
    if not host:
        raise error(f"{what} names no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise error(f"{what} has a host that is not a name") \
                from exc
    if not _HOST_LABELS.fullmatch(host):
        raise error(f"{what} has a host that is not a name")
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        # As browsers read it (WHATWG URL): a numeric last label makes the host an IPv4
        # address in any of the legacy forms (127.1, 0x7f.1, 2130706433, 0177.0.0.1).
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError as exc:
            raise error(f"{what} has a malformed IPv4 host") from exc
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
