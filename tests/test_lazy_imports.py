"""What the daemon and the command line load before they need it: `vrm-agent --help` loads no
command's code, and the daemon loads the libraries only some paths use (pyld, pyshacl, the HTTP
signatures, the progress bar, the chart library) when a path first uses them. Each check imports
in a fresh interpreter, so what this test process imported already does not hide anything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vrm_agent import vocabulary
from vrm_agent.cli import ledger_commands, negotiation_commands
from vrm_agent.ledger import stats
from vrm_agent.negotiation import terms

HEAVY = ("pyld", "pyshacl", "rdflib.plugins.sparql", "requests", "lxml",
         "http_message_signatures", "tqdm", "jinja2", "pygal")


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_help_loads_no_command_code() -> None:
    loaded = loaded_after("import contextlib, io\n"
                          "from vrm_agent.cli.main import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()), "
                          "contextlib.suppress(SystemExit):\n"
                          "    main(['--help'])")
    assert not loaded & {"asyncio", "aiohttp", "rdflib", "joserfc", "cryptography", "rich",
                          *HEAVY}


@pytest.mark.parametrize("module", ["vrm_agent.daemon.server", "vrm_agent.cli.daemon_commands"])
def test_the_daemon_loads_heavy_libraries_on_first_use(module: str) -> None:
    assert not loaded_after(f"import {module}") & set(HEAVY)


def test_pygal_loads_when_a_chart_is_drawn_and_not_for_the_dashboards_pages() -> None:
    pages = ("import vrm_agent.daemon.server, vrm_agent.dashboard.pages, "
             "vrm_agent.dashboard.spending_pages, vrm_agent.dashboard.charts")
    assert "pygal" not in loaded_after(pages)
    assert "pygal" in loaded_after(
        f"{pages}\n"
        "from vrm_agent.dashboard.charts import Bar, Chart, chart_svg\n"
        "from decimal import Decimal\n"
        "chart_svg(Chart('vendor', 'EUR', (Bar('Shop', Decimal(1), 1),)))")


def test_the_parser_offers_what_the_commands_accept() -> None:
    # Spelled out in the command modules, so the parser is built without loading their homes.
    assert tuple(terms.ROSTER) == negotiation_commands.ROSTER
    assert tuple(vocabulary.RELATIONSHIP_STATES) == ledger_commands.RELATIONSHIP_STATE_NAMES
    assert stats.GROUPINGS == ledger_commands.GROUPINGS


def test_pyld_used_by_the_package_has_the_bundled_loader_as_its_default() -> None:
    # pyld is imported on first use, through the loader module, which makes its loader the
    # default: a pyld call elsewhere in the process that names no loader still fetches nothing.
    loaded_after("from vrm_agent.negotiation.wire import normalise\n"
                 "normalise({'@context': 'https://w3id.org/vrm-agent/protocol/v1', "
                 "'type': 'ContractRequestMessage'})\n"
                 "from pyld import jsonld\n"
                 "from vrm_agent.linkeddata.contexts import load_document\n"
                 "assert jsonld.get_document_loader() is load_document")


def test_checking_what_the_daemon_writes_needs_no_pyshacl() -> None:
    # Every record a negotiation writes (the agreement record with its policy and signatures,
    # terms, audit events, the data map) goes through the compiled graph checks.
    loaded = loaded_after(
        "from tests.test_graph_checks import DAEMON_RECORDS\n"
        "from vrm_agent.vocabulary.compiled import validate_graph\n"
        "for make in DAEMON_RECORDS.values():\n"
        "    validate_graph(make())")
    assert not loaded & {"pyshacl", "rdflib.plugins.sparql"}
