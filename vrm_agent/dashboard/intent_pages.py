"""The intents page: what the person put out, who may read it, the offers vendors made compared
cheapest first, and the person's decisions (accept one offer, or close the intent). Every
decision goes through the daemon's one intent service, as the command line's do."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from aiohttp import web

from vrm_agent.daemon.context import context_of
from vrm_agent.daemon.intent_routes import INTENTS_KEY
from vrm_agent.daemon.intents import (
    IntentClosed,
    IntentService,
    UnknownIntent,
    UnknownOffer,
    intent_row,
)
from vrm_agent.dashboard.pages import back, form_session, page_session, render, shown, vendor_names
from vrm_agent.dashboard.views import intent_card, intents_in_order, is_record_id
from vrm_agent.errors import VrmAgentError
from vrm_agent.ledger.intents import Intent, IntentOffer
from vrm_agent.negotiation.intent_wire import money


def intents_of(request: web.Request) -> IntentService:
    return request.app[INTENTS_KEY]


async def intents_page(request: web.Request) -> web.Response:
    session = page_session(request)
    ctx = context_of(request)
    service = intents_of(request)
    problem, cards, left_out = None, [], 0
    try:
        chosen, left_out = intents_in_order(await service.all())
        # An intent whose offers cannot be read is shown with a note, the others as they are.
        found = await asyncio.gather(*(service.offers(i.id) for i, _ in chosen),
                                     return_exceptions=True)
        names = await vendor_names(ctx)  # also the vendors the form offers to choose
    except VrmAgentError as exc:
        problem, chosen, found, names = shown(exc), [], [], {}
    for (intent, audience), offers in zip(chosen, found, strict=True):
        if isinstance(offers, BaseException) and not isinstance(offers, VrmAgentError):
            raise offers
        cards.append(intent_card(intent_row(intent, audience, service),
                                 None if isinstance(offers, BaseException) else offers, names))
    choices = sorted(names.items(), key=lambda n: (n[1].casefold(), n[0]))
    return render("intents.html", session=session, cards=cards, left_out=left_out,
                  problem=problem, page="intents", vendors=choices,
                  today=datetime.now(UTC).date().isoformat())


async def add_intent(request: web.Request) -> web.StreamResponse:
    """Put out an intent on the person's default terms, as `vrm-agent intent add` does."""
    from vrm_agent.dashboard.forms import FormProblem, intent_wanted

    session, form = await form_session(request)
    ctx = context_of(request)
    service = intents_of(request)
    try:
        names = await vendor_names(ctx)
        wanted = intent_wanted(form, datetime.now(UTC).date(), names)
        intent = Intent(uuid.uuid4().hex[:12], wanted.what, wanted.budget, wanted.currency,
                        await service.terms_iri(None), wanted.where, wanted.starts,
                        wanted.ends)
        await service.add(intent, public=wanted.public, vendors=wanted.vendors)
    except FormProblem as exc:
        session.flash("error", f"Not put out: {exc}.")
    except VrmAgentError as exc:
        session.flash("error", f"Not put out: {shown(exc)}.")
    else:
        who = "everyone" if wanted.public else ", ".join(names[v] for v in wanted.vendors)
        session.flash("ok", f"Put out your intent for {intent.what}, at most "
                            f"{money(intent.max_price)} {intent.currency}, on your terms. Who "
                            f"may read it: {who}. Their offers appear here.")
    raise back("/intents")


def _refusal(exc: VrmAgentError) -> str:
    """Why a decision on an intent was not taken, in the person's words."""
    if isinstance(exc, UnknownIntent):
        return "that intent is not one of yours; choose one from the list"
    if isinstance(exc, UnknownOffer):
        return "that offer was not made to this intent; choose one from the list"
    if isinstance(exc, IntentClosed):
        return "the intent is closed already; the list shows how it ended"
    return f"{shown(exc)}. Check that your pod runs, then try again"


async def accept_offer(request: web.Request) -> web.StreamResponse:
    session, _ = await form_session(request)
    intent_id, offer_id = request.match_info["id"], request.match_info["offer"]
    if not is_record_id(intent_id):
        session.flash("error", "Not accepted: that intent is not one of yours; choose one from "
                               "the list.")
        raise back("/intents")
    if not is_record_id(offer_id):
        session.flash("error", "Not accepted: that offer was not made to this intent; choose "
                               "one from the list.")
        raise back("/intents")
    service = intents_of(request)
    try:
        accepted = await service.accept(intent_id, offer_id)
        others = len({o.seller for o in await service.offers(intent_id)}
                     - {accepted.offer.seller})
        names = await vendor_names(context_of(request))
    except VrmAgentError as exc:
        session.flash("error", f"Not accepted: {_refusal(exc)}.")
        raise back("/intents") from None
    offer: IntentOffer = accepted.offer
    name = names.get(offer.seller, offer.seller)
    session.flash("ok", f"Accepted {name}'s offer of {money(offer.price)} {offer.currency} for "
                        f"{accepted.intent.what}: you are its customer under your terms, and "
                        "your agent has signed the agreement (download it below). The intent "
                        f"is closed; {name} and {others} other vendor(s) that offered are "
                        "being told.")
    raise back("/intents")


async def close_intent(request: web.Request) -> web.StreamResponse:
    session, _ = await form_session(request)
    intent_id = request.match_info["id"]
    if not is_record_id(intent_id):
        session.flash("error", "Not closed: that intent is not one of yours; choose one from "
                               "the list.")
        raise back("/intents")
    service = intents_of(request)
    try:
        await service.close(intent_id)
        intent, _ = await service.get(intent_id)
        told = len({o.seller for o in await service.offers(intent_id)})
    except VrmAgentError as exc:
        session.flash("error", f"Not closed: {_refusal(exc)}.")
        raise back("/intents") from None
    session.flash("ok", f"Closed your intent for {intent.what}: no vendor reads it or offers "
                        "to it any more, and no offer was accepted; "
                        + (f"the {told} vendor(s) that offered are being told." if told else
                           "no vendor had offered."))
    raise back("/intents")
