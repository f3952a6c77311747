"""The client layer for synchronous callers (`tmc up`, the CLI, test harnesses): the same `KubeClient`, run on a
private event loop, so there is one HTTP implementation.

A BlockingClient belongs to one thread and must not be used from inside a running event loop (async code uses
`KubeClient` directly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from tmc.client.kubeconfig import Kubeconfig, load_kubeconfig
from tmc.client.rest import MERGE_PATCH, KubeClient, RequestObserver

T = TypeVar("T")


class BlockingClient:
    """Blocking versions of KubeClient's verbs; `run` runs any other coroutine (a typed helper, say) on the
    client's loop. Use it as a context manager, or call `close`."""

    def __init__(
        self,
        config: Kubeconfig,
        *,
        base_url: str | None = None,
        connections: int = 4,
        timeout: float = 15.0,
        observe: RequestObserver | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self.client = KubeClient(config, base_url=base_url, connections=connections, timeout=timeout, observe=observe)

    @classmethod
    def from_kubeconfig(
        cls, path: str, context: str | None = None, *, origin: bool = False, timeout: float = 15.0
    ) -> BlockingClient:
        """A client for the kubeconfig's context; `origin`: at the server's scheme, host and port, without the
        path the server URL may carry (to address workspaces with `/clusters/<path>` paths)."""
        config = load_kubeconfig(path, context)
        return cls(config, base_url=config.base_url if origin else None, timeout=timeout)

    @property
    def config(self) -> Kubeconfig:
        return self.client.config

    @property
    def base_url(self) -> str:
        return self.client.base_url

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(call)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.run(self.client.request(method, path, body, **kwargs))

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.run(self.client.get(path, params))

    def create(self, path: str, obj: Any) -> Any:
        return self.run(self.client.create(path, obj))

    def replace(self, path: str, obj: Any) -> Any:
        return self.run(self.client.replace(path, obj))

    def patch(self, path: str, patch: Any, content_type: str = MERGE_PATCH) -> Any:
        return self.run(self.client.patch(path, patch, content_type))

    def delete(self, path: str, options: Mapping[str, Any] | None = None) -> Any:
        return self.run(self.client.delete(path, options))

    def list_all(self, path: str, params: Mapping[str, str] | None = None) -> tuple[list[Any], str]:
        return self.run(self.client.list_all(path, params))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.run(self.client.close())
        self._loop.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
