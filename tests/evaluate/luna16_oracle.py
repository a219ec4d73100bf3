"""An independent, deliberately plain reimplementation of the LUNA16 evaluation rules.

Written from the published description (Setio et al., Med. Image Anal. 42:1-13, 2017,
section 2.3, and the behaviour of the challenge's evaluation script), not from medmm's
code: plain Python loops, brute-force matching with ``math.dist``, and the FROC built
and read in exact rational arithmetic (``fractions.Fraction``). It is slow and simple
on purpose; the tests compare medmm against it.

Rules:
* per scan, if there are more than ``cap`` marks, keep those scoring strictly above the
  (cap + 1)-th highest score;
* a mark hits a finding when its distance to the centre is below half the diameter
  (10 mm diameter when unknown);
* an included nodule is detected when a kept mark hits it, at the highest such score;
* a kept mark hitting no included nodule is ignored if it hits an excluded finding,
  else it is a false positive;
* FROC points: (0, 0), then at each distinct score from high to low
  (#FP scoring >= t / #scans, #detected nodules scoring >= t / #nodules);
* sensitivity at rate r: last point with x <= r, linearly towards the next point; the
  last point's value beyond the end; CPM = mean over 1/8, 1/4, 1/2, 1, 2, 4, 8.
"""

from __future__ import annotations

import math
from fractions import Fraction

RATES = (Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(2), Fraction(4), Fraction(8))

Mark = tuple[str, float, float, float, float]  # uid, x, y, z, score
Finding = tuple[str, float, float, float, "float | None"]  # uid, x, y, z, diameter (None: unknown)


def _radius(diameter: float | None) -> float:
    return (10.0 if diameter is None else diameter) / 2.0


def scan_entries(
    marks: list[Mark], included: list[Finding], excluded: list[Finding], cap: int | None = 100
) -> tuple[list[tuple[float, bool]], int]:
    """The scored entries (score, is_nodule) of ONE scan and its number of included nodules."""
    if cap is not None and len(marks) > cap:
        ranked = sorted((m[4] for m in marks), reverse=True)
        cut = ranked[cap]
        marks = [m for m in marks if m[4] > cut]
    entries: list[tuple[float, bool]] = []
    on_nodule = [False] * len(marks)
    for nod in included:
        best = None
        for i, m in enumerate(marks):
            if math.dist(m[1:4], nod[1:4]) < _radius(nod[4]):
                on_nodule[i] = True
                best = m[4] if best is None else max(best, m[4])
        if best is not None:
            entries.append((best, True))
    for i, m in enumerate(marks):
        if on_nodule[i]:
            continue
        if any(math.dist(m[1:4], e[1:4]) < _radius(e[4]) for e in excluded):
            continue
        entries.append((m[4], False))
    return entries, len(included)


def curve(entries: list[tuple[float, bool]], n_scans: int, n_nodules: int) -> list[tuple[Fraction, Fraction]]:
    """FROC points in exact arithmetic."""
    by_score: dict[float, list[int]] = {}
    for score, is_nodule in entries:
        slot = by_score.setdefault(score, [0, 0])
        slot[0 if is_nodule else 1] += 1
    points = [(Fraction(0), Fraction(0))]
    tp = fp = 0
    for score in sorted(by_score, reverse=True):
        tp += by_score[score][0]
        fp += by_score[score][1]
        points.append((Fraction(fp, n_scans), Fraction(tp, n_nodules)))
    return points


def read_at(points: list[tuple[Fraction, Fraction]], rate: Fraction) -> Fraction:
    """Linear interpolation; at an exact x shared by several points, the last of them."""
    last = max(i for i, (x, _) in enumerate(points) if x <= rate)
    if last == len(points) - 1:
        return points[-1][1]
    (x0, y0), (x1, y1) = points[last], points[last + 1]
    return y0 + (rate - x0) * (y1 - y0) / (x1 - x0)


def froc(
    marks: list[Mark],
    included: list[Finding],
    excluded: list[Finding],
    series: list[str],
    cap: int | None = 100,
) -> tuple[list[float], float]:
    """Sensitivities at the seven LUNA16 rates and the CPM, over the listed scans."""
    entries: list[tuple[float, bool]] = []
    n_nodules = 0
    for uid in series:
        e, k = scan_entries(
            [m for m in marks if m[0] == uid],
            [n for n in included if n[0] == uid],
            [x for x in excluded if x[0] == uid],
            cap,
        )
        entries += e
        n_nodules += k
    points = curve(entries, len(series), n_nodules)
    sens = [read_at(points, r) for r in RATES]
    return [float(s) for s in sens], float(sum(sens) / len(sens))


def per_scan(
    marks: list[Mark], included: list[Finding], excluded: list[Finding], series: list[str], cap: int | None = 100
) -> dict[str, tuple[list[tuple[float, bool]], int]]:
    """Entries and nodule count of every scan (for a bootstrap built scan by scan)."""
    return {
        uid: scan_entries(
            [m for m in marks if m[0] == uid],
            [n for n in included if n[0] == uid],
            [x for x in excluded if x[0] == uid],
            cap,
        )
        for uid in series
    }


def cpm_of_scans(scans: list[tuple[list[tuple[float, bool]], int]]) -> Fraction | None:
    """CPM of a pooled list of scans (a scan may appear several times); None without nodules."""
    entries = [e for s in scans for e in s[0]]
    n_nodules = sum(s[1] for s in scans)
    if n_nodules == 0:
        return None
    points = curve(entries, len(scans), n_nodules)
    return sum((read_at(points, r) for r in RATES), Fraction(0)) / len(RATES)
