"""Frozen records: what `@dataclass(frozen=True)` gives certrotor's value
types, without importing dataclasses.

A container pays for every import at each start. `dataclasses` imports
`inspect` (and with it ast, dis and tokenize) and compiles six methods per
class: about 14 ms for the 14 value types an env-mode `certrotor-fetch`
start builds, a fifth of what remains of that start. A record reads its fields from the class's
annotations instead and shares one set of methods:

- fields in annotation order (a base record's first), positional or by
  keyword; a default is the value the class body gives the name (shared by
  every instance, so immutable), or `field(default_factory=f)` for a new
  `f()` each time;
- no field can be assigned or deleted (FrozenInstanceError);
- equal only to a record of the same class with equal fields, hashed over
  the fields, shown as `Name(field=value, ...)`;
- `replace(record, **changes)` returns a copy with fields changed.

Types the container start does not build stay dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")
V = TypeVar("V")

_FIELDS = "__record_fields__"
_DEFAULTS = "__record_defaults__"


class FrozenInstanceError(AttributeError):
    """A record's fields cannot be assigned or deleted."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], V]) -> V:
    """A field whose default is a new `default_factory()` for each record."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _fields_of(cls: type) -> tuple[str, ...]:
    inherited = [name for base in reversed(cls.__mro__[1:]) for name in getattr(base, _FIELDS, ())]
    own = [
        name
        # Not inspect.get_annotations: importing inspect is what records avoid.
        for name, annotation in cls.__dict__.get("__annotations__", {}).items()  # noqa: RUF063
        if not _is_classvar(annotation)
    ]
    return tuple(dict.fromkeys([*inherited, *own]))


def _defaults_of(cls: type, names: tuple[str, ...]) -> dict[str, object]:
    inherited: dict[str, object] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited |= getattr(base, _DEFAULTS, {})
    defaults: dict[str, object] = {}
    for name in names:
        if name in cls.__dict__:
            defaults[name] = cls.__dict__[name]
        elif name in inherited:
            defaults[name] = inherited[name]
        elif defaults:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows a field with one")
    return defaults


def _initializer(cls: type, names: tuple[str, ...], defaults: dict[str, object]) -> Callable[..., None]:
    known = frozenset(names)
    title = f"{cls.__qualname__}()"

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(f"{title} takes {len(names)} positional arguments but {len(args)} were given")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in known:
                raise TypeError(f"{title} got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{title} got multiple values for argument {name!r}")
            values[name] = value
        missing = [name for name in names if name not in values and name not in defaults]
        if missing:
            raise TypeError(f"{title} missing required argument(s): {', '.join(map(repr, missing))}")
        for name in names:
            if name in values:
                value = values[name]
            else:
                default = defaults[name]
                value = default.make() if isinstance(default, _Factory) else default
            object.__setattr__(self, name, value)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _values(self: object) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in getattr(type(self), _FIELDS))


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: object) -> int:
    return hash(_values(self))


def _repr(self: object) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(type(self), _FIELDS))
    return f"{type(self).__qualname__}({shown})"


def _refuse_set(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """Make `cls` a frozen record of its annotated fields."""
    names = _fields_of(cls)
    defaults = _defaults_of(cls, names)
    setattr(cls, _FIELDS, names)
    setattr(cls, _DEFAULTS, defaults)
    for name, default in defaults.items():
        if isinstance(default, _Factory) and name in cls.__dict__:
            delattr(cls, name)  # as dataclasses do: no shared value on the class
    always: dict[str, Any] = {
        "__init__": _initializer(cls, names, defaults),
        "__setattr__": _refuse_set,
        "__delattr__": _refuse_delete,
        "__match_args__": names,
    }
    # As dataclasses do: methods the class body defines are its own.
    unless_defined: dict[str, Any] = {"__eq__": _eq, "__hash__": _hash, "__repr__": _repr}
    for attribute, method in always.items():
        setattr(cls, attribute, method)
    for attribute, method in unless_defined.items():
        if attribute not in cls.__dict__:
            setattr(cls, attribute, method)
    return cls


def is_record(value: object) -> bool:
    return hasattr(type(value), _FIELDS)


def fields(value: object) -> tuple[str, ...]:
    """The field names of a record (or record class), in order."""
    names: tuple[str, ...] = getattr(value if isinstance(value, type) else type(value), _FIELDS)
    return names


def replace(value: T, **changes: Any) -> T:
    """A copy of the record `value` with `changes` made; an unknown field is a TypeError."""
    if not is_record(value):
        raise TypeError(f"replace() needs a record, not {type(value).__name__}")
    current = {name: getattr(value, name) for name in fields(value)}
    return type(value)(**(current | changes))
