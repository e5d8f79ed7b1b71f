"""Credentials never reach a log line, whatever the level (issue 11, defect 6).

At DEBUG botocore logs every signed request: the Authorization header (the access key id in
`Credential=`), the session token, the canonical request and its signature. urllib3, httpx and
httpcore log URLs, which for a presigned URL carry the same. `RedactingFilter` rewrites each
emitted record's final text; `install_redaction` attaches it wherever the process sends records.

The CLI installs it (cli.main). Dagster runs configure no logging of their own: library records
reach no Dagster handler unless dagster.yaml lists those loggers under
`python_logs.managed_python_loggers` (this repository's does not), and Dagster's handler there
ignores added filters, so that setting would need its own redaction.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"

# The libraries whose records may carry credentials (their own loggers and handlers).
LIBRARY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore")
# Configured secrets replaced literally wherever they appear (a secret key has no shape to match).
SECRET_ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Shorter values are not redacted literally: a dummy such as "testing" would mangle every line
# that contains the word, and no real key, secret or token is that short.
MIN_LITERAL_SECRET = 8

# Names whose whole value is secret: header lines (the value runs to the end of the line) ...
_HEADER_NAMES = r"(?:proxy-)?authorization|x-amz-security-token|x-mbx-apikey"
# ... and fields, query parameters and settings (the value is one token).
_FIELD_NAMES = (
    r"x-amz-security-token|x-amz-signature|x-mbx-apikey|secretaccesskey|sessiontoken"
    r"|securitytoken|accesskeyid|awsaccesskeyid"
    r"|aws_secret_access_key|aws_session_token|aws_access_key_id"
)
# 'Authorization': b'AWS4-HMAC-SHA256 ...' (botocore's header dict repr) and JSON "name": "..."
# (IMDS answers call the session token "Token"). The value honours backslash escapes so an
# escaped quote cannot end it early.
_QUOTED = re.compile(
    rf"""(?P<q>['"])(?P<name>{_HEADER_NAMES}|{_FIELD_NAMES}|token)(?P=q)(?P<sep>\s*:\s*b?)"""
    r"""(?P<vq>['"])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)""",
    re.IGNORECASE | re.DOTALL,
)
# <SecretAccessKey>...</SecretAccessKey> in STS or IMDS answers botocore logs as a response body.
_XML = re.compile(rf"<(?P<name>{_FIELD_NAMES}|token)>(?P<value>[^<]*)</(?P=name)>", re.IGNORECASE)
# `Authorization: Bearer x` header lines and the canonical request's `x-amz-security-token:x`:
# the rest of the line. In a repr'd request (http.client's `send: b'...'`) lines start and end
# at literal \r\n escapes.
_HEADER_LINE = re.compile(
    rf"(?:(?<![\w-])|(?<=\\[rn]))(?P<name>{_HEADER_NAMES})(?P<sep>[ \t]*:[ \t]*)"
    r"(?P<value>(?:(?!\\[rn])[^\r\n'\"])+)",
    re.IGNORECASE,
)
# Query strings and key=value text: presigned URLs (X-Amz-Signature=..., X-Amz-Security-Token=...,
# Signature=... of SigV2), `aws_secret_access_key = ...`, and botocore's `Signature:\n<hex>`.
_TOKEN = re.compile(
    rf"(?<![\w-])(?P<name>{_FIELD_NAMES}|signature)(?P<sep>\s*[=:]\s*)"
    r"(?P<value>(?!\[REDACTED\])[^\s&,;'\"<>]+)",
    re.IGNORECASE,
)
# Credential=AKIA.../20240101/us-east-1/s3/aws4_request (also X-Amz-Credential=...%2F...): the
# key id goes, the scope stays (it is what one compares when a signature does not match).
_CREDENTIAL = re.compile(
    r"(?<![\w-])(?P<name>(?:x-amz-)?credential)(?P<sep>\s*=\s*)"
    r"(?P<value>(?!\[REDACTED\])[^/%\s&,;'\"<>]+)",
    re.IGNORECASE,
)
# Access key ids anywhere: long-term (AKIA) and temporary (ASIA) ones.
_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
# Every pattern above needs one of these (lower case) in the text.
_TRIGGERS = (
    "authoriz",
    "token",
    "signature",
    "credential",
    "secret",
    "accesskey",
    "access_key",
    "apikey",
    "akia",
    "asia",
)
# An auth scheme worth keeping in front of a redacted Authorization value.
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9-]*)\s+\S")


def _mask(name: str, value: str) -> str:
    if name.lower().endswith("authorization") and (m := _SCHEME.match(value)):
        return f"{m['scheme']} {REDACTED}"  # "AWS4-HMAC-SHA256 [REDACTED]": how it signed
    return REDACTED


def _keep_name(m: re.Match[str]) -> str:
    return f"{m['name']}{m['sep']}{_mask(m['name'], m['value'])}"


def _quoted(m: re.Match[str]) -> str:
    q, vq = m["q"], m["vq"]
    return f"{q}{m['name']}{q}{m['sep']}{vq}{_mask(m['name'], m['value'])}{vq}"


def _xml(m: re.Match[str]) -> str:
    return f"<{m['name']}>{REDACTED}</{m['name']}>"


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The configured credential values long enough to replace literally."""
    env = os.environ if env is None else env
    values = {v for name in SECRET_ENV_VARS if len(v := env.get(name, "")) >= MIN_LITERAL_SECRET}
    return sorted(values, key=len, reverse=True)  # a secret containing another goes first


class RedactingFilter(logging.Filter):
    """Rewrites a record's final message (and traceback) without credentials; never drops one.

    Filters only see records that passed their logger's level, so DEBUG-only cost stays at DEBUG.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        lowered = text.lower()
        if not any(word in lowered for word in _TRIGGERS):
            return text  # most lines: a few substring scans instead of six regex passes
        text = _QUOTED.sub(_quoted, text)
        text = _XML.sub(_xml, text)
        text = _HEADER_LINE.sub(_keep_name, text)
        text = _CREDENTIAL.sub(_keep_name, text)
        text = _TOKEN.sub(_keep_name, text)
        return _KEY_ID.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a bad format string: the handler reports it, as without the filter
        redacted = self.redact(message)
        if redacted != message:
            # The final text replaces msg and args: formatters and later handlers see only it.
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatter.format reuses exc_text when set, so the traceback is printed redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(env: Mapping[str, str] | None = None) -> RedactingFilter:
    """Attach one RedactingFilter to the root logger's handlers and the libraries' loggers.

    A logger's filters apply only to records logged on that very logger, not to those its
    children propagate (botocore logs on botocore.endpoint, botocore.auth, ...): handlers see
    every record that reaches them, hence the root handlers. The library loggers and their own
    handlers get it too, for handlers attached there. Call it once logging is configured; again
    to pick up changed credentials (it replaces the filter it attached before).
    """
    redactor = RedactingFilter(secrets_from_env(env))
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in LIBRARY_LOGGERS)]
    for logger in loggers:
        for target in [logger, *logger.handlers]:
            for old in [f for f in target.filters if isinstance(f, RedactingFilter)]:
                target.removeFilter(old)
            target.addFilter(redactor)
    return redactor
