# A migration for the greetings app of examples/hello that changes the schema
# and then fails. Tests copy it into greetings/migrations/ and push: the
# deploy is rejected, and on PostgreSQL, where Django runs each migration in
# one transaction and DDL is transactional, the schema stays as it was.

from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("intentional failure after schema changes")


class Migration(migrations.Migration):

    dependencies = [
        ("greetings", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Probe",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("note", models.TextField()),
            ],
        ),
        migrations.AddField(
            model_name="greeting",
            name="mood",
            field=models.TextField(default=""),
        ),
        migrations.RunPython(fail, migrations.RunPython.noop),
    ]
