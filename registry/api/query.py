"""Query parameters read by hand (outside a filter set or serializer), held to the schema.

`query_flag` takes `true` or `false`; `query_id` a whole number from 1 that fits the
database's 64-bit keys. Anything else is the API's 400 `invalid` naming the parameter, so a
request the schema calls invalid is never quietly read as "not given". Declare such
parameters with `id_parameter` so the schema says the same bounds.
"""

from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

ID_MAX = 2**63 - 1


def query_flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise ValidationError({name: ["Give true or false."]})
    return raw == "true"


def query_positive_int(request: Request, name: str, maximum: int) -> int | None:
    """A whole number from 1 to `maximum`, or None when the parameter is absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise ValidationError({name: [f"A whole number from 1 to {maximum}."]})
    return int(raw)


def query_id(request: Request, name: str) -> int | None:
    return query_positive_int(request, name, ID_MAX)


def id_parameter(name: str, description: str) -> OpenApiParameter:
    schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": ID_MAX}
    return OpenApiParameter(name, schema, description=description)
