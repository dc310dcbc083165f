import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from django.http import QueryDict
from django.utils.functional import cached_property
from rest_framework import serializers

INVALID_CHOICE = "invalid_choice"


class ChoicesInvalid(serializers.ValidationError):
    """A validation error that also carries the valid choices of each field given a bad one."""

    def __init__(self, detail: Any, *, choices: dict[str, list]) -> None:
        super().__init__(detail)
        self.choices = choices


def invalid_choices(field: serializers.Field, errors: Any, path: str = "") -> dict[str, list]:
    """The valid choices of every choice field in `errors` that was given a bad value.

    Keys are dotted field paths as in `extra.fields` ("purpose", "owners.0.kind", "roles.1").
    """
    found: dict[str, list] = {}

    def below(name: Any) -> str:
        return f"{path}.{name}" if path else str(name)

    if isinstance(field, serializers.ChoiceField):
        leaves = errors if isinstance(errors, list) else [errors]
        if any(getattr(leaf, "code", None) == INVALID_CHOICE for leaf in leaves):
            found[path] = list(field.choices)
    elif isinstance(field, serializers.Serializer) and isinstance(errors, dict):
        for name, item in errors.items():
            if name in field.fields:
                found |= invalid_choices(field.fields[name], item, below(name))
    elif isinstance(
        field, serializers.ListSerializer | serializers.ListField | serializers.DictField
    ):
        # Per-item errors: {index: errors} (a list with empty entries in older DRF).
        items = errors.items() if isinstance(errors, dict) else enumerate(errors)
        for key, item in items:
            if item and isinstance(item, dict | list):
                found |= invalid_choices(field.child, item, below(key))
    return found


# A ledger sequence number or tree size in a query: the database's bigint.
SEQ_MAX = 2**63 - 1


# A whole number as a query or a form gives it: ASCII digits, a sign at most.
WHOLE_NUMBER = re.compile(r"-?[0-9]+")


class InputSerializer(serializers.Serializer):
    """The base of every API input serializer: a 400 for a bad choice lists the valid ones.

    `is_valid(raise_exception=True)` raises a ValidationError whose `choices` the API's
    exception handler puts in `extra.choices` (field path -> valid values).
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            # DRF's CharField turns a number into its text; the schema says a string, and a
            # request it calls invalid must not be accepted (the fuzzer's ST201).
            wrong = self._refused(
                data,
                "Not a valid string.",
                lambda field, value: (
                    isinstance(field, serializers.CharField)
                    and not getattr(field, "accepts_integers", False)
                    and isinstance(value, int | float)
                ),
            )
            if getattr(self.root, "form_data", False):
                # A query's or a form's values are text. DRF's IntegerField took "5.0" and
                # other scripts' digits for the schema's integer: digits and a sign only.
                wrong |= self._refused(
                    data,
                    "A whole number.",
                    lambda field, value: (
                        isinstance(field, serializers.IntegerField)
                        and not WHOLE_NUMBER.fullmatch(value.strip())
                    ),
                )
            else:
                # A JSON body: Decimal() reads other scripts' digits ("\u0661.5"), where
                # the schema's are ASCII; DRF's BooleanField also takes 0, 1, "yes" or "on"
                # for the schema's boolean, and its IntegerField the text "12" or "1.0"
                # for the schema's integer.
                wrong |= self._refused(
                    data,
                    "A whole number, not text.",
                    lambda field, value: (
                        isinstance(field, serializers.IntegerField) and isinstance(value, str)
                    ),
                )
                wrong |= self._refused(
                    data,
                    "A decimal number in ASCII digits.",
                    lambda field, value: (
                        isinstance(field, serializers.DecimalField)
                        and isinstance(value, str)
                        and not value.isascii()
                    ),
                )
                wrong |= self._refused(
                    data,
                    "Must be true or false.",
                    lambda field, value: (
                        isinstance(field, serializers.BooleanField)
                        and not isinstance(value, bool)
                        and not (value is None and field.allow_null)
                    ),
                )
            if wrong:
                raise serializers.ValidationError(wrong, code="invalid")
        return super().to_internal_value(data)

    def _refused(
        self, data: Mapping, message: str, wrong: Callable[[serializers.Field, Any], bool]
    ) -> dict[str, list[str]]:
        """{field name: [message]} for each writable field given a value `wrong` refuses."""
        return {
            name: [message]
            for name, field in self.fields.items()
            if not field.read_only and name in data and wrong(field, data[name])
        }

    def __init__(self, *args, **kwargs) -> None:
        # The API parses JSON only, but DRF hands an empty body sent as a form over as an
        # empty QueryDict, and a QueryDict has HTML-form semantics: a missing boolean is a
        # false checkbox instead of a missing field. Read it as the empty object it is.
        # Its values stay text, though: `form_data` says so to the checks of field types.
        self.form_data = isinstance(kwargs.get("data"), QueryDict)
        if self.form_data:
            kwargs["data"] = kwargs["data"].dict()
        super().__init__(*args, **kwargs)

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        valid = super().is_valid(raise_exception=False)
        if not valid and raise_exception:
            raise ChoicesInvalid(self.errors, choices=invalid_choices(self, self.errors))
        return valid


class StrictInputSerializer(InputSerializer):
    """An input serializer that rejects fields it does not declare.

    `min_properties = 1` on a subclass whose fields are all optional says (in the schema)
    that an empty body is refused: an amendment must change something."""

    min_properties: int | None = None

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class FieldsBuiltOnce:
    # Mixin for a serializer on a hot path: its fields are built once per thread. DRF
    # deep-copies the declared fields for every serializer instance (each field built again
    # from its arguments), and a ModelSerializer also introspects its model each time:
    # about 0.2 ms for the order input, 0.09 ms for the transfer output and 0.25 ms for the
    # retirement output (benchmarks/README.md, "Serializer fields built once"). Fields keep
    # no state between calls, so each thread keeps the set its first instance built and
    # hands it to the next instances, each field's parent (hence its root and context) set
    # to the current one. Per thread, so that two requests never validate or render through
    # the same fields at once. A comment, not a docstring: the schema takes a serializer's
    # description from the first docstring up its classes
    # (tests/registry/test_fields_built_once.py, tests/certificates/test_output_fields.py).

    _built: threading.local

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._built = threading.local()

    @cached_property
    def fields(self) -> Mapping[str, serializers.Field]:
        fields = getattr(self._built, "fields", None)
        if fields is None:
            fields = self._built.fields = super().fields
        else:
            for field in fields.values():
                field.parent = self
        return fields


class CurrencyField(serializers.ChoiceField):
    """An ISO 4217 alphabetic code from the maintained list (an enum in the schema)."""

    def __init__(self, **kwargs) -> None:
        from registry.countries import CURRENCY_CHOICES

        kwargs.setdefault("help_text", "ISO 4217 currency code, e.g. EUR.")
        super().__init__(choices=CURRENCY_CHOICES, **kwargs)


class CountryField(serializers.ChoiceField):
    """An ISO 3166-1 alpha-2 code from the maintained list (an enum in the schema)."""

    def __init__(self, **kwargs) -> None:
        from registry.countries import COUNTRY_CHOICES

        kwargs.setdefault("help_text", "ISO 3166-1 alpha-2 country code, e.g. DE.")
        super().__init__(choices=COUNTRY_CHOICES, **kwargs)
