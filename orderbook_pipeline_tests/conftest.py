"""Shared fixtures: an S3-compatible server (moto) on loopback, started once per session."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderbook_pipeline.dagster_warnings import KNOWN
from orderbook_pipeline_tests.cores import core

__all__ = ["core"]  # the fixture running a test against both capture cores (cores.py)


def pytest_configure(config: pytest.Config) -> None:
    # pytest resets the warning filters for each test: the package's own (dagster_warnings.py)
    # are given to it as well. A test that wants to see one uses pytest.warns.
    for message, _why in KNOWN:
        config.addinivalue_line("filterwarnings", f"ignore:{re.escape(message)}")


_DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (random port), with dummy credentials in the env."""
    from moto.server import ThreadedMotoServer

    mp = pytest.MonkeyPatch()
    for key, value in _DUMMY_AWS_ENV.items():
        mp.setenv(key, value)
    # Never pick up a developer's real profile or endpoint.
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "OBP_S3_ENDPOINT_URL"):
        mp.delenv(key, raising=False)
    mp.setenv("AWS_CONFIG_FILE", "/dev/null")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _host, port = server.get_host_and_port()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        mp.undo()


@pytest.fixture
def s3_root(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server, as a DATA_ROOT `s3://bucket/prefix`."""
    import boto3

    bucket = f"obp-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    client.close()
    return f"s3://{bucket}/prefix"


@pytest.fixture
def private_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of the test's own: default S3 spools land there, not in the
    machine's."""
    run = tmp_path / "tmp"
    run.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(run))  # what tempfile.gettempdir() answers
    return run
