"""Reading a TOML file into a frozen pydantic model, refusing a bad file with file, key and reason.

Every configuration file of the probe (``probe.toml``, ``config/platforms/*.toml``) goes through
``load_toml``. A problem becomes a ``ConfigError`` whose message names the file, the key (a dotted
path such as ``endpoints[1].url``) and the reason, one line per problem.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(Exception):
    """A configuration file (or value) was refused; the message names file, key and reason."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("a ConfigError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str | Path, key: str, reason: str) -> ConfigError:
        """An error with one problem."""
        return cls([Problem(str(file), key, reason)])

    @property
    def file(self) -> str:
        """The file of the first problem."""
        return self.problems[0].file

    @property
    def key(self) -> str:
        """The key of the first problem."""
        return self.problems[0].key

    @property
    def reason(self) -> str:
        """The reason of the first problem."""
        return self.problems[0].reason


class KeyedValueError(ValueError):
    """Raised by a validator to blame a key below the field it validates (``endpoints[1].url``)."""

    def __init__(self, subkey: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.subkey = subkey
        self.reason = reason


def format_key(loc: tuple[str | int, ...]) -> str:
    """``("endpoints", 1, "url")`` -> ``endpoints[1].url``; the empty path is ``(file)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(file)"


def problems_of(error: ValidationError, file: str | Path) -> list[Problem]:
    """The problems a pydantic ``ValidationError`` describes, keyed by dotted path."""
    problems = []
    for detail in error.errors():
        loc = tuple(detail["loc"])
        reason = detail["msg"]
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, KeyedValueError):
            loc = (*loc, *cause.subkey)
            reason = cause.reason
        elif detail["type"] == "extra_forbidden":
            reason = "unknown key"
        elif reason.startswith("Value error, "):
            reason = reason.removeprefix("Value error, ")
        problems.append(Problem(str(file), format_key(loc), reason))
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed table of a TOML file, or a ``ConfigError`` for a missing or malformed one."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError.single(path, "(file)", "no such file") from None
    except OSError as exc:
        raise ConfigError.single(path, "(file)", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.single(path, "(file)", f"not valid TOML: {exc}") from None


def validate(
    model: type[ModelT], data: Mapping[str, Any], file: str | Path, **context: Any
) -> ModelT:
    """``data`` as a ``model``, or a ``ConfigError`` naming ``file``, the key and the reason."""
    try:
        return model.model_validate(data, context=context or None)
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, file)) from None


def load_toml(model: type[ModelT], path: Path, **context: Any) -> ModelT:
    """Read the TOML file at ``path`` into ``model``."""
    return validate(model, read_toml(path), path, **context)
