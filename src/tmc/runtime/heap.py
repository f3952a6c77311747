"""The cyclic garbage collector set for a long-running process whose heap is mostly caches of API objects.

Every request and watch event allocates thousands of short-lived dicts; at the default threshold (700) the young
collections, and the full ones they escalate to, ran so often that a simulated cluster holding 1,000 Deployments
spent about a tenth of its CPU collecting, and a syncer about a twentieth. Stored objects are trees without
cycles, freed by reference counting, so collecting less often costs little memory.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Keep what is loaded so far (modules, the caches filled at start) out of the collector's full passes, which
    otherwise walk every cached object and stall the event loop for tens of milliseconds, and collect young objects
    less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
