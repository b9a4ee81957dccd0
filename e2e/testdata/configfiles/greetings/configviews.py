"""Views of the config-file and upload-size tests (e2e/configfiles_test.go)."""

from pathlib import Path

from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt

# The app directory, where manage.py is: config files are placed there.
APP_DIR = Path(__file__).resolve().parent.parent


def secret(request):
    """Answers secrets.json as the app reads it."""
    try:
        data = (APP_DIR / "secrets.json").read_bytes()
    except FileNotFoundError:
        return HttpResponseNotFound("no secrets.json\n")
    return HttpResponse(data, content_type="application/octet-stream")


@csrf_exempt
def upload(request):
    """Reads the whole request body and says how long it was."""
    n = 0
    while True:
        chunk = request.read(1 << 16)
        if not chunk:
            break
        n += len(chunk)
    return HttpResponse(f"received {n} bytes\n", content_type="text/plain")
