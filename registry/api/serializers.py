from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that rejects fields it does not declare."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class CountryField(serializers.ChoiceField):
    """An ISO 3166-1 alpha-2 code from the maintained list (an enum in the schema)."""

    def __init__(self, **kwargs) -> None:
        from registry.countries import COUNTRY_CHOICES

        kwargs.setdefault("help_text", "ISO 3166-1 alpha-2 country code, e.g. DE.")
        super().__init__(choices=COUNTRY_CHOICES, **kwargs)
