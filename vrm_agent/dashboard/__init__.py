"""The person's dashboard, served by the daemon under ``/dashboard``: only the owner gets in,
logged in with their own Solid identity.

This module only names the routes; the pages' code and Jinja2 load on the first request to
one of them, so a daemon nobody opens the dashboard of never loads either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vrm_agent.dashboard.oidc import PendingLogins
from vrm_agent.dashboard.sessions import Sessions

PREFIX = "/dashboard"
STATE_KEY = web.AppKey("dashboard_state", object)

# (method, path under PREFIX, handler): a handler is a function of vrm_agent.dashboard.pages, or
# "module:function" for one of another page module of the dashboard.
ROUTES = (
    ("GET", "", "overview"),
    ("GET", "/", "overview"),
    ("GET", "/login", "login_page"),
    ("GET", "/login/start", "login_start"),
    ("GET", "/callback", "callback"),
    ("POST", "/logout", "logout"),
    ("GET", "/requests", "requests_page"),
    ("POST", "/requests/{id}/approve", "approve"),
    ("POST", "/requests/{id}/deny", "deny"),
    ("GET", "/grants", "grants_page"),
    ("POST", "/grants/{id}/revoke", "revoke"),
    ("GET", "/version/{list}", "list_version"),
    ("GET", "/holdings", "holdings_page"),
    ("GET", "/agreements/{id}", "agreement_download"),
    ("GET", "/contact", "contact_page"),
    ("POST", "/contact/{id}/change", "change_contact"),
    ("GET", "/spending", "spending_pages:spending_page"),
    ("GET", "/charts/{by}/{currency}.svg", "spending_pages:chart_image"),
    ("GET", "/audit", "audit_timeline"),
    ("GET", "/intents", "intent_pages:intents_page"),
    ("POST", "/intents", "intent_pages:add_intent"),
    ("POST", "/intents/{id}/offers/{offer}/accept", "intent_pages:accept_offer"),
    ("POST", "/intents/{id}/close", "intent_pages:close_intent"),
    ("GET", "/terms", "terms_page"),
    ("POST", "/terms/{name}/switch", "switch_term"),
    ("GET", "/client-id", "client_id_document"),
    ("GET", "/static/{name}", "static_file"),
)


class DashboardState:
    """What lives as long as the daemon: logins under way and sessions, in memory only (a
    restart logs the person out)."""

    def __init__(self) -> None:
        self.logins = PendingLogins()
        self.sessions = Sessions()
        # The spending page's totals (when read, per grouping), which its chart images reuse.
        self.spending: tuple[float, dict[str, list[Any]]] | None = None


def _lazy(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    module, _, function = name.rpartition(":")

    async def handler(request: web.Request) -> web.StreamResponse:
        import importlib

        pages = importlib.import_module(f"vrm_agent.dashboard.{module or 'pages'}")
        return await getattr(pages, function)(request)  # type: ignore[no-any-return]

    return handler


def install(app: web.Application) -> None:
    app[STATE_KEY] = DashboardState()
    for method, path, name in ROUTES:
        app.router.add_route(method, PREFIX + path, _lazy(name))
