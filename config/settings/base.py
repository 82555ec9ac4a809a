"""Settings shared by every profile, one module per topic; the profiles (development, test,
production) import this and change only defaults, never code paths.

Every value comes from the environment (or `.env`) through config/env.py, which declares each
variable's type, default and meaning (docs/settings.md is generated from it).
"""

from config import project_apps
from config.env import export_dotenv

from .api import *  # noqa: F403
from .cache import *  # noqa: F403
from .core import *  # noqa: F403
from .database import *  # noqa: F403
from .mail import *  # noqa: F403
from .observability import *  # noqa: F403
from .security import *  # noqa: F403
from .storage import *  # noqa: F403
from .tasks import *  # noqa: F403

# Each project app's own settings, from apps/<name>/conf.py (the articles' cache and autocomplete).
globals().update(project_apps.app_settings())

# `.env` into the process environment where unset, as the settings always did: a program started
# from here (`celery worker` reads its CELERY_WORKER_MAX_* itself) sees what the settings saw.
export_dotenv()
