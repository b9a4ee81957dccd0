from celery import shared_task


@shared_task()
def count_loaves(n):
    """A task for the worker process: the page does not need it to run."""
    return n * 12
