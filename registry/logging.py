"""Log lines carry the request id (set by registry.middleware.RequestIdMiddleware)."""

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` ("-" outside a request) for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
