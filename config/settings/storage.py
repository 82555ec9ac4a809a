"""Files: static files for nginx, uploads on disk or S3-compatible storage, and backups."""

from __future__ import annotations

from config.env import env_value

# Static and media files: collected to STATIC_ROOT and served by nginx in production.
STATIC_URL = "static/"
STATIC_ROOT = env_value("STATIC_ROOT")
MEDIA_URL = "media/"
MEDIA_ROOT = env_value("MEDIA_ROOT")

# Backups (make backup): where pg_dump files go and how many of the newest are kept.
BACKUP_DIR = env_value("BACKUP_DIR")
BACKUP_KEEP = env_value("BACKUP_KEEP")

# Media on S3-compatible object storage when a bucket is set, so that every app host sees every
# upload; local disk (MEDIA_ROOT) otherwise. Credentials come from boto3's own chain: the
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, or the host's instance role.
AWS_STORAGE_BUCKET_NAME = env_value("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_value("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = env_value("AWS_S3_REGION_NAME") or None
AWS_S3_CUSTOM_DOMAIN = env_value("AWS_S3_CUSTOM_DOMAIN") or None
AWS_LOCATION = env_value("AWS_LOCATION")
# Private bucket by default: links are signed and expire.
AWS_QUERYSTRING_AUTH = env_value("AWS_QUERYSTRING_AUTH")
AWS_QUERYSTRING_EXPIRE = env_value("AWS_QUERYSTRING_EXPIRE")
# An upload never replaces another file of the same name; it gets a new name instead.
AWS_S3_FILE_OVERWRITE = False
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "django.core.files.storage.FileSystemStorage"
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
