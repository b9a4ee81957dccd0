import os
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections
from django.http import HttpResponse


def dbs(request):
    """One line per alias of DATABASES: its vendor and how many rows its
    probe table has after this request wrote one; then the scheme of each
    *DATABASE_URL variable (never the URL: it holds a password)."""
    lines = []
    for alias in sorted(settings.DATABASES):
        conn = connections[alias]
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS conductor_probe (n integer)")
            cur.execute("INSERT INTO conductor_probe (n) VALUES (1)")
            cur.execute("SELECT count(*) FROM conductor_probe")
            (count,) = cur.fetchone()
        lines.append(f"alias={alias} vendor={conn.vendor} name={conn.settings_dict['NAME']} rows={count}")
    for key in sorted(os.environ):
        if key.endswith("DATABASE_URL"):
            lines.append(f"env {key}={urlsplit(os.environ[key]).scheme}")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")
