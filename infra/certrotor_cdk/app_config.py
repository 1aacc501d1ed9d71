"""Read the certrotor configuration from CDK context, before anything is built.

Two sources, in this order:
1. context key ``certrotor_config_file``: a path to a JSON file (relative
   paths are taken from the directory ``cdk`` runs in);
2. context key ``certrotor``: the configuration object itself (cdk.json),
   or the same object as a JSON string (``cdk synth -c certrotor='{...}'``).

Both go through ``certrotor.config.load_config``, so a bad value fails the
synth with a ConfigError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from certrotor.bounded_json import JsonRefused, parse_json
from certrotor.config import MAX_CONFIG_CHARS, MAX_CONFIG_DEPTH, CertrotorConfig, load_config
from certrotor.errors import ConfigError
from certrotor_cdk.constants import CONFIG_CONTEXT_KEY, CONFIG_FILE_CONTEXT_KEY

_TRUE_WORDS = {"1", "true", "yes", "on"}


def config_from_context(context: Mapping[str, Any], base_dir: Path | None = None) -> CertrotorConfig:
    """The validated configuration named by ``context``.

    ``context`` maps context keys to their values (what
    ``node.try_get_context`` returns). A config file, when named, wins
    over the inline object, so a deployment can point at its own file while
    cdk.json keeps the example.
    """
    config_file = context.get(CONFIG_FILE_CONTEXT_KEY)
    if config_file:
        return load_config(_read_config_file(Path(str(config_file)), base_dir or Path.cwd()))
    inline = context.get(CONFIG_CONTEXT_KEY)
    if inline is None:
        raise ConfigError(
            f"config: no configuration found; set context key {CONFIG_CONTEXT_KEY!r} "
            f"(an object in cdk.json) or {CONFIG_FILE_CONTEXT_KEY!r} (a JSON file path)"
        )
    if isinstance(inline, str):
        inline = _parse_json(inline, f"context {CONFIG_CONTEXT_KEY!r}")
    return load_config(inline)


_FALSE_WORDS = {"0", "false", "no", "off", ""}


def context_flag(value: Any, key: str = "context flag") -> bool:
    """A context value as a boolean: CLI context (-c key=true) arrives as
    text. Anything but a boolean or one of the words is refused, never read
    as false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise ConfigError(f"{key}: {value!r} is not true or false")


def _read_config_file(path: Path, base_dir: Path) -> Any:
    resolved = path if path.is_absolute() else base_dir / path
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{CONFIG_FILE_CONTEXT_KEY}: cannot read {str(resolved)!r} ({exc.strerror})") from None
    return _parse_json(text, str(resolved))


def _parse_json(text: str, where: str) -> Any:
    try:
        return parse_json(text, max_chars=MAX_CONFIG_CHARS, max_depth=MAX_CONFIG_DEPTH, what=where)
    except JsonRefused as exc:
        raise ConfigError(str(exc)) from None
