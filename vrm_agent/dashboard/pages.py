"""The dashboard's pages and forms. Every form posts its session's CSRF token and is answered by
a redirect back (post/redirect/get) with a message in the person's words; what the person or a
vendor wrote is escaped by the templates (autoescaping is on for every template)."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from vrm_agent.daemon.context import AgentContext, context_of
from vrm_agent.daemon.negotiations import NEGOTIATION_ID, NegotiationService
from vrm_agent.dashboard import PREFIX, STATE_KEY, DashboardState
from vrm_agent.dashboard.login import exchange_code, issuer_keys, owner_issuer
from vrm_agent.dashboard.oidc import LoginRefused, authorization_url, verify_id_token
from vrm_agent.dashboard.sessions import Session
from vrm_agent.errors import PodError, VrmAgentError

SESSION_COOKIE = "vrm_dashboard"
LOGIN_COOKIE = "vrm_dashboard_login"
GRANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
REASON_CHARACTERS = 500
STATIC = {"dashboard.css": "text/css", "refresh.js": "text/javascript"}
REFRESH_MILLISECONDS = 5000  # how often a list asks whether it changed
LIVE_LISTS = ("requests", "grants")
HEADERS = {
    # The one script is the dashboard's own file (no inline script); it fetches only from the
    # dashboard, and forms post only to the dashboard itself.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "script-src 'self'; connect-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Vendors write some of what is shown: control characters and bidirectional overrides could
# reorder it, so they are shown as escapes.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> str:
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", str(value))


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@functools.cache
def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("vrm_agent.dashboard", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["shown"] = shown
    environment.filters["when"] = when
    return environment


def state_of(request: web.Request) -> DashboardState:
    return request.app[STATE_KEY]  # type: ignore[return-value]


def service_of(ctx: AgentContext) -> NegotiationService:
    return ctx.extra["negotiations"]  # type: ignore[no-any-return]


def client_id(ctx: AgentContext) -> str:
    return ctx.url(PREFIX + "/client-id")


def redirect_uri(ctx: AgentContext) -> str:
    return ctx.url(PREFIX + "/callback")


def render(name: str, *, status: int = 200, session: Session | None = None,
           **values: Any) -> web.Response:
    page = templates().get_template(name).render(
        session=session, flashes=session.take_flashes() if session else [], prefix=PREFIX,
        **values)
    return web.Response(text=page, status=status, content_type="text/html", headers=HEADERS)


def back(to: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(PREFIX + to, headers=HEADERS)


def current_session(request: web.Request) -> Session | None:
    session = state_of(request).sessions.get(request.cookies.get(SESSION_COOKIE),
                                             time.monotonic())
    ctx = context_of(request)
    return session if session is not None and session.webid == ctx.owner else None


def page_session(request: web.Request) -> Session:
    """The session of a page's viewer; anyone else is sent to log in."""
    session = current_session(request)
    if session is None:
        raise back("/login")
    return session


async def form_session(request: web.Request) -> tuple[Session, Any]:
    """The session of a form's sender and the form, only with the session's CSRF token."""
    session = current_session(request)
    try:
        form = await request.post()
    except (ValueError, web.HTTPException):
        form = {}
    if session is None or not session.csrf_ok(form.get("csrf")):
        raise web.HTTPForbidden(
            text=templates().get_template("refused.html").render(
                session=None, flashes=[], prefix=PREFIX,
                title="This form cannot be accepted",
                message="The form was out of date or did not come from your dashboard; "
                        "nothing was changed. Reload the page and try again."),
            content_type="text/html", headers=HEADERS)
    return session, form


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, secure=True,
                        samesite="Lax")


async def vendor_names(ctx: AgentContext) -> dict[str, str]:
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.store import Ledger

    try:
        vendors = await Ledger(ctx.pod, ctx.storage).list(Vendor)
    except VrmAgentError:
        return {}
    return {v.webid: v.name for v in vendors if v.webid and v.name}


# -- logging in ----------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    if current_session(request) is not None:
        raise back("/")
    return render("login.html", owner=context_of(request).owner)


async def login_start(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    try:
        config = await owner_issuer(ctx.anonymous, ctx.owner)
    except (PodError, VrmAgentError) as exc:
        return render("refused.html", status=502, title="Your pod's login cannot be reached",
                      message=f"The login service named in your WebID profile did not answer "
                              f"as expected ({shown(exc)}). Check that your pod runs "
                              "('vrm-agent pod status'), then try again.")
    login = state_of(request).logins.start(time.monotonic())
    response = web.HTTPSeeOther(authorization_url(
        config, login, client_id=client_id(ctx), redirect_uri=redirect_uri(ctx)),
        headers=HEADERS)
    set_cookie(response, LOGIN_COOKIE, login.browser, max_age=600)
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    try:
        state, code = request.query.get("state"), request.query.get("code")
        if not state or len(state) > 200:
            raise LoginRefused("the login's answer is incomplete")
        login = state_of(request).logins.take(state, request.cookies.get(LOGIN_COOKIE),
                                              time.monotonic())
        if not code or len(code) > 2048:
            raise LoginRefused("the login was not completed at your pod"
                               + (f" ({shown(request.query['error'])[:200]})"
                                  if "error" in request.query else ""))
        config = await owner_issuer(ctx.anonymous, ctx.owner)
        token, keys = await asyncio.gather(
            exchange_code(ctx.anonymous, config, code, login, client_id=client_id(ctx),
                          redirect_uri=redirect_uri(ctx)),
            issuer_keys(ctx.anonymous, config))
        webid = verify_id_token(token, keys, issuer=config.issuer, client_id=client_id(ctx),
                                nonce=login.nonce, now=time.time())
    except VrmAgentError as exc:  # LoginRefused, or the pod and issuer not answering
        why = shown(exc)
        response = render("refused.html", status=400, title="The login did not work",
                          message=f"{why[:1].upper()}{why[1:]}. Nothing was shown or changed; "
                                  "start again from the login page.", login_again=True)
        response.del_cookie(LOGIN_COOKIE, path=PREFIX)
        return response
    if webid != ctx.owner:
        response = render("refused.html", status=403, title="This dashboard is not yours",
                          message=f"You logged in as {shown(webid)}; this agent acts for "
                                  "someone else, and only they may use its dashboard.",
                          login_again=False)
        response.del_cookie(LOGIN_COOKIE, path=PREFIX)
        return response
    session = state_of(request).sessions.create(webid, time.monotonic())
    session.flash("ok", "You are logged in.")
    response = back("/")
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    set_cookie(response, SESSION_COOKIE, session.id, max_age=8 * 3600)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session, _ = await form_session(request)
    state_of(request).sessions.end(session.id)
    response = back("/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    return response


async def client_id_document(request: web.Request) -> web.Response:
    """The Solid Client ID document the issuer fetches to learn who asks and where to return."""
    ctx = context_of(request)
    document = {
        "@context": ["https://www.w3.org/ns/solid/oidc-context.jsonld"],
        "client_id": client_id(ctx),
        "client_name": "vrm-agent dashboard",
        "client_uri": ctx.url(PREFIX + "/"),
        "redirect_uris": [redirect_uri(ctx)],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid webid",
        "token_endpoint_auth_method": "none",
    }
    return web.json_response(document, content_type="application/ld+json")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files("vrm_agent.dashboard").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name],
                        headers={"Cache-Control": "max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})


# -- pages ---------------------------------------------------------------------------------------


async def overview(request: web.Request) -> web.Response:
    from vrm_agent.ledger.records import Relationship, Vendor
    from vrm_agent.ledger.store import Ledger

    session = page_session(request)
    ctx = context_of(request)
    problem, rows = None, []
    try:
        ledger = Ledger(ctx.pod, ctx.storage)
        vendors, relationships = await asyncio.gather(ledger.list(Vendor),
                                                      ledger.list(Relationship))
        waiting = len(await service_of(ctx).pending())
    except VrmAgentError as exc:
        problem, vendors, relationships, waiting = shown(exc), [], [], 0
    by_vendor = {r.vendor_id: r for r in relationships}
    for vendor in sorted(vendors, key=lambda v: v.name.casefold()):
        relationship = by_vendor.get(vendor.id)
        rows.append({
            "name": vendor.name, "id": vendor.id,
            "state": relationship.state if relationship else "none",
            "signal": bool(relationship and relationship.person_signal),
            "vendor_state": relationship.vendor_state if relationship else None,
            "vendor_state_at": relationship.vendor_state_at if relationship else None,
        })
    return render("overview.html", session=session, rows=rows, waiting=waiting,
                  problem=problem, page="overview")


async def requests_page(request: web.Request) -> web.Response:
    from vrm_agent.dashboard.views import in_words, version_tag
    from vrm_agent.negotiation.decide import short
    from vrm_agent.negotiation.durations import duration_text, duration_words

    session = page_session(request)
    ctx = context_of(request)
    problem, items = None, []
    try:
        pending = await service_of(ctx).pending()
        names = await vendor_names(ctx) if pending else {}
    except VrmAgentError as exc:
        problem, pending, names = shown(exc), [], {}
    version = version_tag(p.id for p in pending)
    for waiting in pending:
        items.append({
            "id": waiting.id, "vendor": names.get(waiting.vendor, waiting.vendor),
            "webid": waiting.vendor, "received": waiting.received,
            "offers": waiting.consideration,
            # Plain words first; the exact terms beside them for whoever wants to check.
            "asks": [{"what": in_words(a.target), "action": in_words(a.action),
                      "purpose": in_words(a.purpose),
                      "terms": " ".join(short(t) for t in (a.action, a.target, a.purpose)),
                      "duration": duration_words(a.duration) if a.duration else None,
                      "duration_term": duration_text(a.duration) if a.duration else None,
                      "resources": list(waiting.resources.get(a.target, ()))}
                     for a in waiting.asks],
        })
    return render("requests.html", session=session, items=items, problem=problem,
                  page="requests", version=version, every=REFRESH_MILLISECONDS)


async def approve(request: web.Request) -> web.StreamResponse:
    session, form = await form_session(request)
    negotiation_id = request.match_info["id"]
    chosen = [v for v in form.getall("only", []) if isinstance(v, str)]
    if not NEGOTIATION_ID.fullmatch(negotiation_id):
        session.flash("error", "That request is not one of yours; choose one from the list.")
    elif not chosen:
        session.flash("error", "Choose at least one thing to share, or deny the request.")
    else:
        try:
            record = await service_of(context_of(request)).approve(negotiation_id, chosen)
        except VrmAgentError as exc:
            session.flash("error", f"Not approved: {shown(exc)}. The list shows what waits.")
        else:
            name = (await vendor_names(context_of(request))).get(record.vendor, record.vendor)
            if record.access:
                until = max(a.until for a in record.access)
                session.flash("ok", f"Agreed with {name}: it may read what you chose until "
                                    f"{when(until)}. It has been told.")
            else:
                session.flash("ok", f"Offered {name} the part you chose; it may accept.")
    raise back("/requests")


async def deny(request: web.Request) -> web.StreamResponse:
    session, form = await form_session(request)
    negotiation_id = request.match_info["id"]
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not NEGOTIATION_ID.fullmatch(negotiation_id):
        session.flash("error", "That request is not one of yours; choose one from the list.")
    elif len(reason) > REASON_CHARACTERS:
        session.flash("error", f"The reason is longer than {REASON_CHARACTERS} characters; "
                               "shorten it and deny again.")
    else:
        try:
            record = await service_of(context_of(request)).deny(negotiation_id,
                                                                 reason or None)
        except VrmAgentError as exc:
            session.flash("error", f"Not denied: {shown(exc)}. The list shows what waits.")
        else:
            name = (await vendor_names(context_of(request))).get(record.vendor, record.vendor)
            session.flash("ok", f"Declined the request from {name}. It has been told.")
    raise back("/requests")


async def grants_page(request: web.Request) -> web.Response:
    from vrm_agent.dashboard.views import version_tag

    session = page_session(request)
    ctx = context_of(request)
    problem = None
    try:
        grants = await ctx.access.grants()
        names = await vendor_names(ctx) if grants else {}
    except VrmAgentError as exc:
        problem, grants, names = shown(exc), [], {}
    version = version_tag(f"{g.id} {g.expires.isoformat()}" for g in grants)
    items = [{"id": g.id, "agent": names.get(g.agent, g.agent), "webid": g.agent,
              "resources": list(g.resources), "until": g.expires,
              "modes": sorted(m.label for m in g.modes),
              "agreement": negotiation_of(g.id, g.agreement)}
             for g in sorted(grants, key=lambda g: g.expires)]
    return render("grants.html", session=session, items=items, problem=problem, page="grants",
                  version=version, every=REFRESH_MILLISECONDS)


async def list_version(request: web.Request) -> web.Response:
    """A short tag of what a live list shows (requests, grants), for the page's script to
    notice a change made elsewhere; the owner's session only."""
    from vrm_agent.dashboard.views import version_tag

    if current_session(request) is None:
        raise web.HTTPForbidden(text="log in again", headers=HEADERS)
    ctx = context_of(request)
    which = request.match_info["list"]
    try:
        if which == "requests":
            tag = version_tag(p.id for p in await service_of(ctx).pending())
        elif which == "grants":
            tag = version_tag(f"{g.id} {g.expires.isoformat()}"
                              for g in await ctx.access.grants())
        else:
            raise web.HTTPNotFound(headers=HEADERS)
    except VrmAgentError:
        tag = "unreadable"  # the page says why when it is loaded
    return web.Response(text=tag, content_type="text/plain", headers=HEADERS)


def negotiation_of(grant_id: str, agreement: str | None) -> str | None:
    """The negotiation a grant carries out: its id starts with the negotiation's, and its
    agreement is that negotiation."""
    negotiation_id = grant_id.split("-", 1)[0]
    if agreement and NEGOTIATION_ID.fullmatch(negotiation_id) and agreement.endswith(
            f"/negotiations/{negotiation_id}"):
        return negotiation_id
    return None


async def revoke(request: web.Request) -> web.StreamResponse:
    session, _ = await form_session(request)
    grant_id = request.match_info["id"]
    ctx = context_of(request)
    if not GRANT_ID.fullmatch(grant_id):
        session.flash("error", "That grant is not one of yours; choose one from the list.")
        raise back("/grants")
    try:
        found = [g for g in await ctx.access.grants() if g.id == grant_id]
        if not found:
            session.flash("error", "That grant is no longer in force; the list shows what is.")
            raise back("/grants")
        grant = found[0]
        names = await vendor_names(ctx)
        if negotiation_of(grant.id, grant.agreement):
            await service_of(ctx).revoke(grant.id)
            told = " The agreement has ended and the vendor has been told."
        else:
            await ctx.access.revoke(grant.id)
            await ctx.access.flush()
            told = ""
    except VrmAgentError as exc:
        session.flash("error", f"Not revoked: {shown(exc)}.")
    else:
        session.flash("ok", f"Revoked: {names.get(grant.agent, grant.agent)} can no longer "
                            f"read what this grant covered.{told}")
    raise back("/grants")


# -- contact data and change of address ---------------------------------------------------------


async def contact_page(request: web.Request) -> web.Response:
    from vrm_agent.daemon.changes import Changes
    from vrm_agent.ledger.records import ContactUnit
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.negotiation.changes import told_rows

    session = page_session(request)
    ctx = context_of(request)
    problem, items = None, []
    try:
        units = await Ledger(ctx.pod, ctx.storage).list(ContactUnit)
        changes = Changes(service_of(ctx))
        told = await asyncio.gather(*(changes.contact_told(u.id) for u in units))
        names = await vendor_names(ctx) if units else {}
    except VrmAgentError as exc:
        problem, units, told, names = shown(exc), [], [], {}
    for unit, (url, change) in zip(units, told, strict=True):
        items.append({"unit": unit, "resource": url,
                      "changed_at": change.at if change else None,
                      "told": told_rows(change, names) if change else []})
    return render("contact.html", session=session, items=items, problem=problem,
                  page="contact")


async def change_contact(request: web.Request) -> web.StreamResponse:
    from vrm_agent.daemon.changes import Changes
    from vrm_agent.dashboard.forms import FormProblem, contact_changes
    from vrm_agent.ledger.records import ContactUnit
    from vrm_agent.ledger.store import Ledger

    session, form = await form_session(request)
    unit_id = request.match_info["id"]
    ctx = context_of(request)
    if not GRANT_ID.fullmatch(unit_id):
        session.flash("error", "That contact is not one of yours; choose one from the list.")
        raise back("/contact")
    try:
        unit = await Ledger(ctx.pod, ctx.storage).get(ContactUnit, unit_id)
        fields = contact_changes(unit, form)
        _, _, change = await Changes(service_of(ctx)).change_contact(unit_id, fields)
    except FormProblem as exc:
        session.flash("error", f"Not changed: {exc}.")
    except VrmAgentError as exc:
        session.flash("error", f"Not changed: {shown(exc)}. The list shows what is stored.")
    else:
        count = len(change.notices)
        session.flash("ok", f"Changed {unit.type} {unit_id}. "
                            + (f"{count} vendor(s) with an agreement sharing it were told; "
                               "below is who has read it since." if count else
                               "No agreement in force shares it, so no vendor was told."))
    raise back("/contact")


# -- terms ----------------------------------------------------------------------------------------


async def terms_page(request: web.Request) -> web.Response:
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.terms import TermsStore, roster_rows, terms_rows
    from vrm_agent.negotiation.terms import ROSTER

    session = page_session(request)
    ctx = context_of(request)
    problem, roster, own = None, [], []
    try:
        store = TermsStore(Ledger(ctx.pod, ctx.storage), ctx.owner)
        terms = await store.all()
        roster = roster_rows(terms, store.invalid)
        own = [r for r in terms_rows(terms, store.invalid) if r["name"] not in ROSTER]
    except VrmAgentError as exc:
        problem = shown(exc)
    return render("terms.html", session=session, roster=roster, own=own, problem=problem,
                  page="terms")


async def switch_term(request: web.Request) -> web.StreamResponse:
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.terms import TermsStore
    from vrm_agent.negotiation.terms import ROSTER

    session, form = await form_session(request)
    name, switch = request.match_info["name"], form.get("switch")
    ctx = context_of(request)
    if name not in ROSTER or switch not in ("on", "off"):
        session.flash("error", "That is not one of the starter terms; choose one from the list.")
        raise back("/terms")
    store = TermsStore(Ledger(ctx.pod, ctx.storage), ctx.owner)
    try:
        if switch == "on":
            policy = await store.add_roster(name)
            session.flash("ok", f"Switched on: {policy.title or name}. The agent answers "
                                "vendors with it within 10 seconds.")
        else:
            await store.remove(name)
            session.flash("ok", f"Switched off: {name}. Within 10 seconds the agent no "
                                "longer answers vendors with it.")
    except VrmAgentError as exc:
        session.flash("error", f"Not switched {switch}: {shown(exc)}.")
    raise back("/terms")


# -- the audit log ---------------------------------------------------------------------------------


async def audit_timeline(request: web.Request) -> web.Response:
    from vrm_agent.dashboard.forms import FormProblem, audit_page, audit_query
    from vrm_agent.ledger.audit import EVENT_NAMES, AuditLog

    session = page_session(request)
    ctx = context_of(request)
    today = datetime.now(UTC).date()
    problem, refused, events, more = None, None, [], False
    names = await vendor_names(ctx)
    try:
        query = audit_query(request.query, today, EVENT_NAMES, names)
    except FormProblem as exc:
        refused, query = f"{exc}.", audit_query({}, today, (), ())
    if refused is None:
        try:
            log = AuditLog(ctx.pod, service_of(ctx).layout)
            days = await asyncio.gather(*(log.events(datetime.combine(day, datetime.min.time(),
                                                                       UTC))
                                          for day in query.days()))
            events, more = audit_page([e for day in days for e in day], query)
        except VrmAgentError as exc:
            problem = shown(exc)
    rows = [{**e, "at": parse_time(e.get("at")),
             "vendor_name": names.get(str(e.get("vendor")), e.get("vendor"))} for e in events]
    later = {k: v for k, v in (("from", query.first.isoformat()), ("to", query.last.isoformat()),
                               ("type", query.type), ("vendor", query.vendor),
                               ("page", str(query.page + 1))) if v}
    return render("audit.html", session=session, rows=rows, query=query, refused=refused,
                  problem=problem, types=sorted(EVENT_NAMES), vendors=sorted(
                      names.items(), key=lambda n: n[1].casefold()),
                  next_page=urlencode(later) if more else None, page="audit")


def parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


# -- who holds what --------------------------------------------------------------------------------


async def holdings_page(request: web.Request) -> web.Response:
    from vrm_agent.dashboard.views import holdings
    from vrm_agent.negotiation.records import NegotiationRecord

    session = page_session(request)
    ctx = context_of(request)
    problem, rows = None, []
    try:
        grants = await ctx.access.grants()
        ids = sorted({n for g in grants if (n := negotiation_of(g.id, g.agreement))})
        # A record that cannot be read leaves its grant shown with its resources only.
        found = await asyncio.gather(*(service_of(ctx).load(i) for i in ids),
                                     return_exceptions=True)
        records = {r.id: r for r in found if isinstance(r, NegotiationRecord)}
        names = await vendor_names(ctx) if grants else {}
        rows = holdings(grants, records, names, negotiation_of)
    except VrmAgentError as exc:
        problem = shown(exc)
    return render("holdings.html", session=session, rows=rows, problem=problem,
                  page="holdings")


async def agreement_download(request: web.Request) -> web.StreamResponse:
    """The signed agreement's record as stored in the pod, for the owner only: one made by a
    negotiation or by accepting an intent's offer, and nothing else."""
    from vrm_agent.dashboard.views import agreement_file_id, download_name
    from vrm_agent.errors import NotFound

    session = page_session(request)
    ctx = context_of(request)
    agreement_id = agreement_file_id(request.match_info["id"])
    missing = render("refused.html", status=404, session=session, page="holdings",
                     title="No such agreement",
                     message="There is no agreement record by that name; choose one from "
                             "Who holds what or Intents.", login_again=False)
    if agreement_id is None:
        return missing
    try:
        stored = await ctx.pod.get(service_of(ctx).agreement_url(agreement_id),
                                   accept="text/turtle")
    except NotFound:
        return missing
    except VrmAgentError as exc:
        return render("refused.html", status=502, session=session, page="holdings",
                      title="Your pod could not be read",
                      message=f"The agreement could not be read ({shown(exc)}). Check that "
                              "your pod runs, then try again.", login_again=False)
    kind = "application/ld+json" if stored.content_type == "application/ld+json" \
        else "text/turtle"
    suffix = "jsonld" if kind == "application/ld+json" else "ttl"
    return web.Response(body=stored.body, content_type=kind, headers={
        **HEADERS, "Content-Disposition":
            f'attachment; filename="{download_name(agreement_id)}.{suffix}"'})
