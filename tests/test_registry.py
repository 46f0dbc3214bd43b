import pytest

from scalesearch.errors import UserError
from scalesearch.registry import Registry


def test_registered_and_declared_members_share_one_shape():
    family = Registry("widget")

    @family.register("square")
    def square(x):
        return x * x

    family.declare("dumps", "json:dumps")
    assert family.choices() == ("square", "dumps") and "dumps" in family and len(family) == 2
    assert family.get("square")(3) == 9
    assert family.get("dumps")([1]) == "[1]"  # imported on first use
    assert list(family) == ["square", "dumps"]


def test_unknown_name_is_one_user_error_with_close_names():
    family = Registry("widget")
    family.add("square", 1)
    family.add("circle", 2)
    with pytest.raises(UserError, match=r"unknown widget 'sqare' \(close names: square\)"):
        family.get("sqare")


def test_a_name_is_registered_once():
    family = Registry("widget")
    family.add("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        family.declare("a", "json:dumps")
