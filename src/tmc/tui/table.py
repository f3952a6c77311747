"""A table that draws only the rows and columns on screen (Textual's line API), for 10,000-row screens.

Textual's DataTable builds a renderable per cell up front and slows down at a few hundred rows; here each visible
line is built from the row's item when it is drawn, so the cost of a refresh is the screen's size, not the data's.
Rows are plain items plus column getters; `/` filters them by words and `key:value` tags.

A change repaints only the lines whose text or style differs from what was drawn (a burst of watch events that
leaves the visible rows unchanged repaints nothing), and texts of `pure` columns are kept per item, so a watch
event's new object is formatted once rather than on every repaint.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Words painted in a colour wherever a colouring column shows them.
GOOD = frozenset({"True", "Ready", "Healthy", "healthy", "synced", "available", "Normal", "Schedulable", "Bound"})
BAD = frozenset({"False", "NotReady", "Unhealthy", "unhealthy", "failed", "Warning", "Unbound", "Error"})
WARN = frozenset(
    {"Unknown", "pending", "paused", "Cordoned", "Draining", "Degraded", "degraded", "removing", "Pending"}
)
_GOOD, _BAD, _WARN = Style(color="green"), Style(color="red", bold=True), Style(color="yellow")
_HEADER = Style(bold=True, reverse=True)
_CURSOR = Style(reverse=True)
_PLAIN = Style()


def word_style(text: str) -> Style:
    word = text.strip().split(" ", 1)[0]
    if word in GOOD:
        return _GOOD
    if word in BAD:
        return _BAD
    if word in WARN:
        return _WARN
    return _PLAIN


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    get: Callable[[Any], str]
    colour: bool = False  # paint GOOD / BAD / WARN words
    pure: bool = False  # the text depends on the item alone (not the clock or other state): kept per item


@dataclass
class Filter:
    """`/` text: plain words must all occur in the row's text; `key:value` needs a tag `key` containing `value`."""

    words: list[str] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Filter:
        f = cls()
        for token in text.lower().split():
            key, colon, value = token.partition(":")
            if colon and key and value:
                f.tags.append((key, value))
            else:
                f.words.append(token)
        return f

    def __bool__(self) -> bool:
        return bool(self.words or self.tags)

    def matches(self, text: str, tags: dict[str, frozenset[str]]) -> bool:
        if any(w not in text for w in self.words):
            return False
        for key, value in self.tags:
            found = tags.get(key)
            if found is None or not any(value in t.lower() for t in found):
                return False
        return True


def _no_tags(_: Any) -> dict[str, frozenset[str]]:
    return {}


PURE_TEXTS_KEPT = 4096  # items whose pure texts are kept; past it the cache starts again (rows are replaced often)


class VirtualTable(ScrollView, can_focus=True):
    """Rows of `items`; the header stays on the first line; the cursor row is reversed."""

    DEFAULT_CSS = """
    VirtualTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "Top", show=False),
        Binding("end", "jump(-1)", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class Selected(Message):
        """Enter on a row."""

        def __init__(self, table: VirtualTable, item: Any) -> None:
            super().__init__()
            self.table = table
            self.item = item

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        key: Callable[[Any], Hashable] = id,
        search: Callable[[Any], str] | None = None,
        tags: Callable[[Any], dict[str, frozenset[str]]] = _no_tags,
        empty: str = "nothing to show",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns: list[Column] = []
        self._offsets: list[int] = []
        self.key = key
        self.search = search or (lambda item: " ".join(c.get(item) for c in self.columns).lower())
        self.tags = tags
        self.empty = empty
        self.items: list[Any] = []
        self.rows: list[Any] = []  # items after the filter
        self.filter = Filter()
        self.cursor = 0
        # item id -> (item, texts of the pure columns): the item is held so that a reused id cannot match.
        self._pure: dict[int, tuple[Any, dict[int, str]]] = {}
        # widget line -> what render_line drew there (texts, style, offset, width), to repaint only what differs.
        self._drawn: dict[int, tuple[Any, ...]] = {}
        self._strips: dict[tuple[Any, ...], Strip] = {}  # what was drawn -> its Strip, for lines seen again
        self.set_columns(columns)

    # ---------------------------------------------------------------- data

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self._offsets, x = [], 0
        for c in self.columns:
            self._offsets.append(x)
            x += c.width + 1
        self._width = max(0, x - 1)
        self._pure.clear()
        self._drawn.clear()
        self._strips.clear()
        self._resize()
        self.refresh()

    def set_items(self, items: Sequence[Any]) -> None:
        """New rows; the cursor stays on the same item when it is still there."""
        current = self.selected
        current_key = None if current is None else self.key(current)
        self.items = list(items)
        # Fast path for the common case: the selected item's key is still at the cursor.
        still = not self.filter and 0 <= self.cursor < len(self.items) and current_key is not None
        if still and self.key(self.items[self.cursor]) == current_key:
            current_key = None
        self._apply_filter(current_key)

    def set_filter(self, text: str) -> None:
        current = self.selected
        self.filter = Filter.parse(text)
        self._apply_filter(None if current is None else self.key(current))

    def _apply_filter(self, keep: Hashable | None) -> None:
        if self.filter:
            f = self.filter
            self.rows = [i for i in self.items if f.matches(self.search(i), self.tags(i))]
        else:
            self.rows = self.items
        if keep is not None:
            for index, item in enumerate(self.rows):
                if self.key(item) == keep:
                    self.cursor = index
                    break
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._resize()
        self.refresh_changed()

    def _resize(self) -> None:
        size = Size(self._width, len(self.rows) + 1)
        if size != self.virtual_size:  # assigning it, even unchanged, costs a layout pass
            self.virtual_size = size

    @property
    def selected(self) -> Any:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    # ---------------------------------------------------------------- drawing

    def _text(self, item: Any, index: int, column: Column) -> str:
        if not column.pure:
            return column.get(item)
        entry = self._pure.get(id(item))
        if entry is None or entry[0] is not item:
            if len(self._pure) >= PURE_TEXTS_KEPT:
                self._pure.clear()
            entry = self._pure[id(item)] = (item, {})
        text = entry[1].get(index)
        if text is None:
            text = entry[1][index] = column.get(item)
        return text

    def _visible_columns(self, sx: int, width: int) -> list[int]:
        return [
            i
            for i, (column, offset) in enumerate(zip(self.columns, self._offsets, strict=True))
            if not (offset + column.width < sx or offset > sx + width)
        ]

    def _signature(self, y: int, visible: list[int], top: int, cursor: int) -> tuple[Any, ...]:
        """What line `y` of the widget shows: its texts and base style (header, row, empty note or blank). `top` is
        the row at the first line under the header, `cursor` the highlighted row (-1: none)."""
        if y == 0:
            return ("header",)
        index = top + y - 1
        if index >= len(self.rows):
            return ("empty",) if index == 0 else ("blank",)
        item = self.rows[index]
        return (index == cursor, *(self._text(item, i, self.columns[i]) for i in visible))

    def _highlighted(self) -> int:
        return self.cursor if self.has_focus else -1

    def refresh_changed(self) -> None:
        """Repaint the lines whose text or style differs from what was drawn, and only those."""
        width, height = self.size.width, self.size.height
        if not self._drawn or width <= 0:
            self.refresh()
            return
        sx, top = self.scroll_offset
        visible = self._visible_columns(sx, width)
        cursor = self._highlighted()
        for y in range(height):
            drawn = self._drawn.get(y)
            if (
                drawn is None
                or drawn[0] != sx
                or drawn[1] != width
                or drawn[2] != self._signature(y, visible, top, cursor)
            ):
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        sx, top = self.scroll_offset
        visible = self._visible_columns(sx, width)
        signature = self._signature(y, visible, top, self._highlighted())
        drawn = self._drawn[y] = (sx, width, signature)
        # A scroll by one line shows the same lines one place up: the same Strip objects, with the crops and
        # filters Textual cached on them, are handed back instead of being built again.
        strip = self._strips.get(drawn)
        if strip is None:
            if len(self._strips) >= 4 * max(1, self.size.height):
                self._strips.clear()
            strip = self._strips[drawn] = self._build_line(y, sx, width, visible, signature)
        return strip

    def _build_line(self, y: int, sx: int, width: int, visible: list[int], signature: tuple[Any, ...]) -> Strip:
        if y == 0:
            return self._line(None, sx, width, _HEADER, visible)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.rows):
            if index == 0:
                return Strip([Segment(self.empty[:width], Style(italic=True, dim=True))]).extend_cell_length(width)
            return Strip.blank(width)
        return self._line(self.rows[index], sx, width, _CURSOR if signature[0] else _PLAIN, visible, signature[1:])

    def _line(
        self,
        item: Any,
        sx: int,
        width: int,
        base: Style,
        visible: list[int] | None = None,
        texts: Sequence[str] | None = None,
    ) -> Strip:
        if visible is None:
            visible = self._visible_columns(sx, width)
        if not visible:
            return Strip.blank(width, base)
        if texts is None:
            texts = [self.columns[i].title if item is None else self._text(item, i, self.columns[i]) for i in visible]
        segments: list[Segment] = []
        for i, text in zip(visible, texts, strict=True):
            column = self.columns[i]
            if segments:
                segments.append(Segment(" ", base))
            cell = text[: column.width].ljust(column.width)
            style = base + word_style(text) if item is not None and column.colour else base
            segments.append(Segment(cell, style))
        x0 = self._offsets[visible[0]]
        strip = Strip(segments).crop(sx - x0, sx - x0 + width)
        return strip.extend_cell_length(width, base)

    # ---------------------------------------------------------------- keys

    def _show_cursor(self, previous: int) -> None:
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)
        else:  # no scroll: only the old and the new cursor line change
            for index in {previous, self.cursor}:
                if top <= index < top + visible:
                    self.refresh(Region(0, index - top + 1, self.size.width, 1))
            return
        self.refresh()

    def move_to(self, index: int) -> None:
        previous = self.cursor
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._show_cursor(previous)

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.move_to(self.cursor + step * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.move_to(where if where >= 0 else len(self.rows) - 1)

    def action_select(self) -> None:
        if self.selected is not None:
            self.post_message(self.Selected(self, self.selected))

    def on_focus(self) -> None:
        self.refresh_changed()

    def on_blur(self) -> None:
        self.refresh_changed()
