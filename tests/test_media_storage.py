"""Media on S3-compatible object storage when a bucket is set, on local disk otherwise.

The object store is moto's S3 emulator in server mode, on a free port of 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.support.net import free_port
from tests.support.waiting import http_answers, wait_until

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "app-media"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

SAVE_A_FILE = (
    "import django; django.setup();"
    "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage;"
    "name = default_storage.save('avatars/ada.txt', ContentFile(b'hello from the app'));"
    "print(name); print(default_storage.url(name))"
)


def run_app(**env: str) -> list[str]:
    base = {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.development",
    }
    result = subprocess.run(
        [sys.executable, "-c", SAVE_A_FILE],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            if server.poll() is not None:
                raise RuntimeError("moto server did not start")
            return http_answers(endpoint + "/moto-api/")

        wait_until(answers, 30, 0.2, "the moto server")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_with_a_bucket_uploads_go_to_object_storage_behind_signed_urls(s3_endpoint, tmp_path):
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=BUCKET)

    name, url = run_app(
        AWS_STORAGE_BUCKET_NAME=BUCKET,
        AWS_S3_ENDPOINT_URL=s3_endpoint,
        AWS_S3_REGION_NAME="us-east-1",
        MEDIA_ROOT=str(tmp_path),
        **CREDENTIALS,
    )

    assert name == "avatars/ada.txt"
    assert s3.get_object(Bucket=BUCKET, Key="media/avatars/ada.txt")["Body"].read() == b"hello from the app"
    assert list(tmp_path.iterdir()) == []
    assert url.startswith(f"{s3_endpoint}/{BUCKET}/media/avatars/ada.txt?")
    assert "Signature" in url
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"hello from the app"


def test_without_a_bucket_uploads_go_to_media_root(tmp_path):
    name, url = run_app(MEDIA_ROOT=str(tmp_path))

    assert (tmp_path / name).read_bytes() == b"hello from the app"
    assert url == "/media/avatars/ada.txt"
