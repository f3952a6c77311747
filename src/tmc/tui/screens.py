"""The dashboard's pushed screens: a yes/no confirmation, the key help, and one cluster's detail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from tmc.cli import resources as r
from tmc.tui import views
from tmc.tui.table import VirtualTable

if TYPE_CHECKING:
    from tmc.tui.model import Model

KEYS = """[b]Screens[/b]
  1 Overview    2 Clusters    3 Placements    4 Workloads    5 Events    6 Debug
[b]Tables[/b]
  ↑/↓ j/k move   PgUp/PgDn page   Home/End   ←/→ scroll columns
  Enter open (a cluster's detail; a Placement's candidates)   d debug the selected object
  /  filter: words, or key:value tags (Clusters region: zone: ready: health:;
     Workloads ns: kind: state: cluster:; Events type: reason: object: ns:)   Esc clear the filter
[b]Actions[/b] (asked to confirm; the same calls as the CLI)
  Clusters:  c cordon   u uncordon   p pause sync   r resume sync
  Workloads: p pause sync   r resume sync   f force a re-sync
[b]Anywhere[/b]
  ? this help   q quit"""


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 70; max-width: 95%; height: auto; border: thick $warning; padding: 1 2;
                         background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(escape(self.question))
            yield Static("\n[b]y[/b] yes    [b]n[/b] / Esc no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Help(ModalScreen[None]):
    DEFAULT_CSS = """
    Help { align: center middle; }
    Help > Vertical { width: 90; max-width: 98%; height: auto; max-height: 98%; border: thick $primary;
                      padding: 0 1; background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(KEYS)

    def action_close(self) -> None:
        self.dismiss(None)


class ClusterScreen(Screen[None]):
    """One SyncTarget: conditions, syncer health, resources, and the workloads placed on it (live)."""

    DEFAULT_CSS = """
    ClusterScreen #cluster-detail { height: auto; max-height: 60%; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "debug", "Debug"),
        Binding("question_mark", "app.help", "Keys"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, model: Model, name: str) -> None:
        super().__init__()
        self.model = model
        self.cluster = name
        self._revision = (-1, -1)
        self._detail = ""

    def compose(self) -> ComposeResult:
        yield Static(id="cluster-detail")
        yield VirtualTable(
            views.CLUSTER_WORKLOAD_COLUMNS,
            key=lambda x: views.object_key(x[0]),
            tags=lambda x: {"state": frozenset({x[1]}), "ns": frozenset({str(r.meta(x[0]).get("namespace") or "")})},
            empty="no workloads placed on this cluster",
            id="cluster-workloads",
        )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.update_view()
        self.query_one(VirtualTable).focus()

    def target(self) -> dict[str, Any] | None:
        return self.model.targets.objects.get(("SyncTarget", "", self.cluster))

    def update_view(self) -> None:
        st = self.target()
        detail = self.query_one("#cluster-detail", Static)
        if st is None:
            self._detail = f"SyncTarget {escape(self.cluster)} is gone"
            detail.update(self._detail)
            return
        placed = views.placed(self.model)
        text = views.cluster_detail(self.model, st, placed)
        if text != self._detail:  # an update costs a layout pass of the screen
            self._detail = text
            detail.update(text)
        revision = (self.model.targets.revision, self.model.workloads.revision)
        table = self.query_one(VirtualTable)
        if revision != self._revision:
            self._revision = revision
            table.set_items(views.cluster_workload_rows(self.model, st))
        else:
            table.refresh_changed()  # ages

    def action_debug(self) -> None:
        item = self.query_one(VirtualTable).selected
        self.app.pop_screen()
        if item is not None:
            self.app.call_later(self.app.debug_object, item[0])  # type: ignore[attr-defined]
