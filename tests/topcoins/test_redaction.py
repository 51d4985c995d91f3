import json

import h11
import pytest

from topcoins.redaction import MASK, redact, secret_forms

KEYS = ["KEY-123\n", "KEY-123\r\n", "KEY 123", "kéy-123", "KEY\\123", 'KEY"123']


def forms_of(key: str) -> list[str]:
    """How a message may show ``key``: plain, repr, bytes repr, escapes, JSON."""
    return [
        key,
        repr(key),
        repr(key.encode()),
        key.encode("unicode_escape").decode(),
        json.dumps(key),
        json.dumps(repr(key.encode())),  # a bytes repr inside a JSON log line
        str(key.encode()),
    ]


@pytest.mark.parametrize("key", KEYS)
def test_every_representation_of_a_key_is_replaced(key):
    for form in forms_of(key):
        text = f"error: {form} was refused"
        redacted = redact(text, [key])
        assert redacted.startswith("error: ") and MASK in redacted, form
        for shown in forms_of(key):
            assert shown.strip("'\"b") not in redacted, (form, shown)


def test_the_error_h11_raises_for_a_key_with_a_newline_is_redacted():
    key = "sekret-abc\n"
    with pytest.raises(h11.LocalProtocolError) as caught:  # what httpx raises under the hood
        h11.Request(method="GET", target="/", headers=[("Host", "x"), ("X-Key", key)])
    text = f"{type(caught.value).__name__}: {caught.value}"
    assert "sekret-abc" in text  # the leak redaction has to catch: b'sekret-abc\\n'
    assert "sekret-abc" not in redact(text, [key])
    assert "sekret-abc" not in redact(text, [key.strip()])


def test_text_without_a_secret_is_left_alone():
    assert redact("HTTP 502 from coinmarketcap", ["KEY-123"]) == "HTTP 502 from coinmarketcap"
    assert redact("anything", ["", "   "]) == "anything"
    assert secret_forms("") == ()


def test_forms_are_longest_first_so_no_escaped_tail_survives():
    forms = secret_forms("ab\ncd")
    assert list(forms) == sorted(forms, key=len, reverse=True)
    assert "ab\\ncd" in forms and "ab\ncd" in forms
