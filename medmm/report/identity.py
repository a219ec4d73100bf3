"""Who made an export, and the UIDs it gets.

Every exported DICOM object names medmm as the device and algorithm that made it. Its UIDs
are ``2.25.`` followed by the integer of a name-based UUID (version 5, RFC 4122; the 2.25
root for UUID-derived UIDs is PS3.5 §B.2), the name being the source series UID, the result's
content hash and the object kind. Exporting the same result twice gives the same UIDs; a
different result never reuses one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import weakref

from medmm import __version__
from medmm.types import AnalysisResult

__all__ = ["ALGORITHM_NAME", "MANUFACTURER", "derived_uid", "result_digest", "software_version"]

MANUFACTURER = "medmm developers"
_NAMESPACE = uuid.UUID("6f1c2a52-4d3e-5b7a-9c1d-2e8f0a6b4c3d")  # medmm's own namespace for export UIDs
ALGORITHM_NAME = "medmm lung nodule detection"


def software_version() -> str:
    """The medmm version, as DICOM SoftwareVersions and FHIR Device.version write it."""
    return __version__


_DIGESTS: dict[int, tuple[weakref.ref[AnalysisResult], str]] = {}


def result_digest(result: AnalysisResult) -> str:
    """sha256 of the result's JSON form (what the export says); computed once per result object."""
    key = id(result)
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0]() is result:
        return cached[1]
    digest = hashlib.sha256(json.dumps(result.to_dict(), sort_keys=True).encode()).hexdigest()
    _DIGESTS[key] = (weakref.ref(result, lambda _ref, k=key: _DIGESTS.pop(k, None)), digest)
    return digest


def derived_uid(result: AnalysisResult, *parts: str) -> str:
    """A UID that depends only on the result's content and ``parts`` (e.g. ``"seg", "series"``)."""
    name = "\x1f".join([result.series.series_uid, result_digest(result), *parts])
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"
