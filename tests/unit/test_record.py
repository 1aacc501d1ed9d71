"""certrotor.record: frozen records behave as frozen dataclasses do for the
value types that use them (construction, immutability, equality, hash,
repr, replace), and refuse misuse with a TypeError naming it."""

from __future__ import annotations

import copy
import pickle
from typing import Any, ClassVar

import pytest

from certrotor.record import FrozenInstanceError, field, fields, is_record, record, replace


@record
class Point:
    """Two coordinates and a label."""

    x: int
    y: int
    label: str = "origin"
    units: ClassVar[str] = "mm"

    def moved(self, by: int) -> Point:
        return replace(self, x=self.x + by)


@record
class Labelled:
    x: int
    y: int
    label: str = "origin"


@record
class Point3(Point):
    z: int = 0


@record
class Shown:
    value: str

    def __repr__(self) -> str:
        return "Shown(<hidden>)"


def test_fields_come_in_annotation_order_without_class_variables() -> None:
    assert fields(Point) == ("x", "y", "label")
    assert fields(Point(1, 2)) == ("x", "y", "label")
    assert Point.__match_args__ == ("x", "y", "label")


def test_fields_are_given_by_position_or_keyword_and_defaults_fill_the_rest() -> None:
    assert (Point(1, 2).x, Point(1, 2).y, Point(1, 2).label) == (1, 2, "origin")
    given = Point(1, label="here", y=5)
    assert (given.x, given.y, given.label) == (1, 5, "here")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1,), {}, r"Point\(\) missing required argument\(s\): 'y'"),
        ((), {}, r"Point\(\) missing required argument\(s\): 'x', 'y'"),
        ((1, 2, "a", "b"), {}, r"Point\(\) takes 3 positional arguments but 4 were given"),
        ((1, 2), {"colour": "red"}, r"Point\(\) got an unexpected keyword argument 'colour'"),
        ((1, 2), {"x": 3}, r"Point\(\) got multiple values for argument 'x'"),
        ((1, 2), {"units": "cm"}, r"Point\(\) got an unexpected keyword argument 'units'"),
    ],
)
def test_a_wrong_call_is_a_type_error_naming_what_is_wrong(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    build: Any = Point  # the calls mypy would refuse, made at run time
    with pytest.raises(TypeError, match=message):
        build(*args, **kwargs)


def test_no_field_can_be_assigned_or_deleted_nor_a_new_attribute_added() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'y'"):
        del point.y  # type: ignore[misc]
    with pytest.raises(AttributeError):
        point.colour = "red"  # type: ignore[attr-defined]
    assert (point.x, point.y) == (1, 2)


def test_equal_fields_of_one_class_are_equal_and_hash_alike() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2
    assert Point(1, 2) != Point(1, 2, "elsewhere")
    assert Point(1, 2) != Point(2, 1)


def test_another_class_with_the_same_fields_is_not_equal() -> None:
    assert Point(1, 2) != Labelled(1, 2)
    assert Point(1, 2) != (1, 2, "origin")
    assert Point(1, 2).__eq__((1, 2, "origin")) is NotImplemented


def test_a_record_holding_something_unhashable_refuses_to_hash() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(Point([1], 2))  # type: ignore[arg-type]


def test_the_repr_names_every_field_unless_the_class_writes_its_own() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='origin')"
    assert repr(Shown("secret")) == "Shown(<hidden>)"


def test_replace_copies_with_the_changes_and_leaves_the_original() -> None:
    point = Point(1, 2, "a")
    moved = point.moved(3)
    assert moved == Point(4, 2, "a")
    assert type(moved) is Point
    assert point == Point(1, 2, "a")
    assert replace(Point3(1, 2), z=9) == Point3(1, 2, "origin", 9)


def test_replace_refuses_an_unknown_field_and_a_value_that_is_not_a_record() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        replace(Point(1, 2), colour="red")
    with pytest.raises(TypeError, match=r"replace\(\) needs a record, not tuple"):
        replace((1, 2), x=3)
    assert is_record(Point(1, 2))
    assert not is_record((1, 2))


def test_a_subclass_has_its_bases_fields_first() -> None:
    assert fields(Point3) == ("x", "y", "label", "z")
    assert Point3(1, 2, z=3) == Point3(1, 2, "origin", 3)
    assert Point3(1, 2) != Point(1, 2)


def test_a_field_without_a_default_may_not_follow_one_with_a_default() -> None:
    with pytest.raises(TypeError, match="Broken: field 'b' without a default follows a field with one"):

        @record
        class Broken:
            a: int = 0
            b: int  # type: ignore[misc]


def test_records_copy_and_pickle_to_equal_records() -> None:
    point = Point(1, 2, "a")
    assert copy.copy(point) == point
    assert copy.deepcopy(point) == point
    assert pickle.loads(pickle.dumps(point)) == point  # noqa: S301 - our own bytes


def test_the_initializer_is_named_for_its_class() -> None:
    assert Point.__init__.__qualname__ == "Point.__init__"
    assert Point.__doc__ == "Two coordinates and a label."


@record
class Tagged:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


@record
class TaggedTwice(Tagged):
    note: str = ""


def test_a_default_factory_gives_each_record_its_own_value() -> None:
    first, second = Tagged("a"), Tagged("b")
    first.tags["k"] = "v"
    assert second.tags == {}
    assert Tagged("c", {"x": "y"}).tags == {"x": "y"}
    # (no shared value is left on the class, and a subclass makes its own too)
    assert not hasattr(Tagged, "tags")
    assert TaggedTwice("d").tags == {}
    assert TaggedTwice("d").tags is not TaggedTwice("e").tags
    assert fields(TaggedTwice) == ("name", "tags", "note")
