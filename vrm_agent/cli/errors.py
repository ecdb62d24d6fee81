"""Every failure a command can meet, said in one line in the person's words, with the next step.

``explain`` is pure: it turns an exception into the line and the exit code; ``main`` prints it.
The ledger's errors are matched by class name along the exception's ancestry, so this module
does not load the ledger (`vrm-agent --help` must stay light).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from vrm_agent.cli.output import printable
from vrm_agent.errors import (
    AuthenticationError,
    Forbidden,
    PodError,
    PodUnreachable,
    Unauthorized,
    VrmAgentError,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # what argparse uses for a bad command line
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a reader that went away

DEBUG_VARIABLE = "VRM_AGENT_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "no", "false")


@dataclass(frozen=True)
class Situation:
    """What the message may point to: the command that ran, and whether an embedded pod is
    configured (then `vrm-agent pod up` is the way to start it)."""

    command: str = ""
    embedded_pod: bool = False


def _origin(url: str | None) -> str:
    if not url:
        return "the pod"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


# The ledger names records by class; a person reads words.
_RECORD_WORDS = {"contactunit": "contact unit"}


def _record_words(text: str) -> str:
    for name, words in _RECORD_WORDS.items():
        text = text.replace(f"{name} ", f"{words} ")
    return text


def _kinds(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _pod_error_text(exc: PodError) -> str:
    """The error's own words; what the server said is escaped whole (it may hold newlines or
    terminal controls), and the request it failed on comes last."""
    text = exc.args[0] if exc.args else type(exc).__name__
    if exc.server_message:
        text += f": {printable(exc.server_message)}"
    where = " ".join(p for p in (exc.method, exc.url) if p)
    if where:
        text += f" ({where}" + (f" -> {exc.status})" if exc.status else ")")
    return text


def explain(exc: BaseException, situation: Situation = Situation()) -> tuple[str, int]:
    """The one line (without the ``vrm-agent: error:`` prefix) and the exit code."""
    kinds = _kinds(exc)
    if isinstance(exc, PodUnreachable):
        where = _origin(exc.url)
        if situation.command == "login":
            return (f"no answer from {where}; check the WebID's address, and that its "
                    "server is up"), EXIT_ERROR
        if situation.embedded_pod:
            step = "start it with 'vrm-agent pod up'"
        else:
            step = ("check that it is up and that your config names the right pod ('vrm-agent "
                    "login' changes it), or start the embedded pod with 'vrm-agent pod up'")
        return f"no answer from the pod at {where}; {step}", EXIT_ERROR
    if isinstance(exc, AuthenticationError):
        if situation.command == "login":
            return (f"{_pod_error_text(exc)}; check the client id and secret your pod "
                    "gave you"), EXIT_ERROR
        return (f"{_pod_error_text(exc)}; log in again with 'vrm-agent login --webid W "
                "--client-id I --client-secret S'"), EXIT_ERROR
    if isinstance(exc, Unauthorized | Forbidden):
        return (f"{_pod_error_text(exc)}; the pod refused this account: check with "
                "'vrm-agent whoami' that you are logged in as the pod's owner"), EXIT_ERROR
    if isinstance(exc, PodError):
        return _pod_error_text(exc), EXIT_ERROR
    if "RecordExists" in kinds:
        text = _record_words(str(exc))
        return (text if ";" in text else f"{text}; choose another id with --id"), EXIT_ERROR
    if "RecordNotFound" in kinds:
        listing = situation.command.split(" ")[0]
        text = _record_words(str(exc))
        # A message that names its own next step keeps it (`import undo` lists with `import list`).
        step = f"; 'vrm-agent {listing}' lists what there is" if listing and \
            "vrm-agent" not in text else ""
        return f"{text}{step}", EXIT_ERROR
    if isinstance(exc, VrmAgentError):
        return str(exc), EXIT_ERROR
    if isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError):
        name = exc.filename or "a file"
        return f"cannot use {name}: {exc.strerror or exc}", EXIT_ERROR
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}; rerun with {DEBUG_VARIABLE}=1 for the details", EXIT_ERROR
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (f"unexpected failure ({what}); rerun with {DEBUG_VARIABLE}=1 to see where, "
            "and report it"), EXIT_ERROR


def error_lines(message: str) -> list[str]:
    """The message as printed: every line escaped (errors may quote what others wrote)."""
    return [printable(line) for line in message.split("\n")]
