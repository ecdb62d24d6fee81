"""Does the Inrupt driver really grant and revoke? One local CSS per flavour, an owner and a vendor:
grant the vendor Read through Inrupt's universalAccess, check the vendor's own GET, revoke, check
again; once on a resource with no access document of its own and once on one that already has an
owner-only .acl/.acr. Prints what each call cost and what the server then answered.

    .venv/bin/python -m benchmarks.inrupt_smoke [--flavour wac|acp] [--trace]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks.common import local_css
from benchmarks.inrupt_driver import InruptDriver, InruptResult, available
from vrm_agent.pod import PodClient
from vrm_agent.podserver import AccountApi, Flavour

BODY = '<#it> <http://schema.org/name> "shared".'
PREFIXES = """@prefix acl: <http://www.w3.org/ns/auth/acl#>.
@prefix acp: <http://www.w3.org/ns/solid/acp#>.
"""


def owner_only(flavour: Flavour, doc: str, resource: str, owner: str) -> str:
    """An access document that lets the owner alone in, in the shape Inrupt's client reads."""
    if flavour is Flavour.WAC:
        return PREFIXES + f"""<#owner> a acl:Authorization; acl:agent <{owner}>;
    acl:accessTo <{resource}>; acl:mode acl:Read, acl:Write, acl:Control.
"""
    return PREFIXES + f"""<{doc}> a acp:AccessControlResource; acp:resource <{resource}>;
    acp:accessControl <{doc}#owner>.
<{doc}#owner> a acp:AccessControl; acp:apply <{doc}#owner-policy>.
<{doc}#owner-policy> a acp:Policy; acp:allow acl:Read, acl:Write, acl:Control;
    acp:allOf <{doc}#owner-matcher>.
<{doc}#owner-matcher> a acp:Matcher; acp:agent <{owner}>.
"""


def line(step: str, call: InruptResult, vendor_status: int) -> str:
    if not call.ok:
        return f"{step:<8} error: {call.error}; vendor GET {vendor_status}"
    methods = " ".join(f"{m}={n}" for m, n in sorted(call.methods.items()))
    return (f"{step:<8} {call.requests:>2} requests ({methods}), {call.ms:6.1f} ms, "
            f"returned {call.result}; vendor GET {vendor_status}")


async def run(flavour: Flavour, trace: bool) -> None:
    with local_css(flavour) as server:
        async with AccountApi(server.base_url) as api:
            alice = await api.create_pod_account("alice", "alice@example.org", "alice-secret-1")
            acme = await api.create_pod_account("acme", "acme@example.org", "acme-secret-1")
        async with (PodClient(alice.credentials) as owner, PodClient(acme.credentials) as vendor,
                    InruptDriver(trace=trace) as inrupt):
            await inrupt.login(alice.credentials)

            async def status(client: PodClient, url: str) -> int:
                return (await client.request("GET", url, expect_ok=False)).status

            print(f"\n{flavour.name}: CSS at {server.base_url}, driver logged in as {inrupt.webid}")
            for case in ("fresh", "existing"):
                url = f"{alice.pod}smoke/{case}"
                await owner.put(url, BODY, content_type="text/turtle")
                doc = (await owner.head(url)).links.first("acl")
                if case == "existing":
                    assert doc is not None, "the server names no access document"
                    await owner.put(doc, owner_only(flavour, doc, url, alice.webid),
                                    content_type="text/turtle")
                before = await status(vendor, url)
                print(f"- {case}: {url} (access document {doc}), vendor GET {before}")
                granted = await inrupt.grant(url, acme.webid)
                print("  " + line("grant", granted, await status(vendor, url)))
                revoked = await inrupt.revoke(url, acme.webid)
                print("  " + line("revoke", revoked, await status(vendor, url)))
                print(f"  owner GET afterwards {await status(owner, url)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavour", choices=["wac", "acp", "both"], default="both")
    parser.add_argument("--trace", action="store_true", help="each request Inrupt sends, on stderr")
    args = parser.parse_args()
    if not available():
        sys.exit("node and npm are needed for Inrupt's client")
    both = [Flavour.WAC, Flavour.ACP]
    for flavour in both if args.flavour == "both" else [Flavour(args.flavour)]:
        asyncio.run(run(flavour, args.trace))


if __name__ == "__main__":
    main()
