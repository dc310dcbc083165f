"""Log lines carry the request id (set by registry.middleware.RequestIdMiddleware)."""

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` ("-" outside a request) for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":
            # django.request logs a response after the middleware has returned; it passes
            # the request along.
            request_id = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = request_id
        return True
