from django.apps import AppConfig


class WebConfig(AppConfig):
    """The people's web app: the top layer, it reads selectors and writes through services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "web"
    verbose_name = "Web app"
