"""The ledger commands as a person runs them, on real CSS (WAC and ACP)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.term import Node

from tests.conftest import PodEnv, new_account, run_cli
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.pod

CSV = """date,vendor,description,amount,currency,category,order_id,channel
2024-01-05,ACME Corp.,coffee beans,12.50,EUR,food,A-1,online
2024-01-05,ACME Corp.,coffee beans,12.50,EUR,food,A-1,online
2024-02-10,Bolt Rides,ride to the station,9.90,EUR,travel,,app
not-a-date,Bolt Rides,broken,1.00,EUR,,,
2023-12-24,Corner Books,a novel,18.00,GBP,books,,in-store
2024-02-11,Bolt Rides,refund,-9.90,EUR,travel,,app
"""


def login(config: Path, pod_env: PodEnv, who: str = "alice") -> None:
    account = getattr(pod_env, who)
    result = run_cli("login", "--webid", account.webid, "--client-id", account.client_id,
                     "--client-secret", account.client_secret, "--config", str(config))
    assert result.returncode == 0, result.stderr


def cli_json(config: Path, *args: str, expect: int = 0) -> object:
    result = run_cli(*args, "--json", "--config", str(config))
    assert result.returncode == expect, result.stderr
    return json.loads(result.stdout)


def test_import_twice_export_and_count(pod_env: PodEnv, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    login(config, pod_env)
    csv_path = tmp_path / "bank.csv"
    csv_path.write_text(CSV)
    result = run_cli("import", "transactions", str(csv_path), "--json", "--config", str(config))
    assert result.returncode == 3, result.stderr  # some rows skipped, the rest landed
    assert "bank.csv: line 5: date 'not-a-date' is not YYYY-MM-DD" in result.stderr
    first = json.loads(result.stdout)
    assert first["transactions"] == 5 and first["bad_rows"] == 1
    again = cli_json(config, "import", "transactions", str(csv_path), expect=3)
    assert again["already_imported"] is True and again["pod_writes"] == 0  # type: ignore[index]

    vendors = cli_json(config, "vendors")
    names = {v["name"]: v for v in vendors}  # type: ignore[union-attr]
    assert {"ACME Corp.", "Bolt Rides", "Corner Books"} <= set(names)
    assert names["Corner Books"]["since"] == "2023-12-24"
    assert names["ACME Corp."]["state"] == "customer"

    by_vendor = cli_json(config, "stats", "--by", "vendor")
    totals = {(r["key"], r["currency"]): (r["count"], r["total"]) for r in by_vendor}  # type: ignore[union-attr]
    assert totals[("ACME Corp.", "EUR")] == (2, "25.00")  # the same purchase twice is two
    assert totals[("Bolt Rides", "EUR")] == (2, "0.00")  # a ride and its refund
    assert totals[("Corner Books", "GBP")] == (1, "18.00")
    months = [r["key"] for r in cli_json(config, "stats", "--by", "month")]  # type: ignore[union-attr]
    assert months == sorted(months) and "2023-12" in months

    export = tmp_path / "ledger.trig"
    cli_json(config, "export", str(export))
    dataset = Dataset()
    dataset.parse(str(export), format="trig")
    descriptions = [str(o) for _s, _p, o, _g in
                    dataset.quads((None, URIRef("http://schema.org/description"), None, None))]
    assert sorted(descriptions).count("coffee beans") == 2
    assert len([d for d in descriptions if d in {"ride to the station", "refund", "a novel",
                                                   "coffee beans"}]) == 5


def test_restore_into_another_empty_pod(pod_env: PodEnv, tmp_path: Path) -> None:
    # A pod of its own to restore into: bolt is a vendor in alice's records (audit entries name
    # its WebID), and its storage would then be neutralised on one side of the comparison only.
    target = asyncio.run(new_account(pod_env, "restored"))
    alice_config, bolt_config = tmp_path / "alice.json", tmp_path / "restored.json"
    login(alice_config, pod_env, "alice")
    result = run_cli("login", "--webid", target.webid, "--client-id", target.client_id,
                     "--client-secret", target.client_secret, "--config", str(bolt_config))
    assert result.returncode == 0, result.stderr
    csv_path = tmp_path / "more.csv"
    csv_path.write_text(CSV.replace("coffee beans", "tea"))
    run_cli("import", "transactions", str(csv_path), "--config", str(alice_config))
    run_cli("vendors", "add", "Dairy Farm", "--state", "member", "--config", str(alice_config))
    exported = tmp_path / "alice.jsonld"
    cli_json(alice_config, "export", str(exported))
    restored = cli_json(bolt_config, "import", "ledger", str(exported))
    assert restored["resources"] > 5  # type: ignore[index]
    again = run_cli("import", "ledger", str(exported), "--config", str(bolt_config))
    assert again.returncode == 1 and "already holds a ledger" in again.stderr
    round_trip = tmp_path / "bolt.trig"
    cli_json(bolt_config, "export", str(round_trip))

    def graphs(path: Path, fmt: str, *storages: str) -> dict[str, Graph]:
        # The restore moves IRIs to the new storage, except inside a signed agreement, which
        # keeps the IRIs both parties signed (alice's).
        neutral = "http://storage.example/"

        def moved(term: Node) -> Node:
            for storage in storages:
                if isinstance(term, URIRef) and str(term).startswith(storage):
                    return URIRef(str(term).replace(storage, neutral, 1))
                # A negotiation record's plain strings that are URLs in the pod (the resources
                # proposed to the person) move with it too.
                if isinstance(term, Literal) and str(term).startswith(storage):
                    return Literal(str(term).replace(storage, neutral, 1),
                                   datatype=term.datatype, lang=term.language)
            return term

        dataset = Dataset()
        dataset.parse(str(path), format=fmt)
        out = {}
        for graph in dataset.graphs():
            if graph.identifier == dataset.default_graph.identifier or not len(graph):
                continue
            neutral_graph = Graph()
            for triple in graph:
                neutral_graph.add(tuple(moved(t) for t in triple))  # type: ignore[arg-type]
            out[str(moved(URIRef(str(graph.identifier))))] = neutral_graph
        return out

    # The grant index (and the single index document of earlier versions) is not copied: a
    # restore grants again only when asked, and alice's index holds whatever grants other
    # tests left (tests/test_backup.py follows the grants).
    def ledger_only(found: dict[str, Graph]) -> dict[str, Graph]:
        return {name: g for name, g in found.items()
                if "/vrm/grant-index/" not in name and not name.endswith("/vrm/grants")}

    before = ledger_only(graphs(exported, "json-ld", pod_env.alice.pod))
    after = ledger_only(graphs(round_trip, "trig", target.pod, pod_env.alice.pod))
    assert before.keys() == after.keys()
    for name in before:
        assert isomorphic(before[name], after[name]), name


def test_bad_files_are_one_clear_line(pod_env: PodEnv, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    login(config, pod_env)
    cases = {
        "missing.csv": (None, "no such file"),
        "wrong.csv": ("a,b\n1,2\n", "lacks column"),
        "bad.json": ("{", "not valid JSON"),
        "empty.csv": ("date,vendor,description,amount,currency\n",
                      "no transaction could be read"),
        "odd-dates.csv": ("date,vendor,description,amount,currency\nx,y,z,1,EUR\n",
                          "give --date-format"),
        "either-date.csv": ("date,vendor,description,amount,currency\n"
                            "01/02/2024,y,z,1,EUR\n", "--date-format %d/%m/%Y or"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        result = run_cli("import", "transactions", str(path), "--config", str(config))
        assert result.returncode == 1 and "Traceback" not in result.stderr, name
        assert message in result.stderr.splitlines()[-1], (name, result.stderr)
    junk = tmp_path / "junk.trig"
    junk.write_text("this is not trig")
    result = run_cli("import", "ledger", str(junk), "--config", str(config))
    assert result.returncode == 1 and "not a readable trig file" in result.stderr


def test_changes_answer_in_json_and_say_how_to_go_on(pod_env: PodEnv, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    login(config, pod_env)
    unit = cli_json(config, "contact", "add", "email", "cli-changes@example.org", "--id",
                    "email-cli-changes")
    assert unit["id"] == "email-cli-changes"  # type: ignore[index]
    again = run_cli("contact", "add", "email", "other@example.org", "--id",
                    "email-cli-changes", "--config", str(config))
    assert again.returncode == 1 and again.stderr.splitlines() == [
        "vrm-agent: error: a contact unit with id email-cli-changes exists; give this one "
        "another id with --id"]
    not_email = run_cli("contact", "add", "email", "nobody", "--config", str(config))
    assert not_email.returncode == 1 and "is not an e-mail address" in not_email.stderr

    cli_json(config, "terms", "add", "--roster", "sd-base")
    turtle = cli_json(config, "terms", "show", "sd-base")["turtle"]  # type: ignore[index]
    policy = tmp_path / "copy.ttl"
    policy.write_text(turtle)
    added = cli_json(config, "terms", "add", str(policy), "--name", "cli-copy")
    assert added["name"] == "cli-copy" and isinstance(added["rules"], list)  # type: ignore[index]
    twice = run_cli("terms", "add", str(policy), "--name", "cli-copy", "--config", str(config))
    assert twice.returncode == 1 and len(twice.stderr.splitlines()) == 1, twice.stderr
    assert "exist already; add --replace" in twice.stderr and "412" not in twice.stderr
    assert cli_json(config, "terms", "remove", "cli-copy") == {"name": "cli-copy",
                                                               "removed": True}


def test_vocab_serve(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vrm_agent.cli.main", "vocab", "serve", "--port", str(port),
         "--config", str(tmp_path / "c.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                request = urllib.request.Request(f"http://localhost:{port}/vocab",
                                                 headers={"Accept": "application/ld+json"})
                with urllib.request.urlopen(request, timeout=1) as response:
                    assert response.headers["Content-Type"].startswith("application/ld+json")
                    assert b"https://w3id.org/vrm-agent/ns#" in response.read()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("vocab serve did not answer")
    finally:
        process.terminate()
        process.wait(timeout=10)


def messy_export(rows: int = 200) -> tuple[str, list[tuple[str, str, str, Decimal, bool]],
                                           list[int]]:
    """A bank export as banks write them: a preamble, semicolons, DD.MM.YYYY, decimal commas
    with thousands separators, refunds, names beyond ASCII, a note across lines, a stray quote
    and a bad date. Returns the text, what it holds (vendor, date, description, amount, refund)
    and the lines of its bad rows."""
    vendors = ["Bäckerei Müller", "Bäckerei Möller", "Żabka", "Globex Corp", "Tesco Express"]
    lines = ["Umsätze Girokonto;DE02 1234 5678 9012", "",
             "Buchungstag;Empfänger;Verwendungszweck;Betrag;Währung"]
    held: list[tuple[str, str, str, Decimal, bool]] = []
    bad: list[int] = []
    for i in range(rows):
        day = date(2024, 1, 1) + timedelta(days=i * 3)
        vendor = vendors[i % len(vendors)]
        cents = (i * 7919) % 250_000 + 1
        amount = Decimal(cents) / 100
        refund = i % 11 == 5
        text = f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
        description = f"Einkauf {i}"
        if i == 17:  # a note across lines, quoted properly
            description = "Einkauf 17\nzweite Zeile; mit Semikolon"
            fields = [day.strftime("%d.%m.%Y"), vendor, '"Einkauf 17\nzweite Zeile; mit '
                      'Semikolon"', ("-" if refund else "") + text, "EUR"]
        else:
            fields = [day.strftime("%d.%m.%Y"), vendor, description,
                      ("-" if refund else "") + text, "EUR"]
        if i in (40, 120):  # a stray quote: the row is lost, its neighbours are not
            lines.append(f'{day:%d.%m.%Y};Tesco; Express;"Bestellung; 2 Artikel;106,02;EUR')
            bad.append(sum(line.count("\n") + 1 for line in lines))  # the note spans two
        if i == 90:
            lines.append("31.02.2024;Żabka;nie ma takiego dnia;1,00;EUR")
            bad.append(sum(line.count("\n") + 1 for line in lines))
        lines.append(";".join(fields))
        held.append((vendor, day.isoformat(), description, amount, refund))
    return "\n".join(lines) + "\n", held, bad


def test_a_messy_bank_export_lands_row_by_row(pod_env: PodEnv, tmp_path: Path) -> None:
    if pod_env.flavour.value != "wac":
        pytest.skip("one access-control flavour is enough for the file's content")
    config = tmp_path / "config.json"
    login(config, pod_env)
    result = run_cli("vendors", "add", "Globex Corp", "--id", "globex", "--config", str(config))
    assert result.returncode == 0, result.stderr
    text, held, bad = messy_export()
    path = tmp_path / "umsaetze.csv"
    path.write_bytes(text.encode("utf-8-sig"))
    mapping = ("date=Buchungstag,vendor=Empfänger,description=Verwendungszweck,amount=Betrag,"
               "currency=Währung")
    result = run_cli("import", "transactions", str(path), "--map", mapping, "--json",
                     "--config", str(config))
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["transactions"] == len(held) and summary["rows"] == len(held) + len(bad)
    assert [e["line"] for e in summary["errors"]] == bad
    assert summary["format"] == {
        "encoding": "utf-8 with BOM", "delimiter": "semicolon", "header_line": 3,
        "date_format": "%d.%m.%Y", "decimal_comma": True,
        "detected": ["encoding", "delimiter", "date format", "decimal mark"]}
    assert summary["vendors_created"] == 4  # Globex Corp was there already
    assert "read as utf-8 with BOM, semicolon-separated" in result.stderr
    assert f"umsaetze.csv: line {bad[0]}: a quote" in result.stderr

    export = tmp_path / "ledger.trig"
    cli_json(config, "export", str(export))
    dataset = Dataset()
    dataset.parse(str(export), format="trig")
    schema = "http://schema.org/"
    # Alice's ledger holds other tests' vendors too: the file's five are compared.
    ours = {vendor for vendor, *_ in held}
    names = {s: str(o) for s, _p, o, _g in dataset.quads((None, URIRef(schema + "name"), None,
                                                          None)) if str(o) in ours}
    vendor_ids = {name: str(s).rsplit("/", 1)[-1].split("#")[0] for s, name in names.items()}
    assert vendor_ids["Globex Corp"] == "globex"
    assert len(set(vendor_ids.values())) == len(vendor_ids) == 5

    def value(node: Node, name: str) -> Node | None:
        return next((o for _s, _p, o, _g in dataset.quads((node, URIRef(schema + name), None,
                                                            None))), None)

    landed = []
    for node, _p, _o, _g in dataset.quads((None, URIRef(schema + "orderDate"), None, None)):
        if value(node, "seller") not in names:
            continue
        refund = next((o for _s, _p, o, _g in dataset.quads(
            (node, URIRef("https://w3id.org/vrm-agent/ns#refund"), None, None))), None)
        landed.append((names[value(node, "seller")], str(value(node, "orderDate")),  # type: ignore[index]
                       str(value(node, "description")), Decimal(str(value(node, "price"))),
                       refund is not None and refund.toPython() is True))  # type: ignore[attr-defined]
    assert sorted(landed) == sorted(held)

    again = cli_json(config, "import", "transactions", str(path), "--map", mapping, expect=3)
    assert again["already_imported"] is True  # type: ignore[index]
