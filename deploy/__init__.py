"""Deploy configs (gunicorn, nginx, supervisor), their renderer and the local stack runner."""
