"""The worker process behind :func:`~vrm_agent.integrity.proofs.verify_proofs_async` and
:func:`~vrm_agent.integrity.proofs.canonical_async`: one JSON job a line on stdin, one JSON answer
a line on stdout. The parent kills it when a job runs over its deadline."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from vrm_agent.integrity.proofs import IntegrityError, canonical, verified_document
from vrm_agent.linkeddata import loader


def answer(job: Any) -> dict[str, Any]:
    if not isinstance(job, dict) or not isinstance(job.get("document"), dict):
        return {"error": "the document could not be checked (bad job)"}
    for url, context in (job.get("contexts") or {}).items():
        loader.register_context(url, context)
    try:
        if job.get("op") == "canonical":
            return {"ok": canonical(job["document"]).decode("utf-8")}
        if job.get("op") == "verify":
            verified = verified_document(job["document"])
            return {"ok": {"proofs": [asdict(p) for p in verified.proofs],
                           "content_hash": verified.content_hash}}
        return {"error": "the document could not be checked (unknown job)"}
    except IntegrityError as exc:
        return {"error": str(exc)}
    except Exception:  # never a traceback on the pipe; the parent reports a generic failure
        return {"error": "the document could not be checked"}


def main() -> None:
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            job = json.loads(line)
        except ValueError:
            job = None
        out.write(json.dumps(answer(job)) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
