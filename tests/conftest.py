"""Data-set fixtures shared by the test modules (one load per module, as each module had)."""

import pytest

import mlm


@pytest.fixture(scope="module")
def hsb():
    return mlm.load_dataset("hsb")


@pytest.fixture(scope="module")
def sleep():
    return mlm.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def contraception():
    return mlm.load_dataset("contraception")


@pytest.fixture(scope="module")
def cbpp():
    return mlm.load_dataset("cbpp")
