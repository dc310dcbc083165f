"""Template context for every web page: the navigation the person may use and how many
unread notifications they have (one COUNT).

Each entry is (url name, label, who sees it). Wings that come later (household, market)
add one entry here and a dashboard view; the base layout needs no change.
"""

from collections.abc import Callable

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from notifications.selectors import notification_unread_count
from web.roles import Roles, request_roles

NAVIGATION: list[tuple[str, str, Callable[[Roles], bool]]] = [
    ("web:household", _("My home"), lambda r: r.household is not None),
    ("web:household-consents", _("My data"), lambda r: r.household is not None),
    ("web:producer", _("My devices"), lambda r: bool(r.producer)),
    ("web:holdings", _("Holdings"), lambda r: bool(r.trader)),
    ("web:market", _("Market"), lambda r: bool(r.producer or r.trader)),
    ("web:market-agents", _("Trading agents"), lambda r: bool(r.producer or r.trader)),
    ("web:audit", _("Audit"), lambda r: bool(r.auditor or r.issuing_body)),
    ("web:issuing", _("Issuing body"), lambda r: bool(r.issuing_body)),
]


def navigation(request: HttpRequest) -> dict:
    if not getattr(request, "resolver_match", None) or request.resolver_match.app_name != "web":
        return {}
    items = []
    unread = None
    if request.user.is_authenticated:
        unread = notification_unread_count(user=request.user)
        roles = request_roles(request)
        for name, label, visible in NAVIGATION:
            if visible(roles):
                url = reverse(name)
                items.append({"url": url, "label": label, "current": request.path == url})
    return {"nav_items": items, "unread_notifications": unread}
