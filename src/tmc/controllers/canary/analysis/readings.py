"""What a provider returns (a reading: series with labels and values), and the HTTP transport both providers use.

aiohttp, like the rest of the project: the canary controller is async and runs many measurements at once. Every
way a request can go wrong (refused, reset, timed out, an error status, a body that is not what was expected) is a
ProviderError with a one-line message, which the analysis records as an Error measurement rather than a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CLUSTER_LABEL = "cluster"
_BODY_PREVIEW = 200


class ProviderError(Exception):
    """The metric backend gave no usable answer; the message says why in one line."""


@dataclass(frozen=True)
class Series:
    """One series: an instant value (a float, or any JSON value from the web provider) or, from a range
    query, the list of sample values in time order."""

    labels: Mapping[str, str]
    value: Any

    @property
    def cluster(self) -> str:
        return self.labels.get(CLUSTER_LABEL, "")


@dataclass(frozen=True)
class Reading:
    """All series one query returned. `scalar` for Prometheus' scalar result type (one unlabelled series)."""

    series: tuple[Series, ...] = ()
    scalar: bool = False
    query: str = ""

    @property
    def values(self) -> list[Any]:
        return [s.value for s in self.series]

    def by_cluster(self) -> dict[str, list[Any]]:
        """Values grouped by their `cluster` label ("" for series without one), in first-seen order."""
        groups: dict[str, list[Any]] = {}
        for s in self.series:
            groups.setdefault(s.cluster, []).append(s.value)
        return groups


def preview(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= _BODY_PREVIEW else text[:_BODY_PREVIEW] + "..."


@dataclass
class Transport:
    """One aiohttp session, made on first use inside the running event loop; `close()` when done."""

    session: aiohttp.ClientSession | None = None
    _owned: bool = field(default=False, init=False)

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession()
            self._owned = True
        return self.session

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str,
    ) -> tuple[int, bytes]:
        """The status and body; ProviderError (naming `what`) when no answer came within `timeout` seconds."""
        try:
            async with self._session().request(
                method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise ProviderError(f"{what} did not answer within {timeout:g}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ProviderError(f"{what} is unreachable: {reason}") from exc

    async def close(self) -> None:
        if self.session is not None and self._owned:
            await self.session.close()
            self.session = None
