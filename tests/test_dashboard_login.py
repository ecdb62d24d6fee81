"""The dashboard login's pure parts, without a browser or a pod: PKCE, state and nonce used once
and briefly, the ID token's checks with keys made here, and the sessions' bounds."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from vrm_agent.dashboard.oidc import (
    IssuerConfig,
    LoginRefused,
    PendingLogins,
    authorization_url,
    code_challenge,
    code_verifier,
    parse_discovery,
    verify_id_token,
)
from vrm_agent.dashboard.sessions import Sessions

ISSUER = "http://localhost:3000/"
CLIENT = "http://localhost:8750/dashboard/client-id"
WEBID = "http://localhost:3000/me/profile/card#me"


def test_the_code_challenge_is_s256_of_the_verifier() -> None:
    verifier = code_verifier()
    assert 43 <= len(verifier) <= 128 and verifier != code_verifier()
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64decode(code_challenge(verifier) + "=") == digest


def test_a_state_is_taken_once_by_the_browser_that_started_it() -> None:
    logins = PendingLogins()
    login = logins.start(now=0)
    with pytest.raises(LoginRefused, match="another browser"):
        logins.take(login.state, "someone-else", now=1)
    with pytest.raises(LoginRefused, match="already used"):  # a failed try used it up
        logins.take(login.state, login.browser, now=1)
    again = logins.start(now=2)
    assert logins.take(again.state, again.browser, now=3) == again
    with pytest.raises(LoginRefused, match="already used"):
        logins.take(again.state, again.browser, now=4)


def test_a_state_lasts_ten_minutes_and_few_wait_at_once() -> None:
    logins = PendingLogins(capacity=3, seconds=600)
    late = logins.start(now=0)
    with pytest.raises(LoginRefused, match="too long"):
        logins.take(late.state, late.browser, now=601)
    first, *_ = [logins.start(now=700) for _ in range(4)]
    assert len(logins) == 3
    with pytest.raises(LoginRefused):
        logins.take(first.state, first.browser, now=701)


def test_the_authorization_request_carries_pkce_state_and_nonce() -> None:
    config = IssuerConfig(ISSUER, ISSUER + ".oidc/auth", ISSUER + ".oidc/token",
                          ISSUER + ".oidc/jwks")
    login = PendingLogins().start(now=0)
    url = authorization_url(config, login, client_id=CLIENT,
                            redirect_uri="http://localhost:8750/dashboard/callback")
    assert url.startswith(ISSUER + ".oidc/auth?")
    for part in ("code_challenge_method=S256", f"code_challenge={code_challenge(login.verifier)}",
                 f"state={login.state}", f"nonce={login.nonce}", "scope=openid+webid"):
        assert part in url
    assert login.verifier not in url


def test_discovery_must_speak_for_the_issuer_the_profile_names() -> None:
    document = {"issuer": ISSUER.rstrip("/"), "authorization_endpoint": ISSUER + "auth",
                "token_endpoint": ISSUER + "token", "jwks_uri": ISSUER + "jwks",
                "code_challenge_methods_supported": ["S256"]}
    assert parse_discovery(document, ISSUER).token_endpoint == ISSUER + "token"
    with pytest.raises(LoginRefused, match="another issuer"):
        parse_discovery({**document, "issuer": "http://evil.example/"}, ISSUER)
    with pytest.raises(LoginRefused, match="S256"):
        parse_discovery({**document, "code_challenge_methods_supported": ["plain"]}, ISSUER)
    with pytest.raises(LoginRefused, match="token endpoint"):
        parse_discovery({**document, "token_endpoint": "javascript:alert(1)"}, ISSUER)
    with pytest.raises(LoginRefused):
        parse_discovery(["not", "an", "object"], ISSUER)


KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
KEYS = KeySet([ECKey.import_key(KEY.as_dict(private=False))])


def id_token(key: ECKey = KEY, **changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "aud": CLIENT, "sub": "account-1",
                                 "webid": WEBID, "nonce": "n-1", "iat": now, "exp": now + 300}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)


def check(token: str, nonce: str = "n-1") -> str:
    return verify_id_token(token, KEYS, issuer=ISSUER, client_id=CLIENT, nonce=nonce,
                           now=time.time())


def test_a_good_id_token_gives_its_webid() -> None:
    assert check(id_token()) == WEBID
    assert check(id_token(iss=ISSUER.rstrip("/"))) == WEBID
    assert check(id_token(webid=None, sub=WEBID)) == WEBID  # sub is the WebID itself
    assert check(id_token(aud=[CLIENT, "other"], azp=CLIENT)) == WEBID


@pytest.mark.parametrize(("changes", "why"), [
    ({"iss": "http://evil.example/"}, "another issuer"),
    ({"aud": "http://evil.example/client"}, "another client"),
    ({"aud": [CLIENT, "other"]}, "another client"),  # several audiences and no azp
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"iat": int(time.time()) + 3600}, "future"),
    ({"nonce": "n-2"}, "another login"),
    ({"nonce": None}, "another login"),
    ({"webid": None}, "no WebID"),  # sub is an account id, not a WebID
])
def test_an_id_token_with_a_wrong_claim_is_refused(changes: dict[str, object],
                                                    why: str) -> None:
    with pytest.raises(LoginRefused, match=why):
        check(id_token(**changes))


def test_an_id_token_signed_by_another_key_or_none_is_refused() -> None:
    with pytest.raises(LoginRefused, match="signature"):
        check(id_token(key=ECKey.generate_key("P-256", parameters={"kid": "k1"})))
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    payload = id_token().split(".")[1]
    with pytest.raises(LoginRefused, match="signature"):
        check(f"{header}.{payload}.")
    secret = OctKey.generate_key(256)
    with pytest.raises(LoginRefused, match="signature"):
        check(jwt.encode({"alg": "HS256", "kid": "k1"}, {"iss": ISSUER}, secret))
    with pytest.raises(LoginRefused):
        check("not a token")


def test_sessions_are_bounded_in_number_and_time() -> None:
    sessions = Sessions(capacity=2, lifetime=100, idle=10)
    first = sessions.create(WEBID, now=0)
    assert sessions.get(first.id, now=5) is first
    second = sessions.create(WEBID, now=6)
    sessions.get(first.id, now=7)  # first is used again: second is the least recent
    sessions.create(WEBID, now=8)
    assert len(sessions) == 2 and sessions.get(second.id, now=8) is None
    assert sessions.get(first.id, now=18) is None  # idle for 11 s
    kept = sessions.create(WEBID, now=20)
    for moment in range(25, 130, 5):
        found = sessions.get(kept.id, now=moment)
    assert found is None  # past its lifetime, however active
    assert sessions.get("guessed", now=0) is None and sessions.get(None, now=0) is None


def test_a_session_checks_its_csrf_token_and_keeps_few_messages() -> None:
    session = Sessions().create(WEBID, now=0)
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("") and not session.csrf_ok(None)
    assert not session.csrf_ok(session.csrf[:-1])
    for n in range(9):
        session.flash("ok", f"message {n}")
    assert [t for _, t in session.take_flashes()] == [f"message {n}" for n in range(4, 9)]
    assert session.take_flashes() == []


# -- what the pages compute ------------------------------------------------------------------------


def test_a_contact_form_sends_only_what_changed_and_refuses_what_cannot_be_stored() -> None:
    from vrm_agent.dashboard.forms import FormProblem, contact_changes
    from vrm_agent.ledger.records import ContactUnit

    home = ContactUnit("address-home", "address", "1 Old Street", locality="Oldtown")
    form = {"value": " 2 New Road ", "label": "", "locality": "Oldtown", "country": "DE"}
    assert contact_changes(home, form) == {"value": "2 New Road", "country": "DE"}
    assert contact_changes(home, {"locality": ""}) == {"locality": ""}  # emptied: cleared
    for bad, said in (({"value": ""}, "empty"), ({"value": "1 Old Street"}, "nothing"),
                      ({"label": "x" * 301}, "shorten"), ({}, "nothing")):
        with pytest.raises(FormProblem, match=said):
            contact_changes(home, bad)


def test_the_roster_shows_each_term_on_or_off_with_what_it_means_for_vendors() -> None:
    from vrm_agent.ledger.terms import roster_rows, terms_rows
    from vrm_agent.negotiation.terms import ROSTER, no_marketing
    from vrm_agent.policy.model import Policy

    stored = {"no-marketing": Policy("x", "Offer", title="Mine")}
    rows = {r["name"]: r for r in roster_rows(stored, {"no-marketing": ["no rules"]})}
    assert list(rows) == list(ROSTER)
    assert rows["no-marketing"]["on"] and not rows["no-marketing"]["valid"]
    assert rows["no-marketing"]["title"] == "Mine"  # what is stored, not the roster's copy
    off = rows["no-stalking"]
    assert not off["on"] and off["title"] == "No stalking (#NoStalking)"
    assert "dpv:PersonalisedAdvertising" in str(off["rules"])
    assert all(r["for_vendors"] for r in rows.values())
    assert terms_rows(stored, {})[0]["valid"] and no_marketing("p").title == "No marketing"


def test_the_audit_filters_are_checked_and_bounded() -> None:
    from datetime import date

    from vrm_agent.dashboard.forms import AUDIT_DAYS, FormProblem, audit_query

    today, types, vendors = date(2026, 3, 10), ("AgreementReached", "DataChanged"), ("v1",)
    week = audit_query({}, today, types, vendors)
    assert (week.first, week.last, week.type, week.vendor) == (date(2026, 3, 4), today, None, None)
    assert week.days()[0] == today and len(week.days()) == 7  # newest first
    later = audit_query({"to": "2027-01-01", "type": "DataChanged", "vendor": "v1"}, today,
                        types, vendors)
    assert later.last == today and later.type == "DataChanged"  # never past today
    for bad, said in (({"from": "2026-03-09", "to": "2026-03-01"}, "swap"),
                      ({"from": "2025-01-01"}, f"more than {AUDIT_DAYS}"),
                      ({"from": "yesterday"}, "not a date"), ({"from": "2026-02-30"}, "not a date"),
                      ({"type": "<script>"}, "event type"), ({"vendor": "v2"}, "not one of yours"),
                      ({"page": "0"}, "page"), ({"page": "x"}, "page"),
                      ({"page": "9" * 5000}, "page"), ({"page": "\u00b2"}, "page"),
                      ({"to": "\u0662\u0660\u0662\u0666-03-01"}, "not a date")):
        with pytest.raises(FormProblem, match=said):
            audit_query(bad, today, types, vendors)


def test_the_timeline_is_filtered_newest_first_in_pages() -> None:
    from datetime import date

    from vrm_agent.dashboard.forms import AUDIT_PAGE, AuditQuery, audit_page

    events = [{"type": "DataChanged" if n % 2 else "AgreementReached", "vendor": "v1",
               "at": f"2026-03-01T00:{n // 60:02d}:{n % 60:02d}+00:00"}
              for n in range(3 * AUDIT_PAGE)]
    first = AuditQuery(date(2026, 3, 1), date(2026, 3, 1), type="DataChanged")
    shown, more = audit_page(events, first)
    assert len(shown) == AUDIT_PAGE and more
    assert {e["type"] for e in shown} == {"DataChanged"}
    assert [e["at"] for e in shown] == sorted((e["at"] for e in shown), reverse=True)
    rest, more = audit_page(events, AuditQuery(first.first, first.last, "DataChanged", page=2))
    assert len(rest) == AUDIT_PAGE // 2 and not more and rest[0]["at"] < shown[-1]["at"]
    assert audit_page(events, AuditQuery(first.first, first.last, vendor="v2")) == ([], False)


def test_who_holds_what_comes_from_the_grants_and_their_agreements() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from vrm_agent.access.index import GrantView
    from vrm_agent.access.model import AccessMode
    from vrm_agent.dashboard.pages import negotiation_of
    from vrm_agent.dashboard.views import agreement_categories, holdings
    from vrm_agent.negotiation.odrl import Policy, Rule
    from vrm_agent.negotiation.wire import policy_json

    pd = "https://w3id.org/dpv/pd#"
    signed = {**policy_json(Policy("urn:a", "Agreement", (
        Rule("permission", "use", (pd + "EmailAddress", pd + "PhysicalAddress")),
        Rule("prohibition", "use", (pd + "Purchase",))))), "proof": {"x": 1}}
    assert agreement_categories(signed) == ["email address", "physical address"]
    assert agreement_categories({"odrl:permission": "garbage"}) == []  # unreadable: none

    def grant(grant_id: str, agent: str, agreement: str | None, day: int) -> GrantView:
        return GrantView(grant_id, agent, ("https://pod/me/email",), frozenset({AccessMode.READ}),
                         datetime(2026, 3, day, tzinfo=UTC), False, agreement)

    agreed = "0123456789abcdef"
    grants = [grant(f"{agreed}-1", "https://shop/#me", f"https://agent/negotiations/{agreed}", 9),
              grant("shared-by-hand", "https://friend/#me", None, 5)]
    rows = holdings(grants, {agreed: SimpleNamespace(agreement=signed)},  # type: ignore[dict-item]
                    {"https://shop/#me": "<b>Shop</b>"}, negotiation_of)
    assert [(r["vendor"], r["categories"], r["agreement"]) for r in rows] == [
        ("<b>Shop</b>", ["email address", "physical address"], agreed),
        ("https://friend/#me", [], None)]


def test_a_list_version_changes_with_what_the_list_shows_only() -> None:
    from vrm_agent.dashboard.views import version_tag

    tag = version_tag(["a", "b"])
    assert len(tag) == 16 and tag == version_tag(["b", "a"])  # order is not a change
    assert tag != version_tag(["a"]) and tag != version_tag(["a", "b", "c"])
    assert version_tag([]) == version_tag(())


def test_terms_are_shown_in_plain_words_and_strangers_iris_as_they_are() -> None:
    from vrm_agent.dashboard.views import in_words

    pd, dpv = "https://w3id.org/dpv/pd#", "https://w3id.org/dpv#"
    assert in_words(pd + "EmailAddress") == "email address"
    assert in_words(dpv + "ServiceProvision") == "service provision"
    assert in_words("http://www.w3.org/ns/odrl/2/read") == "read"
    assert in_words(pd + "IPAddress") == "IP address"  # an acronym keeps its capitals
    assert in_words(pd + "NoSuchTermYet") == "no such term yet"  # not in the pinned DPV
    hostile = "https://shop.example/<b>Data</b>"
    assert in_words(hostile) == hostile  # no word is made up for a stranger's IRI
    assert in_words(None) == "(nothing named)"


@pytest.mark.parametrize(("seconds", "words"), [
    (30 * 86400, "30 days"), (86400, "1 day"), (86400 + 6 * 3600, "1 day and 6 hours"),
    (3600 + 60 + 1, "1 hour and 1 minute"), (45, "45 seconds"), (0, "no time at all")])
def test_durations_are_said_in_their_two_largest_units(seconds: int, words: str) -> None:
    from datetime import timedelta

    from vrm_agent.negotiation.durations import duration_words

    assert duration_words(timedelta(seconds=seconds)) == words
