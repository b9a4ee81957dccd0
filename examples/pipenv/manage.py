#!/usr/bin/env python
import os
import sys

# Defaults for running locally; the environment wins.
ENVIRONMENT_DEFAULTS = {
    "DJANGO_SETTINGS_MODULE": "blog.settings",
    "DJANGO_DEBUG": "1",
}


def main():
    for key, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
