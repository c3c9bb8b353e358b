"""Session tokens: signed, expiring, and still expiring when their check is remembered."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from app.errors import Unauthenticated
from app.members import tokens
from app.members.tokens import TOKEN_LIFETIME, issue_token, read_token

SECRET = "a-secret-of-thirty-two-bytes-or-more!"


def test_a_token_reads_back_its_user_again_and_again():
    token = issue_token(42, SECRET)
    assert read_token(token, SECRET) == 42
    assert read_token(token, SECRET) == 42  # from the remembered check


def test_a_remembered_token_is_not_valid_under_another_secret():
    token = issue_token(7, SECRET)
    assert read_token(token, SECRET) == 7
    with pytest.raises(Unauthenticated, match="not valid"):
        read_token(token, "another-secret-of-thirty-two-bytes!!")


def test_an_expired_token_is_refused_even_once_remembered(monkeypatch):
    token = issue_token(9, SECRET, now=datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=30))
    assert read_token(token, SECRET) == 9
    later = time.time() + 60
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(Unauthenticated, match="expired"):
        read_token(token, SECRET)
    assert (SECRET, token) not in tokens._verified


def test_tampered_and_foreign_tokens_are_refused_and_never_remembered():
    token = issue_token(5, SECRET)
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}AA"
    for bad in (tampered, "not.a.token", ""):
        with pytest.raises(Unauthenticated):
            read_token(bad, SECRET)
        assert (SECRET, bad) not in tokens._verified


def test_the_memory_of_checks_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens, "_VERIFIED_MAX", 3)
    monkeypatch.setattr(tokens, "_verified", {})
    issued = [issue_token(n, SECRET) for n in range(5)]
    for n, token in enumerate(issued):
        assert read_token(token, SECRET) == n
    assert len(tokens._verified) == 3
    assert [key[1] for key in tokens._verified] == issued[2:]
