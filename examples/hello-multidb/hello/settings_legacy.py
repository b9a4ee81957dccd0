
# The project's own second database, which Conductor does not manage: its
# local_settings must leave it as it is.
import os as _os

DATABASES["legacy"] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": _os.path.join(_os.environ.get("HOME") or "/tmp", "legacy.sqlite3"),
}
