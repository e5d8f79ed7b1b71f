"""Store contract, run against a local folder and against S3 (moto on loopback)."""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path

import pytest

from orderbook_pipeline.storage.layout import TEMP_MARK, is_temporary
from orderbook_pipeline.storage.roots import open_store
from orderbook_pipeline.storage.s3_store import (
    S3_CONNECT_TIMEOUT_S,
    S3_MAX_ATTEMPTS,
    S3_READ_TIMEOUT_S,
    S3Store,
)
from orderbook_pipeline.storage.store import LocalStore, StorageError, Store


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest | None = None) -> Store:
    """A fresh store of `kind` ("local" or "s3"); shared by the storage test modules."""
    if kind == "local":
        return open_store(str(tmp_path / "data"))
    assert request is not None, "S3 stores need the moto fixtures"
    endpoint = request.getfixturevalue("s3_endpoint")
    root = request.getfixturevalue("s3_root")
    return open_store(root, s3_endpoint_url=endpoint, spool_dir=str(tmp_path / "spool"))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def temp_dir(private_temp_dir: Path) -> Path:
    return private_temp_dir


def test_open_store_picks_the_backend(tmp_path: Path, s3_endpoint: str, temp_dir: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    s3 = open_store("s3://bucket/some/prefix/", s3_endpoint_url=s3_endpoint)
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.uri("bronze/x.avro") == "s3://bucket/some/prefix/bronze/x.avro"
    # The default spool is stable per root, so a restarted process finds its predecessor's.
    again = open_store("s3://bucket/some/prefix", s3_endpoint_url=s3_endpoint)
    assert isinstance(again, S3Store) and again.spool_dir == s3.spool_dir


def test_s3_requests_are_bounded_and_publishing_is_remote(
    tmp_path: Path, s3_endpoint: str, temp_dir: Path
) -> None:
    """botocore's defaults wait 60 s per read: one attempt must be short, as the bronze
    uploader retries failed publishes itself."""
    s3 = open_store("s3://bucket/p", s3_endpoint_url=s3_endpoint)
    assert isinstance(s3, S3Store)
    config = s3.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": S3_MAX_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (
        S3_CONNECT_TIMEOUT_S,
        S3_READ_TIMEOUT_S,
    )
    # The pyarrow filesystem that lists and reads: same endpoint, same bounds.
    options = s3.filesystem.__reduce__()[1][0]
    assert options["endpoint_override"] == s3_endpoint.removeprefix("http://")
    assert options["scheme"] == "http" and options["region"] == "us-east-1"
    assert (options["connect_timeout"], options["request_timeout"]) == (
        S3_CONNECT_TIMEOUT_S,
        S3_READ_TIMEOUT_S,
    )
    assert options["access_key"] == "testing"  # boto3's credentials (from the environment)
    assert s3.publishes_remotely and not open_store(str(tmp_path)).publishes_remotely


def test_endpoint_from_env(s3_endpoint: str, s3_root: str, temp_dir: Path) -> None:
    # The variable is the configuration's (config/ reads the environment, the store does not).
    from orderbook_pipeline.config import load_config

    env = {"OBP_S3_ENDPOINT_URL": s3_endpoint, "OBP_DATA_ROOT": s3_root}
    config = load_config(env=env, cwd=temp_dir)
    s = config.store()
    s.write_bytes("a/b.avro", b"x")
    assert s.read_bytes("a/b.avro") == b"x"


def test_aws_endpoint_url_reaches_listing_too(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, s3_root: str, temp_dir: Path
) -> None:
    # boto3 applies AWS_ENDPOINT_URL itself; pyarrow does not, so it gets boto3's endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s = open_store(s3_root)
    s.write_bytes("a/b.avro", b"x")
    assert s.read_bytes("a/b.avro") == b"x" and s.list_files("a/") == ["a/b.avro"]


def _private(path: Path | str) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def test_default_spool_is_private_per_user(temp_dir: Path, s3_endpoint: str) -> None:
    s3 = open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint)
    assert isinstance(s3, S3Store)
    base = temp_dir / f"orderbook-spool-{os.getuid()}"
    assert Path(s3.spool_dir).parent == base
    assert _private(base) and _private(s3.spool_dir)  # created 0700, whatever the umask
    other = open_store("s3://bucket/b", s3_endpoint_url=s3_endpoint)
    assert isinstance(other, S3Store) and Path(other.spool_dir).parent == base
    assert other.spool_dir != s3.spool_dir


def test_the_spool_is_not_in_the_runtime_folder_that_a_logout_removes(
    temp_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    s3 = open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint)
    assert isinstance(s3, S3Store) and Path(s3.spool_dir).is_relative_to(temp_dir)
    assert os.listdir(runtime) == []


@pytest.mark.parametrize("problem", ["mode", "owner", "symlink", "file"])
def test_unsafe_spool_is_refused(
    problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    spool = tmp_path / "spool"
    uid = os.getuid()
    if problem == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        spool.symlink_to(tmp_path / "elsewhere")
        expected = "it is a symbolic link"
    elif problem == "file":
        spool.write_bytes(b"")
        expected = "it is not a directory"
    else:
        spool.mkdir()
        spool.chmod(0o777 if problem == "mode" else 0o700)
        expected = "mode 0777, must be 0700"
    if problem == "owner":  # as if another user had made it
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
        expected = f"owned by uid {uid}, not {uid + 1}"
    with pytest.raises(StorageError, match=re.escape(f"{spool}: {expected}")):
        open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint, spool_dir=str(spool))
    if problem == "mode":
        assert stat.S_IMODE(os.lstat(spool).st_mode) == 0o777  # refused, not chmod-ed


def test_shared_default_spool_base_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / f"orderbook-spool-{os.getuid()}"
    base.mkdir()
    base.chmod(0o777)  # made by someone else beforehand, open to all
    with pytest.raises(StorageError, match=re.escape(f"{base}: mode 0777")):
        open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint)
    base.chmod(0o700)
    s3 = open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint)
    assert isinstance(s3, S3Store)
    os.chmod(s3.spool_dir, 0o750)  # the per-root directory is checked too
    with pytest.raises(StorageError, match=re.escape(f"{s3.spool_dir}: mode 0750")):
        open_store("s3://bucket/a", s3_endpoint_url=s3_endpoint)


def test_write_read_list_delete(store: Store) -> None:
    store.write_bytes("bronze/l2/a/1.avro", b"one")
    store.write_bytes("bronze/l2/b/2.avro", b"two")
    store.write_bytes("bronze/diffs/c/3.avro", b"three")
    store.write_bytes("silver/l2/d/data.parquet", b"pq")
    assert store.read_bytes("bronze/l2/b/2.avro") == b"two"
    store.write_bytes("state/x.json.gz", b"not gzip")  # read as stored, not decompressed
    assert store.read_bytes("state/x.json.gz") == b"not gzip"
    assert store.list_files("bronze/") == [
        "bronze/diffs/c/3.avro",
        "bronze/l2/a/1.avro",
        "bronze/l2/b/2.avro",
    ]
    assert store.list_files("bronze/l2/a") == ["bronze/l2/a/1.avro"]  # a string prefix
    assert store.list_files("", suffix=".parquet") == ["silver/l2/d/data.parquet"]
    assert store.exists("bronze/l2/a/1.avro")
    store.write_bytes("bronze/l2/a/1.avro", b"replaced")
    assert store.read_bytes("bronze/l2/a/1.avro") == b"replaced"
    store.delete("bronze/l2/a/1.avro")
    store.delete("bronze/l2/a/1.avro")  # idempotent
    assert not store.exists("bronze/l2/a/1.avro")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("bronze/l2/a/1.avro")
    assert store.stray_temporaries() == []


def test_temporaries_are_invisible_until_published(store: Store) -> None:
    temp = store.temp_path_for("bronze/l2/x/b1-0.avro")
    name = os.path.basename(temp)
    assert name.startswith(".b1-0.avro" + TEMP_MARK) and is_temporary(name)
    Path(temp).write_bytes(b"partial")
    assert store.list_files("") == []
    assert not store.exists("bronze/l2/x/b1-0.avro")
    assert store.stray_temporaries() == [temp]
    assert store.final_path_for_temp(temp) == "bronze/l2/x/b1-0.avro"
    store.publish(temp, "bronze/l2/x/b1-0.avro")
    assert store.list_files("") == ["bronze/l2/x/b1-0.avro"]
    assert store.read_bytes("bronze/l2/x/b1-0.avro") == b"partial"
    assert not os.path.exists(temp) and store.stray_temporaries() == []


def test_local_temporary_sits_next_to_final(tmp_path: Path) -> None:
    s = LocalStore(str(tmp_path))
    temp = s.temp_path_for("bronze/a/f.avro")
    assert os.path.dirname(temp) == str(tmp_path / "bronze" / "a")  # same dir: atomic rename


def test_paths_cannot_escape_the_root(store: Store) -> None:
    for bad in ("../x.avro", "/abs.avro", "a//b.avro", ""):
        with pytest.raises(ValueError):
            store.write_bytes(bad, b"x")


def test_s3_listing_pages_past_the_first_thousand_keys(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    s = make_store("s3", tmp_path, request)
    assert isinstance(s, S3Store)
    names = sorted(f"bronze/l2/d{i % 3}/f{i:04d}.avro" for i in range(1005))  # 1000 a page
    for n in names:
        s.client.put_object(Bucket=s.bucket, Key=s._key(n), Body=b"x")
    assert s.list_files("bronze/") == names
    assert s.first_file("bronze/l2/d2") == names[-335]


def test_s3_delete_leaves_no_directory_marker(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """pyarrow's delete_file would put an empty 'dir/' object back: boto3 deletes."""
    s = make_store("s3", tmp_path, request)
    assert isinstance(s, S3Store)
    s.write_bytes("silver/l2/a/part-00000.parquet", b"x")
    s.delete("silver/l2/a/part-00000.parquet")
    assert "Contents" not in s.client.list_objects_v2(Bucket=s.bucket)


def test_local_publish_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = LocalStore(str(tmp_path))
    s.write_bytes("bronze/ok.avro", b"ok")
    temp = s.temp_path_for("bronze/new.avro")
    Path(temp).write_bytes(b"data")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match=r"new\.avro.*disk full"):
        s.publish(temp, "bronze/new.avro")
    with pytest.raises(StorageError, match="disk full"):
        s.write_bytes("bronze/other.avro", b"x")
    monkeypatch.undo()
    assert os.path.exists(temp)  # left for a retry or salvage
    assert s.list_files("") == ["bronze/ok.avro"]
    assert s.read_bytes("bronze/ok.avro") == b"ok"


def test_s3_publish_failure_keeps_spool_file(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_store("s3", tmp_path, request)
    assert isinstance(s, S3Store)
    temp = s.temp_path_for("bronze/new.avro")
    Path(temp).write_bytes(b"data")

    def broken_put(**kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(s.client, "put_object", broken_put)
    with pytest.raises(StorageError, match=r"s3://.*/prefix/bronze/new\.avro.*disk full"):
        s.publish(temp, "bronze/new.avro")
    assert os.path.exists(temp) and s.list_files("") == []


def test_first_file_is_the_oldest_partition(store: Store) -> None:
    prefix = "bronze/l2/market=binance-spot/symbol=BTCUSDT/"
    assert store.first_file(prefix) is None
    for rel in (
        f"{prefix}dt=2026-11-21/hour=16/depth=10/b-1.avro",
        f"{prefix}dt=2026-11-20/hour=23/depth=20/b-0.avro",
        f"{prefix}dt=2026-11-20/hour=23/depth=10/b-2.avro",
        "bronze/l2/market=binance-spot/symbol=BTCUSDA/dt=2026-01-01/hour=00/depth=10/x-0.avro",
    ):
        store.write_bytes(rel, b"x")
    # A temporary sorting first is invisible here too.
    temp = store.temp_path_for(f"{prefix}dt=2026-11-19/hour=00/depth=10/a-0.avro")
    Path(temp).write_bytes(b"partial")
    expected = f"{prefix}dt=2026-11-20/hour=23/depth=10/b-2.avro"
    assert store.first_file(prefix) == expected
    assert store.first_file(prefix) == store.list_files(prefix)[0]


def test_listing_order_and_hidden_directories(store: Store) -> None:
    """A file sorts before a directory of its stem ('a.avro' < 'a/...', as S3 orders keys);
    nothing under a hidden directory is listed."""
    for rel in ("x/a/b.avro", "x/a.avro", "x/.hidden/c.avro", "x/b/.d.avro"):
        store.write_bytes(rel, b"x")
    assert store.list_files("x/") == ["x/a.avro", "x/a/b.avro"]
    assert store.first_file("x/") == "x/a.avro" and store.first_file("x/a/") == "x/a/b.avro"
    assert store.first_file("x/b") is None and store.first_file("nothing/") is None


def test_a_missing_bucket_is_an_error_not_an_empty_lake(tmp_path: Path, s3_endpoint: str) -> None:
    s = open_store("s3://no-such-bucket/p", s3_endpoint_url=s3_endpoint, spool_dir=str(tmp_path))
    for call in (lambda: s.list_files("bronze/"), lambda: s.read_bytes("bronze/a.avro")):
        with pytest.raises(StorageError, match="no such bucket: no-such-bucket"):
            call()
