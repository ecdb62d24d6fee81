"""contact set and contact told: a changed contact unit reaches the vendors whose agreements
share it (docs/protocol.md §16), and the person sees who was told and who has read it since."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.output import emit_json, record_text, table_text
from vrm_agent.cli.session import open_negotiations, vendor_names
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError

if TYPE_CHECKING:
    from vrm_agent.negotiation.changes import ChangeRecord

TOLD_COLUMNS = ("vendor", "message", "pod_notification", "read", "read_at")
TOLD_HEADERS = {"message": "told by message", "pod_notification": "pod notification",
                "read": "read since (its word)", "read_at": "read at"}


def _told(change: ChangeRecord | None, names: dict[str, str]) -> dict[str, Any]:
    from vrm_agent.negotiation.changes import told_rows

    if change is None:
        return {"change": None, "changed_at": None, "told": []}
    return {"change": change.iri, "changed_at": change.at.replace(microsecond=0).isoformat(),
            "etag": change.etag,
            "told": told_rows(change, names)}


def _print_told(told: dict[str, Any]) -> None:
    if not told["told"]:
        print("No agreement in force shares it: no vendor was told.")
        return
    print(f"Vendors whose agreements share it (change {told['change']}):")
    print(table_text(told["told"], TOLD_COLUMNS, TOLD_HEADERS))
    print("'read' is the vendor's own acknowledgement; the pod does not show who reads.")


async def cmd_contact_set(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.changes import Changes

    fields = {k: v for k, v in (("value", args.value), ("label", args.label),
                                ("locality", args.locality), ("postal_code", args.postal_code),
                                ("region", args.region), ("country", args.country))
              if v is not None}
    if not fields:
        raise VrmAgentError("nothing to change: give the new value or --label, --locality, ...")
    async with open_negotiations(config) as service:
        changed, url, change = await Changes(service).change_contact(args.id, fields)
        names = await vendor_names(service.pod, service.layout.storage)
    fields_out = ("id", "type", "value", "label", "locality", "postal_code", "region",
                  "country")
    result = {**{f: getattr(changed, f) for f in fields_out}, "resource": url,
              **_told(change, names)}
    if args.json:
        emit_json(result)
        return 0
    print(record_text({k: v for k, v in result.items() if k in (*fields_out, "resource")}))
    _print_told(result)
    return 0


async def cmd_contact_told(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.changes import Changes

    async with open_negotiations(config) as service:
        url, change = await Changes(service).contact_told(args.id)
        names = await vendor_names(service.pod, service.layout.storage)
    result = {"id": args.id, "resource": url, **_told(change, names)}
    if args.json:
        emit_json(result)
    elif change is None:
        print(f"{args.id} has not been changed with 'contact set' since it was added.")
    else:
        print(f"{args.id} changed at {result['changed_at']}.")
        _print_told(result)
    return 0


def register(contact: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    told = contact.add_parser(
        "told", parents=[common], help="which vendors were told of the last change",
        description="For the last change of a unit: each vendor whose agreement shares it, "
        "whether the agent's message reached it, whether it follows the resource through the "
        "pod's notifications, and whether it has said it read the new value since.")
    told.add_argument("id")
    told.set_defaults(handler=cmd_contact_told)
