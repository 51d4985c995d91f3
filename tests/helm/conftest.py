"""The ``helm`` fixture of ``test_chart`` for every module of the chart's tests."""

from tests.helm.test_chart import helm

__all__ = ["helm"]
