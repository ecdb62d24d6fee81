"""Changing and removing what the person keeps, as a person runs the commands, on real CSS
(WAC and ACP): vendors, purchases, imports, contact data, memberships and preferences. What a
vendor may read after a change is proved by the vendor's own requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PodEnv, new_account, run_cli
from vrm_agent.daemon.expiry import keeper_pid
from vrm_agent.pod import SyncPodClient

pytestmark = pytest.mark.pod


@pytest.fixture(scope="module")
def editor(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A person of their own (a ledger no other test writes to), logged in."""
    account = asyncio.run(new_account(pod_env, "editor"))
    config = tmp_path_factory.mktemp("editor") / "config.json"
    result = run_cli("login", "--webid", account.webid, "--client-id", account.client_id,
                     "--client-secret", account.client_secret, "--config", str(config))
    assert result.returncode == 0, result.stderr
    yield config
    pid = keeper_pid(config)  # the expiry keeper `share` started
    if pid:
        os.kill(pid, signal.SIGTERM)


def cli(config: Path, *args: str) -> object:
    result = run_cli(*args, "--json", "--config", str(config))
    assert result.returncode == 0, (args, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else None


def refused(config: Path, *args: str) -> str:
    """The error line a refused command ends with; it must fail without a traceback."""
    result = run_cli(*args, "--config", str(config))
    assert result.returncode != 0, (args, result.stdout)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def vendors_by_id(config: Path) -> dict[str, dict[str, object]]:
    return {v["id"]: v for v in cli(config, "vendors")}  # type: ignore[union-attr, index]


FIRST = """date,vendor,description,amount,currency
2025-03-01,Globex Corp,widgets,20.00,EUR
2025-03-02,Initech,stapler,7.50,EUR
2025-03-03,Initech,stapler refund,-7.50,EUR
"""
# The first row is the same purchase as in FIRST; the second is new.
SECOND = """date,vendor,description,amount,currency
2025-03-01,Globex Corp,widgets,20.00,EUR
2025-04-01,Globex Corp,gadgets,30.00,EUR
"""


def test_vendors_change_and_remove(pod_env: PodEnv, editor: Path, tmp_path: Path) -> None:
    cli(editor, "vendors", "add", "Umbrella Ltd", "--id", "umbrella",
        "--webid", "https://umbrella.example/agent#me")
    changed = cli(editor, "vendors", "set", "umbrella ltd", "--state", "customer",
                  "--url", "https://umbrella.example/", "--name", "Umbrella Limited")
    assert changed == {**changed, "id": "umbrella", "name": "Umbrella Limited",  # type: ignore[dict-item]
                       "state": "customer", "url": "https://umbrella.example/"}
    # Found by its WebID too; forgetting the web site clears it.
    cli(editor, "vendors", "set", "https://umbrella.example/agent#me", "--no-url")
    umbrella = vendors_by_id(editor)["umbrella"]
    assert umbrella["name"] == "Umbrella Limited" and umbrella["state"] == "customer"

    # Relative or malformed addresses would be stored as IRIs inside the person's own pod.
    assert "full http(s) address" in refused(editor, "vendors", "set", "umbrella",
                                         "--url", "shop.example.com")
    assert "full http(s) address" in refused(editor, "vendors", "add", "Shop", "--webid", "shop")
    # A name, a WebID or a web site identifies one vendor: adding it again is refused.
    assert "already in your ledger as umbrella" in refused(
        editor, "vendors", "add", "  umbrella   LIMITED ")
    assert "already in your ledger as umbrella" in refused(
        editor, "vendors", "add", "Brolly", "--webid", "https://umbrella.example/agent#me")
    cli(editor, "vendors", "add", "Hooli", "--id", "hooli")
    assert "already has the WebID" in refused(editor, "vendors", "set", "hooli", "--webid",
                                              "https://umbrella.example/agent#me")
    assert "no vendor 'nobody'" in refused(editor, "vendors", "set", "nobody", "--state",
                                           "former")
    # An id that would leave the vendors' container is refused before anything is written.
    assert "cannot name a resource" in refused(editor, "vendors", "add", "X", "--id",
                                               "../terms/x")

    # Purchases keep a vendor unless the person says to remove them too.
    path = tmp_path / "hooli.csv"
    path.write_text("date,vendor,description,amount,currency\n2025-01-01,Hooli,phone,99,EUR\n")
    cli(editor, "import", "transactions", str(path))
    assert "has purchases on file" in refused(editor, "vendors", "remove", "hooli")
    cli(editor, "memberships", "add", "hooli", "H-123", "--program", "Hooli XYZ")
    removed = cli(editor, "vendors", "remove", "hooli", "--with-purchases")
    assert removed["purchases_removed"] is True  # type: ignore[index]
    assert len(removed["memberships_removed"]) == 1  # type: ignore[index]
    assert "hooli" not in vendors_by_id(editor)
    assert cli(editor, "transactions", "--vendor", "umbrella") == []
    assert all(m["vendor_id"] != "hooli" for m in cli(editor, "memberships"))  # type: ignore[union-attr, index]
    cli(editor, "vendors", "remove", "Umbrella Limited")
    assert "umbrella" not in vendors_by_id(editor)


def test_purchases_listed_removed_and_imports_undone(editor: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(FIRST)
    second.write_text(SECOND)
    earlier = {i["id"] for i in cli(editor, "import", "list")}  # type: ignore[union-attr, index]
    cli(editor, "import", "transactions", str(first))
    cli(editor, "import", "transactions", str(second))
    purchases = cli(editor, "transactions", "--limit", "0")
    described = sorted(p["description"] for p in purchases)  # type: ignore[union-attr, index]
    assert described == ["gadgets", "stapler", "stapler refund", "widgets"]
    refund = next(p for p in purchases if p["description"] == "stapler refund")  # type: ignore[union-attr, index]
    assert refund["amount"] == "-7.50"
    march = cli(editor, "transactions", "--since", "2025-03-02", "--until", "2025-03-31")
    assert sorted(p["description"] for p in march) == ["stapler", "stapler refund"]  # type: ignore[union-attr, index]
    assert "not a date" in refused(editor, "transactions", "--since", "31.12.2025")

    # Undo the first import: what only it brought goes, with the vendor it alone created;
    # the purchase the second file brought too stays.
    imports = [i for i in cli(editor, "import", "list")  # type: ignore[union-attr]
               if i["id"] not in earlier]  # type: ignore[index]
    assert len(imports) == 2 and all(i["complete"] for i in imports)  # type: ignore[arg-type, index]
    widgets = next(p for p in purchases if p["description"] == "widgets")  # type: ignore[union-attr, index]
    first_id = next(i for i in widgets["imports"] if i not in {  # type: ignore[index]
        i2 for p in purchases if p["description"] == "gadgets" for i2 in p["imports"]})  # type: ignore[union-attr, index]
    report = cli(editor, "import", "undo", first_id[:10])
    assert report["purchases_removed"] == 2 and report["purchases_kept"] == 1  # type: ignore[index]
    assert report["vendors_removed"] == ["initech"]  # type: ignore[index]
    left = cli(editor, "transactions", "--limit", "0")
    assert sorted(p["description"] for p in left) == ["gadgets", "widgets"]  # type: ignore[union-attr, index]
    assert "initech" not in vendors_by_id(editor)
    assert len({i["id"] for i in cli(editor, "import", "list")} - earlier) == 1  # type: ignore[union-attr, index]
    # Undone, the file imports again in full.
    again = cli(editor, "import", "transactions", str(first))
    assert again["already_imported"] is False  # type: ignore[index]
    assert len(cli(editor, "transactions", "--limit", "0")) == 4  # type: ignore[arg-type]

    gadgets = next(p for p in left if p["description"] == "gadgets")  # type: ignore[union-attr, index]
    assert "too short" in refused(editor, "transactions", "remove", gadgets["id"][:3])  # type: ignore[index]
    assert "no purchase" in refused(editor, "transactions", "remove", "ffffffffffff")
    cli(editor, "transactions", "remove", gadgets["id"][:12])  # type: ignore[index]
    assert "gadgets" not in {p["description"] for p in cli(  # type: ignore[union-attr, index]
        editor, "transactions", "--limit", "0")}
    assert "no import" in refused(editor, "import", "undo", "0000000000")


def test_contact_changed_in_place_for_whoever_holds_it(pod_env: PodEnv, editor: Path) -> None:
    unit = cli(editor, "contact", "add", "email", "old@example.org", "--label", "home")
    url = unit["resource"]  # type: ignore[index]
    grant = cli(editor, "share", url, "--with", pod_env.acme.webid, "--for", "1h")
    changed = cli(editor, "contact", "set", unit["id"], "new@example.org")  # type: ignore[index]
    assert changed["resource"] == url and changed["value"] == "new@example.org"  # type: ignore[index]
    with SyncPodClient(pod_env.acme.credentials) as acme:
        read = acme.request("GET", url, expect_ok=False)
        assert read.status == 200 and b"new@example.org" in read.body
        assert b"old@example.org" not in read.body
    # Removing what a vendor holds is refused until the grant ends.
    assert "revoke that first" in refused(editor, "contact", "remove", unit["id"])  # type: ignore[index]
    cli(editor, "grants", "revoke", grant["id"])  # type: ignore[index]
    cli(editor, "contact", "remove", unit["id"])  # type: ignore[index]
    assert all(u["id"] != unit["id"] for u in cli(editor, "contact"))  # type: ignore[union-attr, index]
    assert "no contact unit" in refused(editor, "contact", "set", unit["id"], "x@example.org")  # type: ignore[index]


def test_memberships_and_preferences(editor: Path) -> None:
    cli(editor, "vendors", "add", "Corner Café", "--id", "corner-cafe")
    card = cli(editor, "memberships", "add", "Corner Café", "C-42", "--program", "Coffee Club",
               "--points", "120", "--from", "2019-05-01")
    assert card["vendor_id"] == "corner-cafe" and card["valid_from"] == "2019-05-01"  # type: ignore[index]
    changed = cli(editor, "memberships", "set", card["id"], "--points", "150",  # type: ignore[index]
                  "--until", "2027-01-01")
    assert changed["points"] == "150" and changed["valid_through"] == "2027-01-01"  # type: ignore[index]
    assert "exists" in refused(editor, "memberships", "add", "corner-cafe", "C-42")
    assert "not a number" in refused(editor, "memberships", "set", card["id"], "--points", "lots")  # type: ignore[index]
    cli(editor, "memberships", "remove", card["id"])  # type: ignore[index]
    assert all(m["id"] != card["id"] for m in cli(editor, "memberships"))  # type: ignore[union-attr, index]

    everywhere = cli(editor, "preferences", "add", "newsletter", "none")
    just_cafe = cli(editor, "preferences", "add", "newsletter", "weekly", "--vendor",
                    "corner-cafe")
    assert everywhere["id"] != just_cafe["id"] and just_cafe["vendor_id"] == "corner-cafe"  # type: ignore[index]
    moved = cli(editor, "preferences", "set", just_cafe["id"], "--all-vendors",  # type: ignore[index]
                "--value", "monthly")
    assert moved["vendor_id"] is None and moved["value"] == "monthly"  # type: ignore[index]
    listed = {p["id"]: p for p in cli(editor, "preferences")}  # type: ignore[union-attr, index]
    assert listed[just_cafe["id"]]["value"] == "monthly"  # type: ignore[index]
    for preference in (everywhere, just_cafe):
        cli(editor, "preferences", "remove", preference["id"])  # type: ignore[index]
    assert "no preference" in refused(editor, "preferences", "remove", everywhere["id"])  # type: ignore[index]
