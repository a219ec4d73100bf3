"""``result.json``: the analysis result as JSON, validated against a versioned JSON Schema.

The schema (``result.schema.json``, JSON Schema 2020-12) ships in the package;
:data:`~medmm.types.RESULT_SCHEMA_VERSION` is written into every result as
``schema_version``. :func:`validate_result` checks a dictionary with ``jsonschema``.

Example:
    >>> write_result_json(result, out / "result.json")             # doctest: +SKIP
    >>> validate_result(json.loads((out / "result.json").read_text()))   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from medmm.errors import ExportError
from medmm.io.atomic import atomic_path
from medmm.types import AnalysisResult

__all__ = ["load_result", "result_schema", "validate_result", "write_result_json"]


@functools.cache
def result_schema() -> dict[str, Any]:
    """The JSON Schema of ``result.json``."""
    text = resources.files("medmm.report").joinpath("result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_result(data: dict[str, Any]) -> None:
    """Check a result dictionary against the schema.

    Raises:
        ExportError: It does not validate (the message names the first failing field).
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(result_schema())
    plain = json.loads(json.dumps(data))  # tuples -> arrays, as a reader of the file sees them
    errors = sorted(validator.iter_errors(plain), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ExportError(
            f"result does not match the result.json schema at {where}: {first.message} ({len(errors)} problem(s))",
            hint="This is a bug in medmm if medmm wrote the result; please report it.",
        )


def write_result_json(result: AnalysisResult, path: Path) -> Path:
    """Validate and write ``result.json`` atomically.

    Raises:
        ExportError: The result does not validate.
    """
    data = result.to_dict()
    validate_result(data)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def load_result(path: str | Path) -> AnalysisResult:
    """Read a ``result.json`` back (validated) as an :class:`~medmm.types.AnalysisResult`.

    Raises:
        ExportError: Missing, not JSON, not valid against the schema, or another major version.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"cannot read result: {exc}", path=path, hint="Give a result.json written by `medmm analyze`."
        ) from exc
    if not isinstance(data, dict):
        raise ExportError("not a medmm result (top level is not an object)", path=path)
    try:
        validate_result(data)
        return AnalysisResult.from_dict(data)
    except ExportError as exc:
        raise ExportError(exc.message, path=path, hint=exc.hint) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(str(exc), path=path, hint="Re-run `medmm analyze` with this medmm version.") from exc
