"""The people's web app, at the site root (the API stays under /api/)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.utils.translation import gettext_lazy as _

from web.views import (
    agents,
    auditor,
    buyer,
    household,
    household_sites,
    issuing,
    notifications,
    payments,
    producer,
    public,
    trading,
)

app_name = "web"


def _form(heading, submit, **extra):
    return {"heading": heading, "submit": submit, **extra}


urlpatterns = [
    path("", public.home, name="home"),
    path("devices/", public.devices, name="devices"),
    path("dashboard/", public.dashboard, name="dashboard"),
    # People's logins: Django's views, our templates; reset mails use EMAIL_BACKEND.
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/auth/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="web/auth/simple_form.html",
            email_template_name="web/auth/password_reset_email.txt",
            subject_template_name="web/auth/password_reset_subject.txt",
            success_url=reverse_lazy("web:password_reset_done"),
            extra_context=_form(
                _("Reset your password"),
                _("Send the link"),
                intro=_(
                    "Give the e-mail address of your login; we send a link to set a new password."
                ),
            ),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="web/auth/simple_form.html",
            extra_context=_form(
                _("Check your e-mail"),
                "",
                intro=_("If a login has this address, a link to set a new password is on its way."),
            ),
        ),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="web/auth/simple_form.html",
            success_url=reverse_lazy("web:password_reset_complete"),
            extra_context=_form(_("Choose a new password"), _("Set the password")),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="web/auth/simple_form.html",
            extra_context=_form(
                _("Password changed"),
                "",
                intro=_("Your new password is set."),
                next_link=reverse_lazy("web:login"),
                next_label=_("Log in"),
            ),
        ),
        name="password_reset_complete",
    ),
    # Everyone signed in: their notifications.
    path("notifications/", notifications.notification_list, name="notifications"),
    path(
        "notifications/<int:notification_id>/read/",
        notifications.notification_read,
        name="notification-read",
    ),
    path("notifications/read/", notifications.notifications_read_all, name="notifications-read"),
    # Producer.
    path("producer/", producer.dashboard, name="producer"),
    path("producer/generation/", producer.generation, name="producer-generation"),
    path("producer/devices/new/", producer.device_register, name="device-register"),
    # Buyer / trader.
    path("holdings/", buyer.dashboard, name="holdings"),
    path(
        "holdings/obligations/<int:obligation_id>/pay/",
        payments.obligation_pay,
        name="obligation-pay",
    ),
    path("household/bills/<int:bill_id>/pay/", payments.bill_pay, name="bill-pay"),
    path("holdings/transfer/", buyer.transfer, name="transfer"),
    path("holdings/retire/", buyer.retire, name="retire"),
    path(
        "transfers/<int:transfer_id>/<str:decision>/", buyer.transfer_decide, name="transfer-decide"
    ),
    # Market (producers and traders).
    path("market/", trading.page, name="market"),
    path("market/order/", trading.order_place, name="market-order"),
    path("market/slot-order/", trading.slot_order_place, name="market-slot-order"),
    path("market/orders/<int:order_id>/cancel/", trading.order_cancel, name="market-order-cancel"),
    path("market/agents/", agents.page, name="market-agents"),
    path("market/agents/delegate/", agents.delegate, name="market-agent-delegate"),
    path("market/agents/<int:agent_id>/", agents.decisions, name="market-agent-decisions"),
    path("market/agents/<int:agent_id>/revoke/", agents.revoke, name="market-agent-revoke"),
    # Household (consumers app).
    path("household/", household.dashboard, name="household"),
    path("household/energy/", household.energy, name="household-energy"),
    path("household/consents/", household.consents, name="household-consents"),
    path("household/sites/", household_sites.sites, name="household-sites"),
    path("household/sites/meters/", household_sites.site_meter_link, name="household-site-meter"),
    path(
        "household/consents/<int:consent_id>/revoke/",
        household.consent_revoke,
        name="consent-revoke",
    ),
    # Auditor.
    path("audit/", auditor.dashboard, name="audit"),
    path("audit/verify/", auditor.verify, name="verify"),
    path("audit/checkpoint.note", auditor.checkpoint_note, name="checkpoint-note"),
    path("audit/bundles/<int:bundle_id>/history.json", auditor.history_file, name="history-file"),
    # Issuing body.
    path("issuing/", issuing.dashboard, name="issuing"),
    path("issuing/withdraw/", issuing.withdraw, name="issuing-withdraw"),
    path("issuing/withdraw-device/", issuing.withdraw_device, name="issuing-withdraw-device"),
    path("issuing/onboarding/", issuing.onboarding, name="issuing-onboarding"),
    path("issuing/registry/", issuing.registry, name="issuing-registry"),
    path("issuing/<str:kind>/<int:pk>/<str:decision>/", issuing.decide, name="issuing-decide"),
]
