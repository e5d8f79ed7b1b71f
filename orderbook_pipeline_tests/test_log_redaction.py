"""Credentials never reach a log line (issue 11, defect 6): the filter on botocore-style text and
its installation on the handlers every library record reaches. The CLI end to end, at DEBUG
against S3: test_cli.py."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from orderbook_pipeline.log_redaction import (
    LIBRARY_LOGGERS,
    REDACTED,
    RedactingFilter,
    install_redaction,
)

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TEMP_KEY_ID = "ASIAY34FZKBOKMUTVV7A"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQEXAMPLE"
SIGNATURE = "6a1b67b84e326256f5828a55462466d3bbdafa8e62c682fc628c2311a9b1e3cd"
SCOPE = "20261202/us-east-1/s3/aws4_request"

# What botocore.endpoint logs at DEBUG for every request (shortened).
SENDING = (
    "Sending http request: <AWSPreparedRequest stream_output=False, method=PUT, "
    "url=http://127.0.0.1:45353/bucket/p/bronze/x.avro, headers={'User-Agent': b'Boto3/1.44.8', "
    f"'X-Amz-Date': b'20261202T073513Z', 'X-Amz-Security-Token': b'{TOKEN}', "
    f"'Authorization': b'AWS4-HMAC-SHA256 Credential={KEY_ID}/{SCOPE}, "
    f"SignedHeaders=host;x-amz-date;x-amz-security-token, Signature={SIGNATURE}', "
    "'Content-Length': '18890'}>"
)
# botocore.auth at DEBUG: the canonical request, then the signature.
CANONICAL = (
    "CanonicalRequest:\nPUT\n/bucket/p/bronze/x.avro\n\nhost:127.0.0.1:45353\n"
    f"x-amz-date:20261202T073513Z\nx-amz-security-token:{TOKEN}\n\nhost;x-amz-date"
)
PRESIGNED = (
    "https://bucket.s3.amazonaws.com/p/x.avro?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={KEY_ID}%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20261202T073513Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    f"&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2FEXAMPLE&X-Amz-Signature={SIGNATURE}"
)


@pytest.fixture
def redactor() -> RedactingFilter:
    return RedactingFilter([SECRET])


def _leaks(text: str) -> list[str]:
    return [s for s in (KEY_ID, TEMP_KEY_ID, SECRET, TOKEN, SIGNATURE) if s in text]


def test_botocore_request_headers_lose_key_id_token_and_signature(redactor):
    out = redactor.redact(SENDING)
    assert _leaks(out) == []
    # The rest stays readable: how it signed, which headers, which object.
    assert f"'Authorization': b'AWS4-HMAC-SHA256 {REDACTED}'" in out
    assert f"'X-Amz-Security-Token': b'{REDACTED}'" in out
    assert "'X-Amz-Date': b'20261202T073513Z'" in out and "/bucket/p/bronze/x.avro" in out


def test_canonical_request_and_signature_lines(redactor):
    out = redactor.redact(CANONICAL)
    assert _leaks(out) == [] and f"x-amz-security-token:{REDACTED}\n" in out
    assert "x-amz-date:20261202T073513Z" in out
    assert redactor.redact(f"Signature:\n{SIGNATURE}") == f"Signature:\n{REDACTED}"


def test_presigned_urls_keep_the_scope_not_the_key(redactor):
    out = redactor.redact(f'127.0.0.1:9000 "GET {PRESIGNED} HTTP/1.1" 200 5')
    assert _leaks(out) == [] and "EXAMPLE&" not in out  # the URL-encoded token too
    assert f"X-Amz-Credential={REDACTED}%2F20261202%2Fus-east-1" in out
    assert f"X-Amz-Signature={REDACTED} HTTP/1.1" in out and "X-Amz-Expires=3600" in out
    sigv2 = f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={KEY_ID}&Signature=ab%2Bc%3D&Expires=9"
    assert redactor.redact(sigv2) == (
        f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={REDACTED}&Signature={REDACTED}&Expires=9"
    )
    header = f"Credential={KEY_ID}/{SCOPE}, SignedHeaders=host, Signature={SIGNATURE}"
    assert redactor.redact(header) == (
        f"Credential={REDACTED}/{SCOPE}, SignedHeaders=host, Signature={REDACTED}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.e30.sig", f"Authorization: Bearer {REDACTED}"),
        ("proxy-authorization: Basic dXNlcjpwYXNz", f"proxy-authorization: Basic {REDACTED}"),
        (
            f"Authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/{SCOPE}, Signature=ab",
            f"Authorization: AWS4-HMAC-SHA256 {REDACTED}",
        ),
        ("{'authorization': 'opaque'}", f"{{'authorization': '{REDACTED}'}}"),
        # http.client's debug output: one repr'd request, lines at literal \r\n escapes.
        (
            r"send: b'GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nAccept: */*\r\n'",
            rf"send: b'GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {REDACTED}\r\nAccept: */*\r\n'",
        ),
    ],
)
def test_generic_authorization_headers(redactor, text, expected):
    assert redactor.redact(text) == expected


def test_credentials_in_sts_and_imds_answers(redactor):
    xml = (
        f"Response body:\nb'<Credentials><AccessKeyId>{TEMP_KEY_ID}</AccessKeyId>"
        f"<SecretAccessKey>other/secret+value</SecretAccessKey><SessionToken>{TOKEN}"
        "</SessionToken></Credentials>'"
    )
    out = redactor.redact(xml)
    assert _leaks(out) == [] and "other/secret" not in out
    assert f"<SecretAccessKey>{REDACTED}</SecretAccessKey>" in out
    imds = f'{{"AccessKeyId": "{TEMP_KEY_ID}", "SecretAccessKey": "s/k", "Token": "{TOKEN}"}}'
    out = redactor.redact(imds)
    assert _leaks(out) == [] and '"SecretAccessKey": "[REDACTED]"' in out


def test_known_secret_values_are_replaced_anywhere(redactor):
    assert redactor.redact(f"oops {SECRET}.") == f"oops {REDACTED}."
    assert redactor.redact(f"key={KEY_ID}") == f"key={REDACTED}"  # the shape alone suffices
    assert redactor.redact("aws_secret_access_key = abc/def") == (
        f"aws_secret_access_key = {REDACTED}"
    )


def test_text_without_credentials_is_left_alone(redactor):
    for text in (
        "Found credentials in environment variables.",
        "published s3://b/p/bronze/x.avro (18890 bytes) Asia/Tokyo",
        '< TEXT \'{"e":"depthUpdate","s":"BTCUSDT"}\' [1234 bytes]',
    ):
        assert redactor.redact(text) == text


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, msg, args, exc_info)


def test_the_filter_rewrites_the_final_message_and_the_traceback(redactor):
    record = _record("Sending %s with %r", "request", {"Authorization": f"Bearer {KEY_ID}"})
    assert redactor.filter(record) is True
    assert record.args is None and record.getMessage() == (
        f"Sending request with {{'Authorization': 'Bearer {REDACTED}'}}"
    )
    try:
        raise RuntimeError(f"signing failed for {KEY_ID} with {SECRET}")
    except RuntimeError as exc:
        record = _record("upload failed", exc=exc)
    redactor.filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError: signing failed for" in text and _leaks(text) == []


def test_records_without_credentials_keep_their_arguments(redactor):
    record = _record("published %s", "s3://b/x.avro")
    assert redactor.filter(record) is True
    assert record.msg == "published %s" and record.args == ("s3://b/x.avro",)
    broken = _record("%d items", "not a number")  # reported by the handler, as without the filter
    assert redactor.filter(broken) is True and broken.args == ("not a number",)


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A DEBUG handler on the root logger (as basicConfig makes); filters restored after."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    targets = [root, *root.handlers, *(logging.getLogger(n) for n in LIBRARY_LOGGERS)]
    saved = {id(t): list(t.filters) for t in targets}
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for target in targets:
            target.filters[:] = saved[id(target)]


def test_install_covers_records_of_child_loggers_on_the_root_handlers(root_stream):
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": ""}
    install_redaction(env)
    install_redaction(env)  # again: still one filter per target
    root = logging.getLogger()
    for target in [root, *root.handlers, logging.getLogger("botocore")]:
        assert sum(isinstance(f, RedactingFilter) for f in target.filters) == 1
    # botocore logs on child loggers, which a filter on `botocore` itself never sees.
    logging.getLogger("botocore.endpoint").debug("Sending http request: %s", SENDING)
    logging.getLogger("urllib3.connectionpool").debug('"GET %s HTTP/1.1" 200 5', PRESIGNED)
    logging.getLogger("orderbook_pipeline.storage").warning("cannot upload: %s", SECRET)
    out = root_stream.getvalue()
    assert out.count(REDACTED) > 5 and _leaks(out) == []
    assert "Sending http request" in out and "cannot upload: [REDACTED]" in out


def test_short_dummy_credentials_are_not_replaced_literally(root_stream):
    # The test suite's own "testing" credentials: replacing the word would mangle messages.
    install_redaction({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    logging.getLogger("orderbook_pipeline").info("testing the lake")
    assert root_stream.getvalue() == "testing the lake\n"
