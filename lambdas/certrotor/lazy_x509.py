"""Import cryptography.x509 without paying, at each process start, for the
parts of it certrotor never calls.

Loading a certificate imports the whole cryptography.x509 package, and the
package sets up at import two things certrotor does not use:

- cryptography.x509.name compiles the patterns of its RFC 4514 name parser,
  one of them a character class spanning all of Unicode (about 9 ms in
  CPython's re); they serve `Name.from_rfc4514_string` only;
- cryptography.x509.general_name imports email.utils (and with it socket,
  random, calendar, locale, base64 and quopri: about 6 ms) for the
  `parseaddr` that `RFC822Name` calls when one is built.

Together that is about a fifth of a `certrotor-fetch --from-env` start, and
the patterns a few percent of a Lambda cold start (botocore imports
email.utils there anyway). `import_x509` imports the package with those
patterns compiled at their first use and email.utils imported at
parseaddr's first call; after that both behave exactly as they would have
(tests/unit/test_lazy_x509.py compares them). The container client's
console script (client/start.py) and the Lambda handlers' package
(handlers/__init__.py) call it before anything imports the package.

It changes nothing else: re.compile is wrapped only while the package
imports and only for the name module's calls, email.utils stands in
sys.modules only while the package imports (any name but parseaddr asked of
it then loads the real module), and once cryptography.x509 is imported it
does nothing at all.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from typing import Any

NAME_MODULE = "cryptography.x509.name"
EMAIL_UTILS = "email.utils"


class DeferredPattern:
    """A regular expression compiled at its first use, then that pattern."""

    __slots__ = ("_compile_now", "_compiled", "_flags", "_pattern")

    def __init__(self, pattern: str, flags: int, compile_now: Callable[..., re.Pattern[str]]) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None
        self._compile_now = compile_now

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def pattern_object(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = self._compile_now(self._pattern, self._flags)
        return self._compiled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern_object(), name)

    def __repr__(self) -> str:
        return f"DeferredPattern({self._pattern!r}, compiled={self.compiled})"


def _deferring_compile(real: Callable[..., re.Pattern[str]]) -> Callable[..., Any]:
    def compile(pattern: str, flags: int = 0) -> Any:  # stands in for re.compile
        if sys._getframe(1).f_globals.get("__name__") == NAME_MODULE:
            return DeferredPattern(pattern, flags, real)
        return real(pattern, flags)

    return compile


def _email_utils_stand_in() -> types.ModuleType:
    stand_in = types.ModuleType(EMAIL_UTILS, "email.utils, imported when first used")

    def real_module() -> types.ModuleType:
        if sys.modules.get(EMAIL_UTILS) is stand_in:
            del sys.modules[EMAIL_UTILS]
        __import__(EMAIL_UTILS)
        return sys.modules[EMAIL_UTILS]

    def parseaddr(*args: Any, **kwargs: Any) -> Any:
        return real_module().parseaddr(*args, **kwargs)

    def __getattr__(name: str) -> Any:  # a module's __getattr__ (PEP 562)
        if name.startswith("__"):  # the import system's probes (__path__, ...): a plain module's answer
            raise AttributeError(name)
        return getattr(real_module(), name)

    stand_in.parseaddr = parseaddr  # type: ignore[attr-defined]
    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    return stand_in


def import_x509() -> types.ModuleType:
    """cryptography.x509, imported without its name parser's patterns and
    email.utils if it is not imported yet (see the module docstring)."""
    if "cryptography.x509" not in sys.modules:
        real_compile = re.compile
        stand_in = None if EMAIL_UTILS in sys.modules else _email_utils_stand_in()
        re.compile = _deferring_compile(real_compile)
        if stand_in is not None:
            sys.modules[EMAIL_UTILS] = stand_in
        try:
            __import__("cryptography.x509")
        finally:
            re.compile = real_compile
            if stand_in is not None and sys.modules.get(EMAIL_UTILS) is stand_in:
                del sys.modules[EMAIL_UTILS]
    return sys.modules["cryptography.x509"]
