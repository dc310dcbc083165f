"""Content-Security-Policy on every HTML response.

The policy is strict: scripts, styles, images, fonts and connections come from this
origin only, no inline script or style, no plugins, no framing, forms post only here.
The pages are written for it (no inline `<script>`, `<style>` or `on…=`/`style=`
attributes; behaviour lives in static files). A view that needs more (the API docs page
shows Swagger UI's `data:` images) declares it with `csp_update`; the middleware merges
that into the policy. CSP_POLICY in settings holds the directives; CSP_REPORT_ONLY sends
them as `Content-Security-Policy-Report-Only` instead, for trying a change on a live site.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


def csp_header_value(policy: dict[str, list[str]]) -> str:
    return "; ".join(
        f"{directive} {' '.join(sources)}".strip() for directive, sources in policy.items()
    )


def csp_update(**directives: list[str]) -> Callable:
    """Add sources to directives for one view: `csp_update(img_src=["data:"])`."""
    extra = {name.replace("_", "-"): list(sources) for name, sources in directives.items()}

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.csp_update = extra
            return response

        return wrapped

    return decorator


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if not content_type.startswith("text/html"):
            return response
        header = REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER
        if header in response:
            return response
        policy = {name: list(sources) for name, sources in settings.CSP_POLICY.items()}
        for name, sources in getattr(response, "csp_update", {}).items():
            current = policy.setdefault(name, list(policy.get("default-src", [])))
            current.extend(source for source in sources if source not in current)
        response[header] = csp_header_value(policy)
        return response
