"""Thin Celery tasks of the consumers app: the periodic distribution of communities'
certificates by their keys."""

from celery import shared_task

from consumers import services


@shared_task(ignore_result=True)
def community_certificates_distribute_task() -> int:
    """Periodic: each community's complete, issued hours of the last days, once each;
    returns the hours distributed."""
    runs = services.community_certificates_distribute_due()
    return sum(len(run.report.distributions) for run in runs if run.report is not None)
