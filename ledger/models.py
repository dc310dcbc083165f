from django.db import models


class PendingEvent(models.Model):
    """An event committed with its domain change, waiting for the integrator to number it.

    The write transaction only inserts here (no global lock); the integrator
    moves committed rows into the Merkle log in batches, one writer to the tree.
    """

    kind = models.CharField(max_length=64)
    subjects = models.JSONField(default=list, help_text='Subject keys such as "bundle:12".')
    actor = models.CharField(max_length=128)
    event = models.BinaryField(help_text="RFC 8785 canonical event bytes.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending #{self.pk} {self.kind}"
