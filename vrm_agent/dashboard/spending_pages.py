"""The spending page: totals per month, vendor and category as charts with the same numbers as
tables, and the paychoice ledger (payments made by choice, intentions to pay). The charts are
SVG images of their own, each from an owner-only route; pygal draws them on request only."""

from __future__ import annotations

import asyncio
import re
import time

from aiohttp import web

from vrm_agent.daemon.context import context_of
from vrm_agent.dashboard import PREFIX
from vrm_agent.dashboard.pages import current_session, page_session, render, shown, state_of
from vrm_agent.errors import VrmAgentError

# The page's charts are drawn from the totals the page itself read, if this recent: the
# images then agree with the tables beside them, and the pod is read once per page.
TOTALS_SECONDS = 60
PAYCHOICE_ROWS = 200  # newest payments (and first intentions) shown; `pay list` has them all
SECTIONS = (("month", "Per month", "Month"), ("vendor", "Per vendor", "Vendor"),
            ("category", "Per category", "Category"))
# The chart's own inline style applies; nothing else: no script, no fetch, not framed.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# A currency code stands for itself in a chart's address; anything else another app wrote
# (a '/', which the router reads as a path separator even when escaped, say) goes as '~' and
# the hex of its UTF-8, which no plain code starts with.
_PLAIN_CURRENCY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def chart_key(currency: str) -> str:
    return currency if _PLAIN_CURRENCY.fullmatch(currency) else "~" + currency.encode().hex()


def currency_of(key: str) -> str | None:
    """The currency a chart's address names; None for one no chart_key gives."""
    if not key.startswith("~"):
        return key if _PLAIN_CURRENCY.fullmatch(key) else None
    try:
        currency = bytes.fromhex(key[1:]).decode()
    except ValueError:  # not hex, or not UTF-8
        return None
    return currency if currency and chart_key(currency) == key else None


def chart_src(by: str, currency: str) -> str:
    return f"{PREFIX}/charts/{by}/{chart_key(currency)}.svg"


async def spending_page(request: web.Request) -> web.Response:
    from vrm_agent.dashboard.charts import chart_size, spending_charts
    from vrm_agent.ledger.paychoice import (
        PaymentIntention,
        VoluntaryPayment,
        intention_json,
        payment_json,
    )
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.stats import ledger_spending_by
    from vrm_agent.ledger.store import Ledger

    session = page_session(request)
    ctx = context_of(request)
    problem, sections = None, []
    try:
        ledger = Ledger(ctx.pod, ctx.storage)
        totals, paid, intended, vendors = await asyncio.gather(
            ledger_spending_by(ledger), ledger.list(VoluntaryPayment),
            ledger.list(PaymentIntention), ledger.list(Vendor))
    except VrmAgentError as exc:
        problem, totals, paid, intended, vendors = shown(exc), {}, [], [], []
    else:
        state_of(request).spending = (time.monotonic(), totals)
    for by, title, column in SECTIONS:
        charts, left_out = spending_charts(totals.get(by, []), by)
        if charts:
            sections.append({"by": by, "title": title, "column": column,
                             "left_out": left_out, "charts": [
                                 {"chart": c, "src": chart_src(by, c.currency),
                                  "size": chart_size(c)} for c in charts]})
    names = {v.id: v.name for v in vendors}
    counts = {"payments": len(paid), "intentions": len(intended)}
    payments = [payment_json(p, names) for p in sorted(
        paid, key=lambda p: (p.when, p.id), reverse=True)[:PAYCHOICE_ROWS]]
    intentions = [intention_json(i, names) for i in sorted(
        intended, key=lambda i: (i.start, i.id))[:PAYCHOICE_ROWS]]
    return render("spending.html", session=session, sections=sections, payments=payments,
                  intentions=intentions, counts=counts, shown_rows=PAYCHOICE_ROWS,
                  problem=problem, page="spending")


async def chart_image(request: web.Request) -> web.Response:
    """One chart as SVG, for the owner's session only; drawn from the ledger as it is now."""
    from vrm_agent.dashboard.charts import chart_svg, spending_charts
    from vrm_agent.ledger.stats import GROUPINGS, ledger_spending
    from vrm_agent.ledger.store import Ledger

    if current_session(request) is None:
        raise web.HTTPForbidden(text="Log in to your dashboard to see your spending.",
                                headers=SVG_HEADERS)
    by, currency = request.match_info["by"], currency_of(request.match_info["currency"])
    if by not in GROUPINGS or currency is None:
        raise web.HTTPNotFound(text="No such chart.", headers=SVG_HEADERS)
    ctx = context_of(request)
    read = state_of(request).spending
    if read is not None and time.monotonic() - read[0] < TOTALS_SECONDS:
        rows = read[1][by]
    else:  # the image opened by itself, or long after its page
        try:
            rows = await ledger_spending(Ledger(ctx.pod, ctx.storage), by)
        except VrmAgentError as exc:
            raise web.HTTPBadGateway(text=f"Your pod could not be read ({shown(exc)}).",
                                     headers=SVG_HEADERS) from None
    charts, _ = spending_charts(rows, by)
    chart = next((c for c in charts if c.currency == currency), None)
    if chart is None:  # a currency no longer in the ledger, or never drawn
        raise web.HTTPNotFound(text="No such chart.", headers=SVG_HEADERS)
    # Drawing is pure computation: off the event loop, so negotiations are not held up.
    body = await asyncio.to_thread(chart_svg, chart)
    return web.Response(body=body, content_type="image/svg+xml", headers=SVG_HEADERS)
