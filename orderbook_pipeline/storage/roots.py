"""Opening the store a data root names: an `s3://bucket/prefix` or a local folder."""

from __future__ import annotations

from orderbook_pipeline.storage.store import DEFAULT_ROOT, LocalStore, Store


def open_store(
    root: str = DEFAULT_ROOT, *, s3_endpoint_url: str | None = None, spool_dir: str | None = None
) -> Store:
    """Store for a DATA_ROOT: `s3://bucket/prefix` or a local folder.

    The S3 endpoint is the argument (the configuration's s3_endpoint_url, which
    $OBP_S3_ENDPOINT_URL sets), else boto3's own $AWS_ENDPOINT_URL handling, else AWS.
    """
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"S3 root without a bucket: {root!r}")
        # Here, not at the top: pyarrow and boto3 load only for an S3 root (a local capture
        # stays ~40 MB smaller).
        from orderbook_pipeline.storage.s3_store import S3Store

        return S3Store(bucket, prefix, endpoint_url=s3_endpoint_url or None, spool_dir=spool_dir)
    return LocalStore(root)
