"""A dead letter's payload as a person may see it: secrets stay hidden.

Values under secret-looking names (ending in password, token, api key, secret, authorization,
cookie, credentials) become ``[redacted]``, and passwords inside Redis URLs are removed. Text that is not
JSON is shown as is (it is still escaped by the template).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from sluice.connection.secrecy import redact_url

REDACTED: Final = "[redacted]"
# by the end of the name: `access_token`, `apiKey`, `OPENAI_API_KEY`, not `max_tokens` or `token_usage`
_SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|api[_-]?key|authori[sz]ation|cookie|credentials?)$", re.I
)
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.I)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_NAME.search(k) and v not in (None, "")
            else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and _URL_WITH_PASSWORD.match(value):
        return redact_url(value)
    return value


def payload_text(raw: bytes) -> str:
    """Pretty JSON with secrets redacted; undecodable bytes are replaced, never executed or parsed further."""
    text = raw.decode(errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return json.dumps(redact(data), indent=2, sort_keys=False, ensure_ascii=False)
