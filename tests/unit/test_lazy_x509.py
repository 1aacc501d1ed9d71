"""certrotor.lazy_x509: cryptography.x509 imported without its name
parser's patterns compiled or email.utils imported, and names and email
addresses then parsed exactly as a plain import parses them.

The checks run in fresh interpreters: this one imported cryptography.x509
long ago."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest

from certrotor import lazy_x509
from certrotor.lazy_x509 import DeferredPattern, import_x509

RFC4514_NAMES = [
    "CN=web.svc.internal,O=certrotor",
    "CN=a\\,b,O=x+OU=y",
    "CN=\\#hash,OU=\\20lead",
    "1.2.3.4=#04024869,CN=x",
    "CN=Ærøskøbing ☃,O=Unicode",
    "CN=x=y",
    "CN",
    "=nothing",
    "CN=a,,O=b",
    "",
]
EMAIL_ADDRESSES = [
    "ops@example.com",
    "ops@xn--bcher-kva.example",
    "Ops Team <ops@example.com>",
    "not an address",
    "",
]

PROBE = """
import json, re, sys
compile_before = re.compile
if sys.argv[1] == "lazy":
    from certrotor.lazy_x509 import import_x509
    x509 = import_x509()
else:
    from cryptography import x509
from cryptography.x509.name import _RFC4514NameParser as parser
at_import = {
    "email_utils": "email.utils" in sys.modules,
    "pattern": type(parser._STRING_RE).__name__,
    "re_compile_restored": re.compile is compile_before,
}

def outcome(parse, text):
    try:
        return repr(parse(text))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

names = [outcome(lambda t: x509.Name.from_rfc4514_string(t).rfc4514_string(), t) for t in json.loads(sys.argv[2])]
emails = [outcome(lambda t: x509.RFC822Name(t).value, t) for t in json.loads(sys.argv[3])]
import email.utils
print(json.dumps({
    "at_import": at_import,
    "names": names,
    "emails": emails,
    "email_utils_after": sys.modules["email.utils"].__file__,
    "email_utils_attribute": email.utils.__file__,
}))
"""


def probe(mode: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode, json.dumps(RFC4514_NAMES), json.dumps(EMAIL_ADDRESSES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


@pytest.fixture(scope="module")
def lazy() -> dict[str, object]:
    return probe("lazy")


@pytest.fixture(scope="module")
def plain() -> dict[str, object]:
    return probe("plain")


def test_the_import_compiles_no_name_pattern_and_imports_no_email_utils(
    lazy: dict[str, object], plain: dict[str, object]
) -> None:
    # Given a fresh interpreter, when cryptography.x509 is imported through import_x509
    # Then the name parser's patterns wait, email.utils is not imported and re.compile is re.compile again
    assert lazy["at_import"] == {"email_utils": False, "pattern": "DeferredPattern", "re_compile_restored": True}
    # (a plain import does both)
    assert plain["at_import"] == {"email_utils": True, "pattern": "Pattern", "re_compile_restored": True}


def test_names_parse_exactly_as_after_a_plain_import(lazy: dict[str, object], plain: dict[str, object]) -> None:
    assert lazy["names"] == plain["names"]
    # (the table holds names that parse and names that are refused)
    names = lazy["names"]
    assert isinstance(names, list)
    assert "'CN=a\\\\,b,O=x+OU=y'" in names
    assert any(str(n).startswith("ValueError") for n in names)


def test_email_addresses_parse_exactly_as_after_a_plain_import_with_the_real_email_utils(
    lazy: dict[str, object], plain: dict[str, object]
) -> None:
    assert lazy["emails"] == plain["emails"]
    assert any(str(e).startswith("ValueError") for e in lazy["emails"])  # type: ignore[attr-defined]
    # After the first use, email.utils is the standard library's module, under both of its names
    assert str(lazy["email_utils_after"]).endswith("email/utils.py")
    assert lazy["email_utils_attribute"] == lazy["email_utils_after"]


def test_a_failed_import_restores_re_compile_and_leaves_no_stand_in() -> None:
    # Given a cryptography.x509 that cannot be imported
    code = """
import re, sys
compile_before = re.compile
sys.modules["cryptography.x509.verification"] = None
from certrotor.lazy_x509 import import_x509
try:
    import_x509()
except ImportError:
    pass
print(re.compile is compile_before, "email.utils" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    # Then the error surfaces, and re.compile and sys.modules are as they were
    assert result.stdout.split() == ["True", "False"], result.stderr


def test_once_x509_is_imported_it_changes_nothing() -> None:
    # Given this process, which imported cryptography.x509 already
    compile_before = re.compile
    email_utils_before = sys.modules.get("email.utils")
    from cryptography import x509

    # When import_x509 is called, it hands back that module and touches nothing
    assert import_x509() is x509
    assert re.compile is compile_before
    assert sys.modules.get("email.utils") is email_utils_before


def test_a_deferred_pattern_compiles_once_at_first_use() -> None:
    compiled: list[str] = []

    def counting(pattern: str, flags: int = 0) -> re.Pattern[str]:
        compiled.append(pattern)
        return re.compile(pattern, flags)

    pattern = DeferredPattern("a+", re.IGNORECASE, counting)
    assert not pattern.compiled
    assert repr(pattern) == "DeferredPattern('a+', compiled=False)"
    match = pattern.match("AAb")
    assert match is not None
    assert match.group() == "AA"
    assert pattern.sub("-", "aXa") == "-X-"
    assert compiled == ["a+"]
    assert pattern.compiled


def test_only_the_name_module_gets_deferred_patterns() -> None:
    deferring = lazy_x509._deferring_compile(re.compile)
    # Called from here, it compiles now
    assert isinstance(deferring("b+"), re.Pattern)
    # Called from the name module's code, it waits
    from_name_module = eval("compile('c+')", {"__name__": lazy_x509.NAME_MODULE, "compile": deferring})  # noqa: S307
    assert isinstance(from_name_module, DeferredPattern)


def test_the_email_utils_stand_in_hands_any_other_name_to_the_real_module() -> None:
    import email.utils

    stand_in = lazy_x509._email_utils_stand_in()
    assert isinstance(stand_in, types.ModuleType)
    assert stand_in.formatdate is email.utils.formatdate
    assert stand_in.parseaddr("Ops <ops@example.com>") == ("Ops", "ops@example.com")
    # The import system's probes get a plain module's answer, not the real module's
    assert not hasattr(stand_in, "__path__")
    with pytest.raises(AttributeError):
        stand_in.__wrapped__  # noqa: B018


@pytest.mark.parametrize("handler", ["rotate", "issuer", "monitor", "function_url"])
def test_a_lambda_handler_imports_x509_without_compiling_the_name_patterns(handler: str) -> None:
    # Given a fresh interpreter as Lambda's runtime starts one, when it imports a handler
    code = f"""
import sys
import certrotor.handlers.{handler}
from cryptography.x509.name import _RFC4514NameParser as parser
print(type(parser._STRING_RE).__name__)
"""
    environ = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=False, timeout=60
    )
    # Then the package was imported through import_x509
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DeferredPattern"]
