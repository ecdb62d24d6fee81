"""Errors of the access-control layer.

All derive from :class:`AccessError`, itself a :class:`~vrm_agent.errors.VrmAgentError`, so the CLI
can catch one type. They are raised *before* anything is sent to a pod: a document that would fail a
safety check never leaves the process.
"""

from __future__ import annotations

from vrm_agent.errors import VrmAgentError


class AccessError(VrmAgentError):
    """Base of every access-control error."""


class InvalidGrant(AccessError):
    """A grant is malformed: no modes, a naive expiry, an IRI that is not absolute, a bad id."""


class ForbiddenMode(AccessError):
    """A grant would give someone other than the owner Write or Control.

    Vendors only ever get Read or Append: Write would let them change the person's own records
    and Control would let them rewrite who else has access.
    """


class OwnerLockout(AccessError):
    """The document would leave the owner without Read, Write or Control on the resource.

    An owner locked out of an access-control document may not be able to get back in (measured on
    CSS with a .acl that had no owner rule), so such a document is never written.
    """


class WrongDocument(AccessError):
    """A grant or node does not belong to the document being edited (another resource, another
    document URL, or a name already used by a rule the agent did not write)."""


class MalformedDocument(AccessError):
    """An access-control document could not be parsed as Turtle."""
