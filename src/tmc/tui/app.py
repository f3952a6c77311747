"""The dashboard app: six screens in a content switcher, `/` filtering, confirmed actions, a banner while the hub
does not answer.

The feed marks the model dirty on every watch event; a 4 Hz tick redraws the visible screen only when something
changed (and once a second for ages), so a burst of a thousand events costs one row rebuild, and key presses are
answered between ticks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import ContentSwitcher, Footer, Input, Sparkline, Static

from tmc.tui import views
from tmc.tui.actions import Action, Actions, failure, simulate
from tmc.tui.model import Model, object_key
from tmc.tui.screens import ClusterScreen, Confirm, Help
from tmc.tui.table import VirtualTable

SCREENS = ("overview", "clusters", "placements", "workloads", "events", "debug")
TITLES = dict(zip(SCREENS, ("Overview", "Clusters", "Placements", "Workloads", "Events", "Debug"), strict=True))
CLUSTER_ACTIONS = ("cordon", "uncordon", "pause", "resume")
WORKLOAD_ACTIONS = ("pause", "resume", "force")
DEFAULT_TRACE_URL = "http://localhost:16686"  # Jaeger's UI; --trace-url for another viewer


class Dashboard(App[None]):
    TITLE = "TMC dashboard"
    AUTO_FOCUS = None  # the tables take focus when shown; the hidden filter box never does
    ENABLE_COMMAND_PALETTE = False  # its footer entry would push the keys off an 80-column screen
    CSS = """
    #title { height: 1; background: $primary; color: $text; padding: 0 1; }
    #banner { height: auto; background: $error; color: $text; padding: 0 1; display: none; }
    #banner.down { display: block; }
    #filter { dock: bottom; display: none; height: 3; }
    #filter.open { display: block; }
    #overview { padding: 0 1; }
    #overview Sparkline { height: 3; }
    #candidates { height: auto; max-height: 45%; padding: 0 1; border-top: solid $primary; }
    #debug { padding: 0 1; }
    """
    # Context keys first: on an 80-column footer they stay visible; the screen keys are also in the title line.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "act('cordon')", "Cordon"),
        Binding("u", "act('uncordon')", "Uncordon"),
        Binding("p", "act('pause')", "Pause"),
        Binding("r", "act('resume')", "Resume"),
        Binding("f", "act('force')", "Force"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("1", "show('overview')", "Overview"),
        Binding("2", "show('clusters')", "Clusters"),
        Binding("3", "show('placements')", "Placements"),
        Binding("4", "show('workloads')", "Workloads"),
        Binding("5", "show('events')", "Events"),
        Binding("6", "show('debug')", "Debug"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("d", "debug_selected", "Debug", show=False),
    ]

    def __init__(
        self,
        model: Model,
        *,
        actions: Actions | None = None,
        start_feed: Callable[[Dashboard], Any] | None = None,
        trace_url: str = DEFAULT_TRACE_URL,
        tick: float = 0.25,
    ) -> None:
        super().__init__()
        self.model = model
        self.cli_actions = actions
        self.start_feed = start_feed
        self.trace_url = trace_url
        self.tick_seconds = tick
        self.dirty = True
        self.current = "overview"
        self.filters: dict[str, str] = {}
        self.debug_ref: tuple[str, tuple[str, str, str]] | None = None
        self.candidates: dict[str, Any] | None = None
        self.candidates_error = ""
        self._revisions: dict[str, Any] = {}
        self._last_full = 0.0
        self.feed: Any = None
        self._placed = views.PlacedNow(views.Placed(Counter(), {}))
        self._matrix_targets: list[str] | None = None
        self._texts: dict[str, str] = {}  # widget id -> the text last given to it

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="banner")
        with ContentSwitcher(initial="overview", id="views"):
            with VerticalScroll(id="overview"):
                yield Static(id="overview-text")
                yield Static(id="latency-label")
                yield Sparkline([], id="latency")
                yield Static(id="errors-label")
                yield Sparkline([], id="errors")
            yield VirtualTable(
                views.cluster_columns(self.model, self._placed),
                key=object_key,
                tags=views.cluster_tags,
                empty="no SyncTargets in this workspace",
                id="clusters",
            )
            with Vertical(id="placements"):
                yield VirtualTable(
                    views.PLACEMENT_COLUMNS, key=views.placement_key, empty="no Placements", id="placement-table"
                )
                yield Static(id="candidates")
            yield VirtualTable(
                [],
                key=lambda w: object_key(w.obj),
                search=views.workload_search,
                tags=views.workload_tags,
                empty="no placed workloads",
                id="workloads",
            )
            yield VirtualTable(
                views.event_columns(self.model),
                key=lambda e: str((e.get("metadata") or {}).get("uid") or id(e)),
                tags=views.event_tags,
                empty="no Events",
                id="events",
            )
            with VerticalScroll(id="debug"):
                yield Static(id="debug-text")
        box = Input(placeholder="filter: words or key:value (Enter keeps it, Esc clears)", id="filter")
        box.can_focus = False  # until `/` opens it
        yield box
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.set_interval(self.tick_seconds, self.tick)
        if self.start_feed is not None:
            self.feed = await self.start_feed(self)
        self.redraw(force=True)
        self.refresh_bindings()

    def changed(self) -> None:
        """Called by the feed on every change; the next tick redraws."""
        self.dirty = True

    def tick(self) -> None:
        now = time.monotonic()
        if self.dirty or now - self._last_full >= 1.0:
            try:
                self.redraw(force=False)
            except NoMatches:
                return  # a last tick while the app closes and its widgets are gone

    # ---------------------------------------------------------------- drawing

    def table(self, view: str | None = None) -> VirtualTable | None:
        view = view or self.current
        target = {"placements": "#placement-table"}.get(view, f"#{view}")
        if view in ("overview", "debug"):
            return None
        return self.query_one(target, VirtualTable)

    def redraw(self, force: bool) -> None:
        self.dirty = False
        self._last_full = time.monotonic()
        m = self.model
        tabs = " ".join(
            f"[reverse] {n} {TITLES[v]} [/reverse]" if v == self.current else f" {n} {TITLES[v]} "
            for n, v in enumerate(SCREENS, 1)
        )
        title = f"{tabs} {escape(m.workspace)}"
        if self.filters.get(self.current):
            title += f" · filter: {escape(self.filters[self.current])}"
        # Static.update costs a layout pass of the whole screen: only when the text changed.
        if title != self._texts.get("title"):
            self._texts["title"] = title
            self.query_one("#title", Static).update(title, layout=False)  # always one line
        banner = self.query_one("#banner", Static)
        banner.set_class(m.unreachable, "down")
        if m.unreachable:
            reason = m.health.error or m.last_error or "a watch lost its connection"
            self._update_text(banner, escape(f"hub unreachable, reconnecting… ({reason[:150]})"))
        if isinstance(self.screen, ClusterScreen):
            self.screen.update_view()
            return
        getattr(self, f"_draw_{self.current}")(force)

    def _update_text(self, widget: Static, text: str) -> None:
        if text != self._texts.get(str(widget.id)):
            self._texts[str(widget.id)] = text
            widget.update(text)

    def _changed(self, view: str, revision: Any, force: bool) -> bool:
        if force or self._revisions.get(view) != revision:
            self._revisions[view] = revision
            return True
        return False

    def _draw_overview(self, force: bool) -> None:
        m = self.model
        self._update_text(self.query_one("#overview-text", Static), views.overview_text(m, views.placed(m)))
        latency, errors = views.series_text(m)
        self._update_text(self.query_one("#latency-label", Static), latency)
        self._update_text(self.query_one("#errors-label", Static), errors)
        for name, series in (("#latency", m.latency), ("#errors", m.errors)):
            data = [p or 0.0 for p in series.points]
            sparkline = self.query_one(name, Sparkline)
            if sparkline.data != data:
                sparkline.data = data

    def _draw_clusters(self, force: bool) -> None:
        m = self.model
        table = self.query_one("#clusters", VirtualTable)
        if self._changed("clusters", (m.targets.revision, m.workloads.revision), force):
            self._placed.placed = views.placed(m)
            table.set_items(views.cluster_rows(m))  # repaints the lines that differ
        else:
            table.refresh_changed()  # ages

    def _draw_placements(self, force: bool) -> None:
        table = self.query_one("#placement-table", VirtualTable)
        if self._changed("placements", self.model.placements.revision, force):
            table.set_items(views.placement_rows(self.model))
        self._update_text(
            self.query_one("#candidates", Static), views.candidates_text(self.candidates, self.candidates_error)
        )

    def _draw_workloads(self, force: bool) -> None:
        m = self.model
        table = self.query_one("#workloads", VirtualTable)
        if self._changed("workloads", (m.targets.revision, m.workloads.revision), force):
            names = sorted(m.target_names().values())
            if names != self._matrix_targets:  # one column per cluster
                self._matrix_targets = names
                table.set_columns(views.workload_columns(m))
            table.set_items(views.workload_rows(m))

    def _draw_events(self, force: bool) -> None:
        table = self.query_one("#events", VirtualTable)
        if self._changed("events", self.model.events_revision, force):
            table.set_items(views.event_rows(self.model))
        else:
            table.refresh_changed()  # ages

    def _draw_debug(self, force: bool) -> None:
        obj = None
        if self.debug_ref is not None:
            kind, key = self.debug_ref
            obj = self.model.collection(kind).objects.get(key)
        self._update_text(self.query_one("#debug-text", Static), views.debug_text(self.model, obj, self.trace_url))

    # ---------------------------------------------------------------- keys

    def action_show(self, view: str) -> None:
        while isinstance(self.screen, ClusterScreen):  # a screen key leaves the cluster's detail
            self.pop_screen()
        self.current = view
        self.query_one("#views", ContentSwitcher).current = view
        table = self.table()
        if table is not None:
            table.focus()
        self.redraw(force=True)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Action keys show (and work) only on the screens they act on.
        if action == "act" and parameters:
            allowed = {"clusters": CLUSTER_ACTIONS, "workloads": WORKLOAD_ACTIONS}.get(self.current, ())
            return parameters[0] in allowed and not isinstance(self.screen, ClusterScreen)  # False: hidden
        if action == "filter":
            return self.table() is not None and not isinstance(self.screen, ClusterScreen)
        return True

    def action_filter(self) -> None:
        if self.table() is None:
            return
        box = self.query_one("#filter", Input)
        box.value = self.filters.get(self.current, "")
        box.add_class("open")
        box.can_focus = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        table = self.table()
        if table is not None and event.input.id == "filter":
            self.filters[self.current] = event.value
            table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("open")
        event.input.can_focus = False
        table = self.table()
        if table is not None:
            table.focus()
        self.redraw(force=False)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("open")
        box.can_focus = False
        self.filters.pop(self.current, None)
        table = self.table()
        if table is not None:
            table.set_filter("")
            table.focus()
        self.redraw(force=False)

    def action_help(self) -> None:
        self.push_screen(Help())

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        if event.table.id == "clusters":
            self.push_screen(ClusterScreen(self.model, object_key(event.item)[2]))
        elif event.table.id == "placement-table":
            self.explain_placement(event.item.placement)
        elif event.table.id in ("workloads", "events"):
            self.action_debug_selected()

    def action_debug_selected(self) -> None:
        table = self.table()
        item = None if table is None else table.selected
        if item is None:
            return
        if self.current == "placements":
            item = item.placement
        elif self.current == "workloads":
            item = item.obj
        elif self.current == "events":
            o = item.get("involvedObject") or {}
            key = (str(o.get("kind") or ""), str(o.get("namespace") or ""), str(o.get("name") or ""))
            item = next((c.objects[key] for c in self._collections() if key in c.objects), None)
            if item is None:
                self.notify(f"{key[0]} {key[2]} is not a watched object", severity="warning")
                return
        self.debug_object(item)

    def _collections(self) -> list[Any]:
        return [self.model.targets, self.model.placements, self.model.workloads]

    def debug_object(self, obj: dict[str, Any]) -> None:
        kind = {"SyncTarget": "synctargets", "Placement": "placements"}.get(str(obj.get("kind")), "workloads")
        self.debug_ref = (kind, object_key(obj))
        self.action_show("debug")

    @work(thread=True, exclusive=True, group="placement")
    def explain_placement(self, placement: dict[str, Any]) -> None:
        if self.cli_actions is None:
            return
        try:
            answer, error = simulate(self.cli_actions, placement), ""
        except Exception as e:  # shown in the panel, as the CLI would print it
            answer, error = None, failure(e)
        self.call_from_thread(self._show_candidates, answer, error)

    def _show_candidates(self, answer: dict[str, Any] | None, error: str) -> None:
        self.candidates, self.candidates_error = answer, error
        self.dirty = True

    def action_act(self, verb: str) -> None:
        table = self.table()
        item = None if table is None else table.selected
        if self.cli_actions is None or item is None:
            return
        action = (
            self.cli_actions.for_cluster(verb, item)
            if self.current == "clusters"
            else self.cli_actions.for_workload(verb, item.obj)
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.perform(action)

        self.push_screen(Confirm(action.question), confirmed)

    @work(thread=True, group="actions")
    def perform(self, action: Action) -> None:
        try:
            message, severity = action.run(), "information"
        except Exception as e:  # the CLI's message and hint, in a toast
            message, severity = failure(e), "error"
        self.call_from_thread(self.notify, message, severity=severity, timeout=6)

    async def on_unmount(self) -> None:
        if self.feed is not None:
            await self.feed.stop()
