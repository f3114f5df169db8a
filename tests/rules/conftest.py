"""Fixtures for rules tests over the API: the purchases tests' member factory."""

from tests.purchases.conftest import enrol  # noqa: F401
