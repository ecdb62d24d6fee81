"""The intents page's pure parts, without a browser or a pod: the rows the page shares with the
command line, the order and bound of what it shows, the ids its forms and downloads accept, and
the page as rendered (vendors' words as text, decisions only on open intents)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from vrm_agent.daemon.intents import intent_row, offer_row
from vrm_agent.dashboard.views import (
    agreement_file_id,
    download_name,
    intent_card,
    intents_in_order,
    is_record_id,
)
from vrm_agent.ledger.intents import Intent, IntentAudience, IntentOffer

POD = "https://pod.example/me/"
TERMS = POD + "vrm/terms/sd-base#it"
SHOP, BIKES = "https://shop.example/#me", "https://bikes.example/#me"
AGENT = "https://agent.example/"
# What intent_row asks of the service: where the intent's document and offers endpoint are.
URLS = SimpleNamespace(document=lambda i: f"{POD}vrm/intents/{i}",
                       offers_endpoint=lambda i: f"{AGENT}intents/{i}/offers")


def intent(intent_id: str, day: int, **changes: object) -> Intent:
    values: dict[str, object] = {"what": "touring bicycle", "max_price": Decimal("1200"),
                                 "currency": "EUR", "terms": TERMS,
                                 "created": datetime(2026, 3, day, 9, tzinfo=UTC)}
    values.update(changes)
    return Intent(intent_id, **values)  # type: ignore[arg-type]


def offer(offer_id: str, seller: str, price: str, currency: str = "EUR",
          **changes: object) -> IntentOffer:
    return IntentOffer(offer_id, "bike", seller, Decimal(price), currency, TERMS,
                       datetime(2026, 3, 2, 10, tzinfo=UTC), **changes)  # type: ignore[arg-type]


def test_an_intent_row_is_the_one_the_command_line_prints() -> None:
    wanted = intent("bike", 1, where="Amsterdam", starts=date(2026, 4, 1),
                    ends=date(2026, 4, 30))
    closed = datetime(2026, 3, 5, tzinfo=UTC)
    audience = IntentAudience("bike", vendors=(SHOP,), accepted_offer=(
        f"{POD}vrm/offers/bike/abc-1#it"), closed=closed)
    assert intent_row(wanted, audience, URLS) == {  # type: ignore[arg-type]
        "id": "bike", "what": "touring bicycle", "where": "Amsterdam",
        "from": date(2026, 4, 1), "until": date(2026, 4, 30), "budget": "1200.00",
        "currency": "EUR", "terms": TERMS, "visible_to": [SHOP], "state": "closed",
        "created": datetime(2026, 3, 1, 9, tzinfo=UTC), "closed": closed,
        "accepted_offer": "abc-1", "resource": f"{POD}vrm/intents/bike",
        "offers_endpoint": f"{AGENT}intents/bike/offers"}
    row = intent_row(wanted, IntentAudience("bike", public=True), URLS)  # type: ignore[arg-type]
    assert (row["visible_to"], row["state"], row["accepted_offer"]) == ("everyone", "open", None)


def test_an_offer_row_names_the_vendor_from_the_ledger_else_by_its_webid() -> None:
    made = offer("abc-1", SHOP, "949.9", availability="https://schema.org/InStock",
                 description="with lights")
    assert offer_row(made, {SHOP: "Shop & Co"}) == {
        "id": "abc-1", "vendor": "Shop & Co", "vendor_webid": SHOP, "price": "949.90",
        "currency": "EUR", "availability": "InStock", "from": None,
        "received": datetime(2026, 3, 2, 10, tzinfo=UTC), "description": "with lights"}
    assert offer_row(made, {})["vendor"] == SHOP


def test_open_intents_come_first_then_closed_newest_first_and_few_closed() -> None:
    closed = datetime(2026, 3, 20, tzinfo=UTC)
    pairs = [(intent(f"c{day}", day), IntentAudience(f"c{day}", public=True, closed=closed))
             for day in range(1, 6)]
    pairs += [(intent("o1", 1), IntentAudience("o1", public=True)),
              (intent("o9", 9), IntentAudience("o9", public=True))]
    shown, left_out = intents_in_order(pairs, closed_shown=3)
    assert [i.id for i, _ in shown] == ["o9", "o1", "c5", "c4", "c3"]
    assert left_out == 2
    assert intents_in_order([], closed_shown=3) == ([], 0)


def test_an_intent_card_compares_offers_cheapest_first_and_marks_the_accepted_one() -> None:
    audience = IntentAudience("bike", vendors=(BIKES, SHOP),
                              accepted_offer=f"{POD}vrm/offers/bike/s-1#it",
                              closed=datetime(2026, 3, 5, tzinfo=UTC))
    row = intent_row(intent("bike", 1), audience, URLS)  # type: ignore[arg-type]
    offers = [offer("b-1", BIKES, "1100"), offer("s-1", SHOP, "899.50"),
              offer("b-2", BIKES, "950")]
    card = intent_card(row, offers, {BIKES: "<b>Bikes</b>"})
    assert [(o["id"], o["price"], o["vendor"], o["accepted"]) for o in card["offers"]] == [
        ("s-1", "899.50", SHOP, True), ("b-2", "950.00", "<b>Bikes</b>", False),
        ("b-1", "1100.00", "<b>Bikes</b>", False)]
    assert card["who"] == f"<b>Bikes</b>, {SHOP}"
    assert card["agreement"] == "intent-bike" and not card["offers_unreadable"]
    still_open = intent_row(intent("bike", 1), IntentAudience("bike", public=True),
                            URLS)  # type: ignore[arg-type]
    unread = intent_card(still_open, None, {})
    assert unread["offers_unreadable"] and unread["offers"] == []
    assert unread["agreement"] is None and unread["who"] == "everyone"


@pytest.mark.parametrize("name", ["0123456789abcdef", "intent-bike", "intent-4f2a9c_b-1"])
def test_an_agreement_download_takes_a_negotiation_or_an_accepted_intent(name: str) -> None:
    assert agreement_file_id(name) == name


@pytest.mark.parametrize("name", [
    "0123456789ABCDEF", "0123456789abcde", "intent-", "intent-..", "intent-.hidden",
    "intent-a/b", "intent-../../profile/card", "intent-a%2Fb", "intent-x.acl", "intent-a b",
    "intent-a\nb", "intents-bike", "bike", "../agreements/x", "intent-" + "x" * 129, ""])
def test_an_agreement_download_refuses_any_other_name(name: str) -> None:
    assert agreement_file_id(name) is None


def test_ids_follow_the_ledgers_rules_and_file_names_stay_plain() -> None:
    assert is_record_id("bike-2026") and is_record_id("4f2a9c0b1d-1a2b3c4d")
    for bad in ("", ".acl", "a/b", "a?b", "a#b", "a b", "x" * 129, "bike.meta"):
        assert not is_record_id(bad), bad
    assert download_name("intent-bike") == "agreement-intent-bike"
    assert download_name("intent-vélo;\"x") == "agreement-intent-v_lo__x"


def test_the_page_shows_vendors_words_as_text_and_decisions_only_on_open_intents() -> None:
    from vrm_agent.dashboard.pages import templates
    from vrm_agent.dashboard.sessions import Session

    open_card = intent_card(intent_row(intent("bike", 2), IntentAudience("bike", public=True),
                                       URLS),  # type: ignore[arg-type]
                            [offer("s-1", SHOP, "900", description="<script>x</script>")],
                            {SHOP: "<i>Shop</i>"})
    audience = IntentAudience("tyres", public=True, accepted_offer=f"{POD}vrm/offers/tyres/s-2#it",
                              closed=datetime(2026, 3, 5, tzinfo=UTC))
    closed_card = intent_card(intent_row(intent("tyres", 1, what="winter tyres"), audience,
                                         URLS),  # type: ignore[arg-type]
                              [offer("s-2", SHOP, "250")], {})
    page = templates().get_template("intents.html").render(
        session=Session("s", "https://pod.example/me/profile/card#me", "token", 0.0, 0.0),
        flashes=[],
        prefix="/dashboard", cards=[open_card, closed_card], left_out=0, problem=None,
        page="intents", vendors=[(SHOP, "<i>Shop</i>")], today="2026-03-01")
    assert "&lt;i&gt;Shop&lt;/i&gt;" in page and "<i>Shop</i>" not in page
    assert "&lt;script&gt;" in page and "<script>x" not in page
    assert page.count("/accept\"") == 1 and "/intents/bike/offers/s-1/accept" in page
    assert page.count("/close\"") == 1 and "/intents/bike/close" in page
    assert 'href="/dashboard/agreements/intent-tyres"' in page
    assert page.count('name="csrf" value="token"') == 4  # logout, accept, close, put out
    assert f'name="vendor" value="{SHOP}"' in page
    assert page.index("touring bicycle") < page.index("winter tyres")


def wanted_form(**fields: object) -> object:
    from multidict import MultiDict

    sent: dict[str, object] = {"what": " a  cargo bike ", "budget": "3000.50",
                               "currency": "eur", "audience": "public"}
    sent.update(fields)
    form: MultiDict[object] = MultiDict()
    for name, value in sent.items():
        for one in value if isinstance(value, list) else [value]:
            form.add(name, one)
    return form


def test_the_intent_form_is_checked_and_says_how_to_correct_it() -> None:
    from vrm_agent.dashboard.forms import FormProblem, intent_wanted

    today = date(2026, 3, 1)
    ledger = {SHOP: "Shop", BIKES: "Bikes"}
    wanted = intent_wanted(wanted_form(where="Utrecht", until="2026-03-31"),  # type: ignore[arg-type]
                           today, ledger)
    assert (wanted.what, wanted.budget, wanted.currency, wanted.where, wanted.ends,
            wanted.public, wanted.vendors) == ("a cargo bike", Decimal("3000.50"), "EUR",
                                               "Utrecht", date(2026, 3, 31), True, ())
    chosen = intent_wanted(wanted_form(audience="chosen", vendor=[SHOP, BIKES, SHOP]),  # type: ignore[arg-type]
                           today, ledger)
    assert not chosen.public and chosen.vendors == (BIKES, SHOP)
    for fields, said in (
            ({"what": "  "}, "say what you want"),
            ({"what": "x" * 201}, "shorten it"),
            ({"what": "bike\u0007"}, "write plain text"),
            ({"budget": "1e3"}, "not an amount"),
            ({"budget": "-5"}, "not an amount"),
            ({"currency": "euro"}, "not a code like EUR"),
            ({"until": "31/03/2026"}, "not a date like 2026-03-01"),
            ({"until": "2026-02-28"}, "the last day is in the past"),
            ({"from": "2026-04-02", "until": "2026-04-01"}, "swap them"),
            ({"audience": "nobody"}, "choose who may read it"),
            ({"audience": "public", "vendor": SHOP}, "not both"),
            ({"audience": "chosen"}, "tick at least one vendor"),
            ({"audience": "chosen", "vendor": "https://stranger.example/#me"},
             "not one of yours")):
        with pytest.raises(FormProblem, match=said):
            intent_wanted(wanted_form(**fields), today, ledger)  # type: ignore[arg-type]
