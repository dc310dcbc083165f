"""Web forms: they check the shape of what a person types; services check the rules."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from assets import codes
from assets.models import Device
from certificates.models import Retirement


def _choices(mapping: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, f"{code} — {label}") for code, label in sorted(mapping.items())]


class DeviceRegisterForm(forms.Form):
    """A producer's device, owned wholly by one of its accounts (co-owners: through the API)."""

    organisation = forms.TypedChoiceField(label=_("Organisation"), coerce=int)
    owner_account = forms.TypedChoiceField(
        label=_("Account that receives the certificates"), coerce=int
    )
    name = forms.CharField(label=_("Device name"), max_length=200)
    grid_area = forms.TypedChoiceField(label=_("Grid area"), coerce=int)
    technology_code = forms.ChoiceField(label=_("Technology (EECS code)"))
    energy_source_code = forms.ChoiceField(
        label=_("Energy source (EECS code)"),
        help_text=_("Solar PV (T01…) takes F01040100; wind (T02…) takes F01050100."),
    )
    capacity_kw = forms.DecimalField(
        label=_("Installed capacity (kW)"), min_value=0, max_digits=12, decimal_places=3
    )
    commissioning_date = forms.DateField(
        label=_("Commissioning date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    latitude = forms.DecimalField(label=_("Latitude"), max_digits=9, decimal_places=6)
    longitude = forms.DecimalField(label=_("Longitude"), max_digits=9, decimal_places=6)
    issuance_policy = forms.ChoiceField(
        label=_("Issuance"), choices=Device.IssuancePolicy.choices, initial="manual"
    )

    def __init__(self, *args, organisations, accounts, grid_areas, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].choices = [(o.pk, o.legal_name) for o in organisations]
        self.fields["owner_account"].choices = [(a.pk, f"{a.number} — {a.name}") for a in accounts]
        self.fields["grid_area"].choices = [
            (g.pk, f"{g.code} — {g.name} ({g.country})") for g in grid_areas
        ]
        self.fields["technology_code"].choices = _choices(codes.technologies())
        self.fields["energy_source_code"].choices = _choices(codes.energy_sources())

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "organisation_id": data["organisation"],
            "name": data["name"],
            "grid_area_id": data["grid_area"],
            "technology_code": data["technology_code"],
            "energy_source_code": data["energy_source_code"],
            "capacity_w": int(data["capacity_kw"] * 1000),
            "commissioning_date": data["commissioning_date"],
            "latitude": data["latitude"],
            "longitude": data["longitude"],
            "issuance_policy": data["issuance_policy"],
            "owners": [
                {
                    "organisation_id": data["organisation"],
                    "account_id": data["owner_account"],
                    "share": "1",
                }
            ],
        }


class TransferForm(forms.Form):
    bundle = forms.IntegerField(label=_("Certificate bundle"), min_value=1)
    to_account_number = forms.CharField(
        label=_("Receiving account number"), max_length=32, help_text=_("e.g. GP-00003-T001")
    )
    volume_wh = forms.IntegerField(
        label=_("Volume (Wh)"),
        min_value=1,
        required=False,
        help_text=_("Leave empty to transfer the whole bundle."),
    )
    require_acceptance = forms.BooleanField(label=_("The receiver must accept"), required=False)


class RetireForm(forms.Form):
    bundle = forms.IntegerField(label=_("Certificate bundle"), min_value=1)
    volume_wh = forms.IntegerField(
        label=_("Volume (Wh)"),
        min_value=1,
        required=False,
        help_text=_("Leave empty to retire the whole bundle."),
    )
    beneficiary_name = forms.CharField(label=_("Beneficiary"), max_length=200)
    beneficiary_country = forms.CharField(
        label=_("Beneficiary country"), min_length=2, max_length=2, help_text=_("e.g. DE")
    )
    consumption_start = forms.DateField(
        label=_("Consumption from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    consumption_end = forms.DateField(
        label=_("Consumption until (exclusive)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    purpose = forms.ChoiceField(label=_("Purpose"), choices=Retirement.Purpose.choices)
    location = forms.CharField(label=_("Location of consumption"), max_length=200, required=False)

    def service_arguments(self) -> dict:
        data = self.cleaned_data

        def midnight(day: dt.date) -> dt.datetime:
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)

        return {
            "items": [(data["bundle"], data["volume_wh"])],
            "beneficiary_name": data["beneficiary_name"],
            "beneficiary_country": data["beneficiary_country"].upper(),
            "consumption_start": midnight(data["consumption_start"]),
            "consumption_end": midnight(data["consumption_end"]),
            "purpose": data["purpose"],
            "location": data["location"],
        }


class VerifyForm(forms.Form):
    subject = forms.CharField(
        label=_("Certificate bundle id or statement id"),
        max_length=64,
        help_text=_("A bundle number such as 12, or a statement's id (a UUID)."),
    )


class WithdrawForm(forms.Form):
    """The issuing body withdraws bundles issued in error (what was split from them too)."""

    bundles = forms.CharField(
        label=_("Certificate bundles"),
        max_length=2000,
        help_text=_("Bundle numbers, separated by commas or spaces, e.g. 12, 15"),
    )
    reason = forms.CharField(
        label=_("Reason for the withdrawal"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_bundles(self) -> list[int]:
        words = self.cleaned_data["bundles"].replace(",", " ").split()
        if not words or not all(word.isdigit() and 0 < len(word) <= 18 for word in words):
            raise forms.ValidationError(_("Give bundle numbers, e.g. 12, 15."))
        return sorted({int(word) for word in words})


class DeviceWithdrawForm(forms.Form):
    """The issuing body withdraws every certificate a device produced in a period (UTC)."""

    device = forms.IntegerField(
        label=_("Device number"),
        min_value=1,
        help_text=_("The device's registry number (listed under Organisations and devices)."),
    )
    period_start = forms.DateTimeField(
        label=_("Production from (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    period_end = forms.DateTimeField(
        label=_("Production until, exclusive (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    reason = forms.CharField(
        label=_("Reason for the withdrawal"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "device_id": data["device"],
            "period_start": data["period_start"],
            "period_end": data["period_end"],
            "reason": data["reason"],
        }


class OnboardingForm(forms.Form):
    """The issuing body's CSV of devices and their meters (assets' devices_onboard)."""

    MAX_BYTES = 1_000_000

    file = forms.FileField(
        label=_("CSV file of devices and meters"),
        help_text=_("UTF-8, comma-separated, a header row with the columns below; at most 1 MB."),
    )
    dry_run = forms.BooleanField(
        label=_("Dry run: check every row, register nothing"), required=False, initial=True
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 1 MB."))
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from exc


class ConsentGrantForm(forms.Form):
    """A household lets an organisation read a site's meters (consumers' consent_grant)."""

    site = forms.TypedChoiceField(label=_("Site"), coerce=int)
    grantee = forms.TypedChoiceField(label=_("Organisation that may read"), coerce=int)
    meters = forms.TypedMultipleChoiceField(
        label=_("Meters"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only meters of the chosen site."),
    )
    purpose = forms.ChoiceField(label=_("Purpose"))
    resolution = forms.ChoiceField(
        label=_("Resolution"),
        help_text=_("A grant allows its resolution and every coarser one."),
    )
    valid_until = forms.DateField(
        label=_("Valid until (inclusive, UTC)"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, sites, grantees, meters, purposes, resolutions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, f"{s.name} ({s.metering_point_id})") for s in sites]
        self.fields["grantee"].choices = [(o.pk, o.legal_name) for o in grantees]
        self.fields["meters"].choices = meters
        self.fields["purpose"].choices = purposes
        self.fields["resolution"].choices = resolutions

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        until = dt.datetime.combine(data["valid_until"], dt.time.min, tzinfo=dt.UTC)
        return {
            "site_id": data["site"],
            "grantee_id": data["grantee"],
            "purpose": data["purpose"],
            "site_meter_ids": data["meters"],
            "resolution": data["resolution"],
            "valid_to": until + dt.timedelta(days=1),
        }


class MarketOrderForm(forms.Form):
    """A bid or an offer in one market: the service checks the band, funds and holdings."""

    market = forms.IntegerField(widget=forms.HiddenInput)
    side = forms.ChoiceField(
        label=_("Side"), choices=[("buy", _("Buy (bid)")), ("sell", _("Sell (offer)"))]
    )
    limit_price = forms.IntegerField(
        label=_("Limit price per MWh (minor units of the market's currency)"), min_value=0
    )
    quantity_wh = forms.IntegerField(
        label=_("Quantity (Wh)"),
        min_value=1,
        required=False,
        help_text=_("Required for a bid; for an offer, empty sells the whole bundle."),
    )
    bundle = forms.TypedChoiceField(
        label=_("Bundle to offer (sell only)"), coerce=int, required=False, empty_value=None
    )
    account = forms.TypedChoiceField(
        label=_("Account that receives the certificates (buy only)"),
        coerce=int,
        required=False,
        empty_value=None,
    )

    def __init__(self, *args, accounts, bundles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", "—")] + [
            (a.pk, f"{a.number} — {a.name}") for a in accounts
        ]
        self.fields["bundle"].choices = [("", "—")] + [
            (b.pk, f"{b.pk} · {b.account.number} · {b.volume_wh} Wh") for b in bundles
        ]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        buy = data["side"] == "buy"
        return {
            "market_id": data["market"],
            "side": data["side"],
            "limit_price": data["limit_price"],
            "quantity_wh": data["quantity_wh"],
            "account_id": data["account"] if buy else None,
            "bundle_id": None if buy else data["bundle"],
        }


class SiteRegisterForm(forms.Form):
    """A household's grid connection point (consumers' site_register); it waits for
    confirmation by the issuing body or a community's admin."""

    name = forms.CharField(label=_("Name of the site"), max_length=100)
    metering_point_id = forms.CharField(
        label=_("Metering point (EAN-18 / GSRN)"),
        max_length=18,
        help_text=_("The 18 digits on your bill, check digit included."),
    )
    grid_area = forms.TypedChoiceField(label=_("Grid area"), coerce=int)
    street = forms.CharField(label=_("Street and number"), max_length=200)
    postcode = forms.CharField(label=_("Postcode"), max_length=16)
    city = forms.CharField(label=_("City"), max_length=100)

    def __init__(self, *args, grid_areas, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grid_area"].choices = [(a.pk, f"{a.code} — {a.name}") for a in grid_areas]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "metering_point_id": data["metering_point_id"].strip(),
            "grid_area_id": data["grid_area"],
            "street": data["street"],
            "postcode": data["postcode"],
            "city": data["city"],
        }


class SiteMeterLinkForm(forms.Form):
    """One of the household's registered meters serves a site in a role (site_meter_link)."""

    site = forms.TypedChoiceField(label=_("Site"), coerce=int)
    meter = forms.TypedChoiceField(
        label=_("Meter"),
        coerce=int,
        help_text=_("Your meters that serve no site yet, in the site's grid area."),
    )
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args, sites, meters, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, f"{s.name} ({s.metering_point_id})") for s in sites]
        self.fields["meter"].choices = [(m.pk, f"{m.serial} · {m.device.name}") for m in meters]
        self.fields["role"].choices = roles

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {"site_id": data["site"], "meter_id": data["meter"], "role": data["role"]}


class SlotOrderForm(forms.Form):
    """A bid or an offer for one delivery slot of an energy market (the service checks the
    band, the gate and the funds; a bid escrows at its limit, an offer holds nothing)."""

    market = forms.IntegerField(widget=forms.HiddenInput)
    # A select of the next open slots, but any slot start is taken: a gate that closed
    # while the person chose is the service's refusal (gate_closed), not a form error.
    slot = forms.CharField(label=_("Delivery slot"), max_length=40, widget=forms.Select)
    side = forms.ChoiceField(
        label=_("Side"), choices=[("buy", _("Buy (bid)")), ("sell", _("Sell (offer)"))]
    )
    limit_price = forms.IntegerField(
        label=_("Limit price per MWh (minor units of the market's currency)"), min_value=0
    )
    quantity_wh = forms.IntegerField(label=_("Quantity (Wh)"), min_value=1)
    account = forms.TypedChoiceField(
        label=_("Trading account (receives or produced the energy's certificates)"), coerce=int
    )

    def __init__(self, *args, accounts, slots, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [(a.pk, f"{a.number} — {a.name}") for a in accounts]
        self.fields["slot"].widget.choices = [(s.value, s.label) for s in slots]

    def clean_slot(self) -> dt.datetime:
        try:
            start = dt.datetime.fromisoformat(self.cleaned_data["slot"])
        except ValueError as exc:
            raise forms.ValidationError(_("Choose a delivery slot.")) from exc
        if start.utcoffset() is None:
            raise forms.ValidationError(_("Choose a delivery slot."))
        return start

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "market_id": data["market"],
            "side": data["side"],
            "limit_price": data["limit_price"],
            "quantity_wh": data["quantity_wh"],
            "account_id": data["account"],
            "slot_start": data["slot"],
        }


class AgentDelegateForm(forms.Form):
    """Delegate trading in an energy market to an agent (the service checks the band, the
    account and that the organisation has no active agent there already)."""

    market = forms.TypedChoiceField(label=_("Energy market"), coerce=int)
    account = forms.TypedChoiceField(label=_("Trading account (its orders name it)"), coerce=int)
    min_sell_price = forms.IntegerField(
        label=_("Minimum sell price per MWh (minor units of the market's currency)"),
        help_text=_("It never offers below this price."),
        min_value=0,
    )
    max_buy_price = forms.IntegerField(
        label=_("Maximum buy price per MWh (minor units of the market's currency)"),
        help_text=_("It never bids above this price."),
        min_value=0,
    )
    reserve_wh = forms.IntegerField(
        label=_("Battery reserve (Wh)"),
        help_text=_("The battery charge it never sells below."),
        min_value=0,
        initial=0,
    )
    history_days = forms.IntegerField(
        label=_("Days of readings its forecast averages"),
        min_value=1,
        max_value=60,
        initial=7,
    )

    def __init__(self, *args, markets, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["market"].choices = [(m.pk, f"{m.code} — {m.name}") for m in markets]
        self.fields["account"].choices = [(a.pk, f"{a.number} — {a.name}") for a in accounts]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "market_id": data["market"],
            "account_id": data["account"],
            "min_sell_price": data["min_sell_price"],
            "max_buy_price": data["max_buy_price"],
            "reserve_wh": data["reserve_wh"],
            "history_days": data["history_days"],
        }
