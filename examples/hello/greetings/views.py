import os

from django.http import HttpResponse
from django.utils.html import escape

from .models import Greeting
from .version import VERSION


def index(request):
    Greeting.objects.create()
    count = Greeting.objects.count()
    lines = [
        "<!doctype html>",
        "<html>",
        "<head>",
        "<meta charset=\"utf-8\">",
        "<title>Hello from Conductor</title>",
        "<link rel=\"stylesheet\" href=\"/static/hello.css\">",
        "</head>",
        "<body>",
        f"<h1>Hello from Conductor {escape(VERSION)}</h1>",
        f"<p>greetings: {count}</p>",
    ]
    greeting = os.environ.get("GREETING")
    if greeting is not None:
        lines.append(f"<p>greeting: {escape(greeting)}</p>")
    lines += ["</body>", "</html>", ""]
    return HttpResponse("\n".join(lines), content_type="text/html; charset=utf-8")


def health(request):
    return HttpResponse("ok", content_type="text/plain")
