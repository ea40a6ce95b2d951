"""The latest predictions by request key, so a shadow's answers can be matched with
the production model's answers to the same mirrored requests.

A gateway mirrors a request with its headers, so both copies carry the same
`x-request-id`; each model server hands it to its monitor as the record's `key`. The
operator lists the shadow's keys since the shadow began and looks them up at the
stable's monitors. Bounded: the oldest keys go first."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_KEYS = 20_000  # per lookup or listing


class RecentPredictions:
    def __init__(self, max_size: int = 20_000):
        self.max_size = max_size
        self._items: OrderedDict[str, tuple[float, list[Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: str, when: float, predictions: list[Any]) -> None:
        self._items.pop(key, None)  # a key seen again: the newer answer wins
        self._items[key] = (when, list(predictions))
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def since(self, when: float, limit: int = MAX_KEYS) -> dict[str, list[Any]]:
        """The newest `limit` answers at or after `when`, oldest first."""
        out: list[tuple[str, list[Any]]] = []
        for key, (t, preds) in reversed(self._items.items()):
            if t < when or len(out) >= limit:
                break
            out.append((key, preds))
        return dict(reversed(out))

    def lookup(self, keys: list[str]) -> dict[str, list[Any]]:
        return {k: self._items[k][1] for k in keys if k in self._items}
