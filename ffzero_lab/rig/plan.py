"""The measurement plan of one ``propagate`` call: in which order the S x B evaluations are made.

Heaters are slow (they must settle after every change), so each phase setting is written once and
held while the whole input batch is swept through the input modulators, the meters reading every
port per input: S phase settles per call. A DD step of 2K settings therefore settles the mesh
heaters 2K times, and the optimiser's write-back of the new parameters once more: 2K + 1 per step.

The inputs are swept forwards under even settings and backwards under odd ones (a serpentine), so
the input a setting starts with is the one the previous setting ended with and its modulators
need no write: S B - (S - 1) input writes instead of S B.
"""

from __future__ import annotations

from collections.abc import Iterator


def plan(settings: int, inputs: int) -> Iterator[tuple[int, int]]:
    """``(setting, input)`` pairs in measurement order: setting-major, inputs in a serpentine."""
    for s in range(settings):
        order = range(inputs) if s % 2 == 0 else range(inputs - 1, -1, -1)
        for b in order:
            yield s, b
