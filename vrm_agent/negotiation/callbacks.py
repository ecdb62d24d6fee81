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

from vrm_agent.negotiation.urls import MAX_URL_LENGTH, NormalisedUrl, UrlRefused
from vrm_agent.negotiation.urls import normalise as _normalise

MAX_CALLBACK_LENGTH = MAX_URL_LENGTH


class CallbackRejected(UrlRefused):
    """A callback address the agent will not send to; the message says why."""


def normalise(url: str) -> NormalisedUrl:
    """``url`` in canonical form; :class:`CallbackRejected` when it cannot be read one way."""
    return _normalise(url, what="the callback address", error=CallbackRejected)


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
