# A deliberately failing migration for the greetings app of examples/hello.
# Tests copy this file into greetings/migrations/ and push, to check that a
# deploy whose `migrate` step fails is rejected and the old release keeps running.

from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("intentional migration failure")


class Migration(migrations.Migration):

    dependencies = [
        ("greetings", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(fail, migrations.RunPython.noop),
    ]
