from django.http import HttpResponse, JsonResponse

from .models import Event
from .tasks import record


def index(request):
    return HttpResponse("Celery with the app's Redis\n", content_type="text/plain")


def enqueue(request, tag):
    """Enqueues a task on the Redis broker; the worker runs it."""
    result = record.delay("web:" + tag)
    return JsonResponse({"task": result.id})


def events(request):
    kinds = list(Event.objects.order_by("id").values_list("kind", flat=True))
    return JsonResponse({"events": kinds, "beat": kinds.count("beat")})
