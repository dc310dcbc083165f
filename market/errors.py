"""Errors of the market services: each has a code, an HTTP status and a detail."""

from registry.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class MarketNotFound(NotFound):
    code = "market_not_found"
    default_detail = "No such market."


class OrderNotFound(NotFound):
    code = "order_not_found"
    default_detail = "No such order, or it is not visible to you."


class SettlementAccountNotFound(NotFound):
    code = "settlement_account_not_found"
    default_detail = "No such settlement account, or it is not visible to you."


class NotMarketOperator(PermissionDenied):
    code = "not_market_operator"
    default_detail = "Only the issuing body or a market operator may do this."


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    default_detail = "The amount must be a positive whole number of minor units."


class InvalidCurrency(InvalidInput):
    code = "invalid_currency"
    default_detail = "The currency must be an ISO 4217 code (EUR, USD, …)."


class ReferenceRequired(InvalidInput):
    code = "reference_required"
    default_detail = "A deposit or withdrawal needs its external reference."


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    default_detail = "The quantity must be a positive whole number of Wh."


class InvalidPrice(InvalidInput):
    code = "invalid_price"
    default_detail = "The price must be a whole number of minor units per MWh."


class PriceOutsideBand(InvalidInput):
    code = "price_outside_band"
    default_detail = "The limit price is outside the market's price band."


class InvalidOrder(InvalidInput):
    code = "invalid_order"
    default_detail = "The order is not valid."


class RetireOnDeliveryNotAllowed(InvalidInput):
    code = "retire_on_delivery_not_allowed"
    default_detail = "Only a bid in an energy-slot market can retire its certificates on delivery."


class InsufficientFunds(Conflict):
    code = "insufficient_funds"
    default_detail = "Not enough available funds."


class MarketNotOpen(Conflict):
    code = "market_not_open"
    default_detail = "The market does not take orders now."


class MarketMatchingUnsupported(Conflict):
    code = "market_matching_unsupported"
    default_detail = "Orders for this kind of market are not taken yet."


class OrderNotOpen(Conflict):
    code = "order_not_open"
    default_detail = "The order is filled or cancelled."


class OfferIncreaseUnsupported(Conflict):
    code = "offer_increase_unsupported"
    default_detail = "An offer's quantity can only go down; place a new offer for more."


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"
    default_detail = "The settlement account's currency is not the market's."


class OrganisationNotApprovedForMarket(Conflict):
    code = "organisation_not_approved"
    default_detail = "The organisation is not approved."


class AccountNotUsable(Conflict):
    code = "account_not_usable"
    default_detail = "The account must be an open trading account."


class MarketOperatorExists(Conflict):
    code = "market_operator_exists"
    default_detail = "The organisation is a market operator already."


class MarketExists(Conflict):
    code = "market_exists"
    default_detail = "A market with this code exists already."


class SlotMisaligned(InvalidInput):
    code = "slot_misaligned"
    default_detail = (
        "The delivery slot must start at a whole slot (UTC midnight plus whole slot lengths)."
    )


class GateClosed(Conflict):
    code = "gate_closed"
    default_detail = "Orders for this delivery slot are closed (gate closure has passed)."


class GateOpen(Conflict):
    code = "gate_open"
    default_detail = "The slot's gate has not closed yet; it cannot be cleared."


class SlotClearingNotFound(NotFound):
    code = "slot_clearing_not_found"
    default_detail = "No such slot clearing."


class SlotNotDelivered(Conflict):
    code = "slot_not_delivered"
    default_detail = "The slot has not ended yet: its delivery cannot be settled."


class SlotSettlementNotFound(NotFound):
    code = "slot_settlement_not_found"
    default_detail = "This slot has not been settled (nor has its settlement started) yet."
