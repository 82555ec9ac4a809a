"""Production settings plus the bench's reference views (bench/urls.py); only `make bench` runs these.

The stack under `make bench` runs this module: every setting is production's except the URLconf,
which adds routes no deployed site has.
"""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
