"""v2 XML in WeChat's own shape is read by regular expressions, anything else by expat: both
readings must agree on every body the short one accepts."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.wechat.pay_notify import (
    _DECLARATION,
    MalformedXml,
    _FlatXml,
    _wechat_shaped_fields,
    parse_v2_xml,
)
from miniprogram_mock.signing import build_v2_payment_notification, signed_xml
from tests.wechat.test_wechat_pay_notify import CREDS, notice_fields


def expat_reading(text: str) -> dict[str, str] | None:
    """What the expat path makes of `text`: its fields, or None when it refuses the body."""
    if _DECLARATION.search(text):
        return None
    try:
        return _FlatXml().parse(text.encode("utf-8"))
    except MalformedXml:
        return None


def test_wechats_notifications_take_the_short_reading() -> None:
    fake = build_v2_payment_notification(
        CREDS, out_trade_no="R1", transaction_id="4200", total_fee=1990, openid="o"
    )
    wechatpy = signed_xml(notice_fields(), CREDS.api_key)
    indented = (
        "<xml>\r\n  <return_code><![CDATA[SUCCESS]]></return_code>\r\n"
        "  <total_fee>1</total_fee>\r\n</xml>\r\n"
    )
    for text in (fake.decode(), wechatpy, indented):
        fields = _wechat_shaped_fields(text)
        assert fields is not None
        assert fields == expat_reading(text)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # Each leaves the short reading for expat, which reads it as XML says.
        (b"<xml><a>x\r\ny</a></xml>", {"a": "x\ny"}),
        (b"<xml><a>x&amp;y&#20013;</a></xml>", {"a": "x&y\u4e2d"}),
        (b"<xml><a><![CDATA[a]]]]><![CDATA[>b]]></a></xml>", {"a": "a]]>b"}),
        (b"<xml><a>1</a><b/></xml>", {"a": "1", "b": ""}),
        (b'<?xml version="1.0" encoding="UTF-8"?><xml><a>1</a></xml>', {"a": "1"}),
        (b"<xml><a-b>1</a-b></xml>", {"a-b": "1"}),
    ],
)
def test_other_bodies_are_read_by_expat(body: bytes, fields: dict[str, str]) -> None:
    assert _wechat_shaped_fields(body.decode()) is None
    assert parse_v2_xml(body) == fields


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><a>1</a><a>2</a></xml>",
        b"<xml></xml>",
        b"<xml><a>\x01</a></xml>",
        "<xml><a>\ufffe</a></xml>".encode(),
        b"<xml><a>1</b></xml>",
        b"<xml><a>1</a></xml><xml><b>2</b></xml>",
        b"<xml><a>1</a><!-- note --></xml>",
    ],
)
def test_what_expat_refuses_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedXml):
        parse_v2_xml(body)


# Mostly what WeChat sends, now and then a character, name or wrapper on which readings differ.
NAMES = st.sampled_from(["a", "sign", "_x", "A", "a", "sign", "_x", "A", "a-b", "x:y", "1a"])
VALUES = st.text(
    alphabet=st.sampled_from(
        [*"ab1 \t\n;[!CDATA/=\"'"] * 10
        + [*"\r<>&]", "\x01", "\x0b", "\ufffe", "\u00e9", "\u4e2d", "\U0001f600"]
    ),
    max_size=12,
)
SPACE = st.sampled_from(["", "\n", " \r\n  ", "\t"] * 3 + ["\u3000", "x"])


@st.composite
def field(draw: st.DrawFn, position: int) -> str:
    # Names differ by their position, but for a repeated one now and then.
    name = draw(NAMES) + draw(st.sampled_from([str(position)] * 8 + [""]))
    value, space = draw(VALUES), draw(SPACE)
    close = draw(st.sampled_from([name] * 8 + ["b"]))
    wrap = draw(st.sampled_from(["cdata", "plain"] * 4 + ["empty"]))
    if wrap == "cdata":
        return f"{space}<{name}><![CDATA[{value}]]></{close}>"
    if wrap == "empty":
        return f"{space}<{name}/>"
    return f"{space}<{name}>{value}</{close}>"


@st.composite
def document(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["<xml>"] * 6 + ["<xml >", " <xml>", "<?xml version='1.0'?><xml>"]))
    tail = draw(st.sampled_from(["</xml>", "</xml>\n"] * 3 + ["</xml>x", "</XML>", "</xml><b/>"]))
    count = draw(st.integers(min_value=0, max_value=5))
    fields = "".join(draw(field(position)) for position in range(count))
    return head + fields + draw(SPACE) + tail


SAFE = st.text(
    alphabet=st.sampled_from([*"ab1 \t\n;[!CDATA/=\"'", "\u00e9", "\u4e2d"]), max_size=12
)


@st.composite
def wechat_shaped(draw: st.DrawFn) -> str:
    names = draw(
        st.lists(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    fields = []
    for name in names:
        value = draw(SAFE)
        inner = f"<![CDATA[{value}]]>" if draw(st.booleans()) else value
        space = draw(st.sampled_from(["", "\n", " \r\n  "]))
        fields.append(f"{space}<{name}>{inner}</{name}>")
    return "<xml>" + "".join(fields) + draw(st.sampled_from(["", "\n"])) + "</xml>"


@given(wechat_shaped())
def test_wechat_shaped_bodies_take_the_short_reading(text: str) -> None:
    fields = _wechat_shaped_fields(text)
    assert fields is not None
    assert fields == expat_reading(text)


@settings(max_examples=400)
@given(document())
@example("<xml><a><![CDATA[]]></a><b></b><c> </c></xml>")
@example("<xml>\n<a>\t1\n</a>\r\n</xml>\r\n")
def test_the_short_reading_agrees_with_expat(text: str) -> None:
    fields = _wechat_shaped_fields(text)
    if fields is not None:
        assert fields == expat_reading(text)
