"""Random prediction sets and references for the evaluation tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medmm.evaluate import PredictionSet, ReferenceSet
from medmm.types import ReferenceNodule


@dataclass
class RandomCase:
    """A reference, marks and series list, also as plain tuples for the oracle."""

    marks: list[tuple[str, float, float, float, float]]
    included: list[tuple[str, float, float, float, float | None]]
    excluded: list[tuple[str, float, float, float, float | None]]
    series: list[str]

    def reference(self, complete: bool = False) -> ReferenceSet:
        inc = tuple(ReferenceNodule(u, (x, y, z), d) for u, x, y, z, d in self.included)
        exc = tuple(ReferenceNodule(u, (x, y, z), d) for u, x, y, z, d in self.excluded)
        return ReferenceSet(inc, exc, tuple(self.series) if complete else (), complete=complete)

    def predictions(self) -> PredictionSet:
        return PredictionSet.from_records(self.marks, "random")


def _near(rng: np.random.Generator, centre: tuple[float, float, float], radius: float) -> list[float]:
    """A point at a random distance in [0, 1.2 * radius) from centre (some inside, some not)."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return (np.asarray(centre) + direction * rng.uniform(0, 1.2) * radius).tolist()


def add_random_marks(
    rng: np.random.Generator,
    case: RandomCase,
    uid: str,
    n_random: int,
    score_step: float,
) -> None:
    """Marks on one scan: near its nodules and excluded findings, random ones, duplicates."""
    rows: list[tuple[str, float, float, float, float]] = []

    def score(low: float = 0.0) -> float:
        s = float(rng.uniform(low, 1.0))
        return round(s / score_step) * score_step if score_step else s

    for _, x, y, z, d in [f for f in case.included if f[0] == uid]:
        for _ in range(int(rng.integers(0, 4))):
            rows.append((uid, *_near(rng, (x, y, z), (d or 10.0) / 2), score(0.3)))
    for _, x, y, z, d in [f for f in case.excluded if f[0] == uid]:
        for _ in range(int(rng.integers(0, 3))):
            rows.append((uid, *_near(rng, (x, y, z), (d or 10.0) / 2), score()))
    for _ in range(n_random):
        rows.append((uid, *rng.uniform(-150, 150, 3).tolist(), score()))
    if rows and rng.random() < 0.5:  # exact duplicate rows
        for i in rng.integers(0, len(rows), size=int(rng.integers(1, 4))):
            rows.append(rows[int(i)])
    rng.shuffle(rows)  # type: ignore[arg-type]
    case.marks.extend(rows)


def random_case(seed: int, n_scans: int | None = None) -> RandomCase:
    """Scans with 0-4 nodules (some of unknown size), excluded findings (some on nodules),
    0-150 marks (so the 100 cap applies), tied scores, duplicates, empty scans, and marks
    on a series outside the list."""
    rng = np.random.default_rng(seed)
    n = int(n_scans or rng.integers(3, 25))
    case = RandomCase([], [], [], [f"1.2.{seed}.{i}" for i in range(n)])
    for uid in case.series:
        for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3, 4]))):
            c = rng.uniform(-120, 120, 3).tolist()
            d = None if rng.random() < 0.05 else float(rng.uniform(3, 32))
            case.included.append((uid, *c, d))
            if rng.random() < 0.1:  # a touching nodule: one mark can hit both
                case.included.append(
                    (uid, *(np.asarray(c) + rng.uniform(-3, 3, 3)).tolist(), float(rng.uniform(6, 12)))
                )
            if rng.random() < 0.3:  # a reader's own mark of the same nodule, as LUNA16's excluded file has
                case.excluded.append((uid, *(np.asarray(c) + rng.normal(0, 0.5, 3)).tolist(), (d or 10) * 1.05))
        for _ in range(int(rng.integers(0, 4))):
            d = None if rng.random() < 0.5 else float(rng.uniform(2, 15))
            case.excluded.append((uid, *rng.uniform(-120, 120, 3).tolist(), d))
    step = float(rng.choice([0.0, 0.05, 0.25]))  # 0: continuous scores; else many ties
    for uid in case.series:
        if rng.random() < 0.15:
            continue  # a scan without any mark
        n_random = int(rng.choice([0, 1, 3, 10, 40, 140]))
        add_random_marks(rng, case, uid, n_random, step)
    case.marks.append(("9.9.9.unlisted", 0.0, 0.0, 0.0, 0.99))
    return case
