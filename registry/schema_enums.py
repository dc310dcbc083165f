"""drf-spectacular's ENUM_NAME_OVERRIDES: the schema name of each enum that several
fields share (or that kept its name when a second enum with the same values came), in one
place instead of one block per app in registry/settings.py. Values are dotted paths to
Django choices or lists of values, as drf-spectacular takes them."""

ENUM_NAME_OVERRIDES = {
    "AccountKindEnum": "accounts.models.Account.Kind",  # collides with Meter.Kind
    "CountryEnum": "registry.countries.COUNTRY_CHOICES",
    "DeviceStatusEnum": "assets.models.Device.Status",
    "MeterKindEnum": "assets.models.Meter.Kind",
    "MeterStatusEnum": "assets.models.Meter.Status",
    "ReadingBatchStatusEnum": "assets.models.ReadingBatch.Status",
    "ReadingSubmissionStatusEnum": ["accepted", "held", "unchanged"],
    "EvidenceKindEnum": "federation.models.Evidence.Kind",
    "PeerRoleEnum": "federation.models.Peer.Role",
    "PeerStatusEnum": "federation.models.Peer.Status",
    "BundleStatusEnum": [
        "active",
        "reserved",
        "split",
        "retired",
        "expired",
        "withdrawn",
        "exported",
        "stored",
    ],
    "TransferStatusEnum": "certificates.models.Transfer.Status",
    "IssuanceRequestStatusEnum": "certificates.models.IssuanceRequest.Status",
    "RetirementPurposeEnum": "certificates.models.Retirement.Purpose",
    "SiteMeterRoleEnum": "consumers.models.SiteMeter.Role",
    "RoleEnum": "accounts.models.Membership.Role",  # the name it had before sites came
    "ConsentPurposeEnum": "consumers.models.Consent.Purpose",
    "ConsentResolutionEnum": "consumers.models.Consent.Resolution",
    "SiteStatusEnum": "consumers.models.Site.Status",
    "CommunityKeyKindEnum": "consumers.models.Community.KeyKind",
    "DataAccessOutcomeEnum": "consumers.models.DataAccess.Outcome",
    "OutcomeEnum": ["imported", "rejected"],  # federation's receipt, its name before
    "OrderSideEnum": "market.models.Order.Side",  # also a trade's aggressor
    "OrderStatusEnum": "market.models.Order.Status",
    "MarketStatusEnum": "market.models.Market.Status",
    "MarketKindEnum": "market.models.Market.Kind",
    "NotificationTopicEnum": "notifications.models.Topic",
    "WebhookDeliveryStatusEnum": "notifications.models.WebhookDelivery.Status",
}
