"""Running a list of checks: one after the other (later ones build on what earlier ones made),
each timed, each bounded in time, and whatever a check raises turned into its result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from vrm_agent.conformance.results import Check, Failed, Outcome, Result, Skipped, clean

ContextT = TypeVar("ContextT")
CHECK_SECONDS = 60.0  # one check, expiry waits included


async def run_checks(checks: Sequence[Check[ContextT]], context: ContextT, *,
                     only: Collection[str] = (),
                     on_result: Callable[[Result], None] | None = None,
                     seconds: float = CHECK_SECONDS) -> list[Result]:
    """Every check (or those whose id is in ``only``), in order."""
    results: list[Result] = []
    for check in checks:
        if only and check.id not in only:
            continue
        started = time.monotonic()
        try:
            detail = await asyncio.wait_for(check.run(context), seconds)
            outcome = Outcome.PASS
        except Failed as exc:
            outcome, detail = Outcome.FAIL, str(exc)
        except Skipped as exc:
            outcome, detail = Outcome.SKIP, str(exc)
        except TimeoutError:
            outcome, detail = Outcome.FAIL, f"no result within {seconds:.0f} s"
        except Exception as exc:  # an answer the kit could not even read is a failure too
            outcome, detail = Outcome.FAIL, f"{type(exc).__name__}: {exc}"
        result = Result(check.id, check.section, check.description, outcome, clean(detail),
                        time.monotonic() - started)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
