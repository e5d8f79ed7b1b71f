"""The S3 store: final files are objects under s3://bucket/prefix, temporaries a local spool.

Reads and listings go through pyarrow's S3FileSystem, built from the boto3 client's settings;
publishing (one PUT) and deletes stay on boto3 (see S3Store).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from orderbook_pipeline.storage.store import (
    StorageError,
    Store,
    check_rel,
    default_spool_base,
    describe_os_error,
    new_temp_path,
    private_dir,
)

# One S3 request: botocore's own retries and timeouts (its defaults wait 60 s per read). Kept
# short, because the bronze uploader (uploader.py) retries a failed publish itself, for as long
# as the writer is open: botocore's are only the inner, quick loop.
S3_MAX_ATTEMPTS = 3  # in all, the first one included
S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 20.0


class S3Store(Store):
    """Final files are S3 objects under s3://bucket/prefix; temporaries live in a local spool.

    Reads and listings go through pyarrow's S3FileSystem, configured from the boto3 client
    (same endpoint, region and credentials). Writes and deletes stay on boto3: the uploader
    classifies botocore's structured errors (status, error code, connection kind) to decide what
    to retry, which pyarrow reports only as message text; and pyarrow's delete_file costs a HEAD
    first and leaves an empty 'directory/' marker object behind when a directory empties.
    """

    publishes_remotely = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        spool_dir: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._credentials: Any = None
        if client is None:
            client, self._credentials = _boto3_client(endpoint_url, region_name)
        self.client = client
        self._filesystem: pafs.S3FileSystem | None = None
        self._bucket_found = False
        if spool_dir is None:
            # Stable per root, so a restarted process finds (and salvages) its predecessor's spool,
            # in a base private to this user: salvage uploads whatever lies in the spool.
            digest = hashlib.sha256(f"{endpoint_url or ''}|{self.root}".encode()).hexdigest()[:16]
            spool_dir = os.path.join(private_dir(default_spool_base()), digest)
        else:
            spool_dir = os.path.abspath(spool_dir)
            try:
                os.makedirs(os.path.dirname(spool_dir), exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the parent of spool directory {spool_dir}: "
                    f"{describe_os_error(exc)}"
                ) from exc
        self.spool_dir = private_dir(spool_dir)

    @property
    def filesystem(self) -> pafs.FileSystem:
        # Made on first use: opening a store costs no request, and the AWS SDK behind it is
        # started in the process that uses it (it must not cross a fork).
        if self._filesystem is None:
            self._filesystem = s3_filesystem_like(self.client, self.bucket, self._credentials)
        return self._filesystem

    @property
    def fs_base(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def _root_missing(self) -> str | None:
        if self._bucket_found:  # asked once per store: a bucket is not deleted under a lake
            return None
        try:
            info = self.filesystem.get_file_info(self.bucket)
        except OSError:
            return None  # not known to be missing: the empty answer stands
        if info.type == pafs.FileType.NotFound:
            return f"no such bucket: {self.bucket}"
        self._bucket_found = True
        return None

    def _key(self, rel_path: str) -> str:
        rel = check_rel(rel_path)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def local_base(self) -> str:
        return self.spool_dir

    def temp_path_for(self, rel_path: str) -> str:
        directory = os.path.join(self.spool_dir, *check_rel(rel_path).split("/")[:-1])
        try:
            return new_temp_path(directory, rel_path)
        except OSError as exc:
            raise StorageError(
                f"cannot create spool directory {directory}: {describe_os_error(exc)}"
            ) from exc

    def publish(self, temp_path: str, rel_path: str, durable: bool = True) -> None:
        # Durable either way once S3 acknowledges. A single PutObject is atomic on S3: the object
        # becomes visible only once complete, and a failed or interrupted PUT leaves no object.
        # So no temporary key is needed; the local spool file stays on failure for a retry or
        # salvage.
        try:
            with open(temp_path, "rb") as fh:
                self.client.put_object(Bucket=self.bucket, Key=self._key(rel_path), Body=fh)
        except Exception as exc:
            raise StorageError(
                f"cannot upload {temp_path} to {self.uri(rel_path)}: {describe_os_error(exc)}"
            ) from exc
        try:
            os.remove(temp_path)
        except OSError as exc:
            # The object is published; a leftover spool file would only be re-uploaded as is.
            raise StorageError(
                f"published {self.uri(rel_path)} but cannot remove spool file {temp_path}: "
                f"{describe_os_error(exc)}"
            ) from exc

    def delete(self, rel_path: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel_path))
        except Exception as exc:
            raise StorageError(
                f"cannot delete {self.uri(rel_path)}: {describe_os_error(exc)}"
            ) from exc

    def uri(self, rel_path: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel_path)}"


def _boto3_client(endpoint_url: str | None, region_name: str | None) -> tuple[Any, Any]:
    """(S3 client, the credentials it resolved or None) with short, bounded requests."""
    # Imported lazily: local-only users never pay for botocore.
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        # total_max_attempts counts the first try (botocore's max_attempts does not).
        retries={"mode": "standard", "total_max_attempts": S3_MAX_ATTEMPTS},
        connect_timeout=S3_CONNECT_TIMEOUT_S,
        read_timeout=S3_READ_TIMEOUT_S,
    )
    session = boto3.session.Session(region_name=region_name)
    # endpoint_url None lets boto3 apply AWS_ENDPOINT_URL (and the profile's endpoint) itself.
    client = session.client("s3", endpoint_url=endpoint_url, config=config)
    return client, session.get_credentials()


def s3_filesystem_like(client: Any, bucket: str, credentials: Any = None) -> pafs.S3FileSystem:
    """A pyarrow S3FileSystem reaching what the boto3 `client` reaches: the endpoint boto3
    resolved (pyarrow reads no AWS_ENDPOINT_URL), the bucket's region, the same credentials,
    and the same bounded requests (S3_MAX_ATTEMPTS, the timeouts)."""
    options: dict[str, Any] = {
        "request_timeout": S3_READ_TIMEOUT_S,
        "connect_timeout": S3_CONNECT_TIMEOUT_S,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=S3_MAX_ATTEMPTS),
        "region": client.meta.region_name,
    }
    endpoint = str(client.meta.endpoint_url)
    if (urlsplit(endpoint).hostname or "").endswith("amazonaws.com"):
        # AWS itself: virtual-host addressing, in the bucket's own region (boto3 follows a
        # region redirect by itself, pyarrow does not).
        with contextlib.suppress(OSError):
            options["region"] = pafs.resolve_s3_region(bucket)
    else:
        parts = urlsplit(endpoint)
        options["scheme"] = parts.scheme or "https"
        options["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
    if credentials is None and hasattr(client, "_request_signer"):
        credentials = client._request_signer._credentials  # an injected client's own
    if credentials is None:
        options["anonymous"] = True  # boto3 found none either: fail fast, no IMDS probing
    elif not hasattr(credentials, "refresh_needed"):
        # Static keys (env, config files, explicit): exactly boto3's. Refreshable ones (instance
        # or container role, assume-role, SSO) are left to the AWS SDK's own chain, which reads
        # the same sources and, unlike a frozen copy, renews them before they expire.
        frozen = credentials.get_frozen_credentials()
        options.update(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            session_token=frozen.token,
        )
    return pafs.S3FileSystem(**options)
