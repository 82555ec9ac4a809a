#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
    from django.core.management import execute_from_command_line

    from config.env import EnvError
    from config.settings.safety import InsecureSettingError

    try:
        execute_from_command_line(sys.argv)
    except (InsecureSettingError, EnvError) as error:
        sys.exit(f"error: refusing to start: {error}")


if __name__ == "__main__":
    main()
