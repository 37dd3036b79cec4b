"""Fixtures of the integration tests; the helpers themselves are in nginx_test_support.py."""

import pytest

from nginx_test_support import NginxPrefix


@pytest.fixture
def nginx(tmp_path):
    return NginxPrefix(tmp_path / 'nginx')
