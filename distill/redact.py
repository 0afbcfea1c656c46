"""Passwords never leave the process: ``redact`` hides the password of every URL in a text (``user:***@``, and a
``password=`` query value), for parameters, tags, log lines and error messages alike."""
import re

_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s]*@")  # to the token's last @: p@ss too
_QUERY = re.compile(r"([?&](?:password|passwd|pwd)=)[^&\s]*", re.IGNORECASE)
HIDDEN = "***"


def redact(text) -> str:
    """``text`` with each URL's password replaced by ``***``: ``postgresql://user:***@host/db``."""
    text = _USERINFO.sub(rf"\1:{HIDDEN}@", str(text))
    return _QUERY.sub(rf"\1{HIDDEN}", text)


def has_password(url: str) -> bool:
    """Whether a URL carries a password (in its user part or its query)."""
    return redact(url) != str(url)
