"""Argument types shared by the commands: what a person types is checked while the command line
is read, so a bad date or address is one usage line before anything touches the pod.

Each type is a plain function ``str -> value`` raising ``argparse.ArgumentTypeError`` with the
person's words; argparse adds the option's name. They import nothing heavy: `--help` builds
every parser.
"""

from __future__ import annotations

import argparse
import errno
import socket
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from vrm_agent.errors import VrmAgentError

MAX_ARGUMENT_LENGTH = 4096  # an address or a name longer than this is a paste gone wrong


def iso_date(text: str) -> date:
    """``YYYY-MM-DD``: the one date form that reads the same everywhere."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-12-31") from None


def http_iri(text: str) -> str:
    """An absolute http(s) IRI with a host: a relative one would be read against whatever
    document it lands in, and name something else there."""
    value = text.strip()
    if len(value) > MAX_ARGUMENT_LENGTH:
        raise argparse.ArgumentTypeError(f"an address of {len(value)} characters is too long")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks the port is a number in range
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(
            c.isspace() or ord(c) < 0x20 for c in value):
        looks_like_host = "://" not in value and value and not any(c.isspace() for c in value)
        example = f"https://{value}" if looks_like_host else "https://example.org/"
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a full http(s) address; write it whole, e.g. {example}")
    return value


def duration(text: str) -> timedelta:
    from vrm_agent.timeutil import parse_duration  # not at import: --help needs no isodate

    try:
        return parse_duration(text)
    except VrmAgentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def moment(text: str) -> datetime:
    """An ISO 8601 date-time; without a zone, this machine's local time."""
    from vrm_agent.timeutil import parse_time

    try:
        return parse_time(text)
    except VrmAgentError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}; write it like 2025-12-31T18:00 or 2025-12-31T18:00:00+01:00") from None


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (a number from 1 to 65535)")
    return port


class PortInUse(VrmAgentError):
    """Something else listens where a server of ours should."""


def ensure_port_free(host: str, port: int, *, what: str, option: str) -> None:
    """Fail at once, in words, when ``host:port`` is taken, instead of after the slow set-up
    that comes before listening."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except OSError:
        raise PortInUse(f"cannot listen on {host!r}: no such address on this machine; "
                        "check --host") from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # As the server will: a port left in TIME_WAIT by a stopped server is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(
                        f"port {port} on {host} is in use by another program, so {what} "
                        f"cannot listen there; stop that program or choose another port with "
                        f"{option} N") from None
                if exc.errno == errno.EACCES:
                    raise PortInUse(f"port {port} needs more privileges than this user has; "
                                    f"choose a port above 1023 with {option} N") from None
                # An address family this machine cannot bind (IPv6 off): the server skips it too.
