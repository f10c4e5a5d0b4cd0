"""Fixtures for delivering to real local HTTP receivers."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from ctrip_cli.db import engine as db_engine
from tests.integration.webhooks.receiver import Receiver, running


@pytest.fixture
def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def receiver(secret: str) -> Iterator[Receiver]:
    with running(secret) as rx:
        yield rx


@pytest.fixture
def sqlite_session(sqlite_url: str) -> Iterator[Session]:
    engine = db_engine.make_engine(sqlite_url)
    with db_engine.session_factory(engine)() as s:
        yield s
    engine.dispose()
