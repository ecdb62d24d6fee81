"""RDF canonicalisation of a hostile agreement, before and after the bounded path.

The attack: an agreement whose permissions are blank nodes all linked to each other in the same
way, so URDNA2015 must try every permutation of them. "Before" is pyld's normalize called as
``canonical`` called it before (on the daemon's event loop), each in a child process with a time
cap of ``--cap`` seconds; "after" is ``canonical`` now (the cheap checks refuse what cannot be
told apart), and ``verify_proofs_async``: the work runs in a worker process killed at the
deadline, while a 10 ms ticker measures the event loop's worst lag (on a busy machine that lag
is mostly the scheduler's).

    python -m benchmarks.canonicalisation [--cap 120] [--largest 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pyld import jsonld

from benchmarks.common import print_table
from vrm_agent.integrity import IntegrityError, SigningKey, add_proof
from vrm_agent.integrity.proofs import canonical, canonical_async, verify_proofs_async
from vrm_agent.linkeddata.limits import CANONICALISATION_SECONDS
from vrm_agent.linkeddata.loader import DATA_INTEGRITY_CONTEXT, PROTOCOL_CONTEXT, load_document

AGREEMENT: dict[str, Any] = {
    "@context": [PROTOCOL_CONTEXT, DATA_INTEGRITY_CONTEXT],
    "uid": "urn:uuid:5b0f8f4e-1f7c-4b53-a5d4-6f1c8f0b7e11", "type": "Agreement",
    "assigner": "https://pod.example/alice/profile/card#me",
    "assignee": "https://pod.example/acme/profile/card#me",
    "permission": [{"action": "use", "target": ["https://pod.example/alice/email"],
                    "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                    "rightOperand": {"id": "dpv:ServiceProvision"}}]}],
}


def attack(nodes: int) -> dict[str, Any]:
    labels = [f"_:n{i}" for i in range(nodes)]
    unsigned = {**AGREEMENT, "permission": [
        {"@id": label, "action": "use", "duty": [{"@id": other} for other in labels
                                                 if other != label]} for label in labels]}
    signed = add_proof(AGREEMENT, SigningKey())  # a genuine proof over another document
    return {**unsigned, "proof": signed["proof"]}


def _before_in_child(nodes: int, out: Any) -> None:
    unsigned = {k: v for k, v in attack(nodes).items() if k != "proof"}
    started = time.perf_counter()
    jsonld.normalize(unsigned, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                "documentLoader": load_document})
    out.put(time.perf_counter() - started)


def now_sync(nodes: int) -> str:
    unsigned = {k: v for k, v in attack(nodes).items() if k != "proof"}
    started = time.perf_counter()
    try:
        canonical(unsigned)
        outcome = "canonicalised"
    except IntegrityError:
        outcome = "refused"
    return f"{(time.perf_counter() - started) * 1000:.0f} ms, {outcome}"


def sync_seconds(nodes: int, cap: float) -> str:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_before_in_child,
                                                         args=(nodes, queue))
    child.start()
    child.join(cap)
    if child.is_alive():
        child.kill()
        child.join()
        return f"> {cap:.0f} s (stopped)"
    return f"{queue.get():.2f} s"


async def with_loop_lag(job: Callable[[], Awaitable[Any]]) -> tuple[float, float, str]:
    """Wall time of the job, the worst event-loop lag meanwhile, and how it ended."""
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        await job()
        outcome = "verified"
    except IntegrityError as exc:
        outcome = "refused: too complex" if "too complex" in str(exc) else f"refused: {exc}"
    elapsed = time.perf_counter() - started
    running = False
    await tick
    return elapsed, worst, outcome


async def after(largest: int) -> list[tuple[str, str]]:
    rows = []
    genuine = add_proof(add_proof(AGREEMENT, SigningKey()), SigningKey())
    await canonical_async(AGREEMENT)  # start a worker: its start-up is not part of a check
    seconds, lag, outcome = await with_loop_lag(lambda: verify_proofs_async(genuine))
    rows.append(("genuine agreement, two proofs: verify_proofs_async",
                 f"{seconds * 1000:.0f} ms, loop lag {lag * 1000:.0f} ms, {outcome}"))
    for nodes in range(5, largest + 1):
        document = attack(nodes)
        seconds, lag, outcome = await with_loop_lag(
            lambda document=document: verify_proofs_async(document))
        rows.append((f"{nodes} linked blank nodes ({len(json.dumps(document))} bytes): "
                     "verify_proofs_async", f"{seconds:.2f} s, loop lag {lag * 1000:.0f} ms, "
                                            f"{outcome}"))
    document = attack(5)
    seconds, lag, outcome = await with_loop_lag(
        lambda: verify_proofs_async(document, seconds=0.02))
    rows.append(("5 linked blank nodes, 20 ms deadline (the worker is killed)",
                 f"{seconds * 1000:.0f} ms, loop lag {lag * 1000:.0f} ms, {outcome}"))
    seconds, lag, outcome = await with_loop_lag(lambda: verify_proofs_async(genuine))
    rows.append(("genuine agreement again (a fresh worker starts first)",
                 f"{seconds * 1000:.0f} ms, loop lag {lag * 1000:.0f} ms, {outcome}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--largest", type=int, default=7)
    options = parser.parse_args()
    started = time.perf_counter()
    canonical(AGREEMENT)
    rows = [("genuine agreement: canonical (sync)",
             f"{(time.perf_counter() - started) * 1000:.1f} ms")]
    for nodes in range(3, options.largest + 1):
        rows.append((f"{nodes} linked blank nodes: before (pyld normalize, on the loop)",
                     sync_seconds(nodes, options.cap)))
        rows.append((f"{nodes} linked blank nodes: canonical now (sync)", now_sync(nodes)))
    rows += asyncio.run(after(options.largest))
    print_table(f"RDF canonicalisation (deadline {CANONICALISATION_SECONDS:g} s)", rows)


if __name__ == "__main__":
    main()
