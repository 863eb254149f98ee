"""Core statements compiled once and run on a raw DBAPI cursor: the store's hot path.

SQLAlchemy Core costs 60-170 µs of Python per execution (cache key, compiled-cache lookup,
execution context, result wrapping) where SQLite itself needs about 10 µs. The store's frequent
statements are still written in Core, in `sql.py`, but each is compiled once per store for its
dialect (`Prepared`) and executed on the DBAPI cursor of a `RawTransaction`.

IN-lists are `bindparam(name, expanding=True)`: the SQL is rendered once per list length (lists
are short, e.g. a claim's run ids, so few variants exist) and the list is passed as
`name_1, name_2, ...`. Keep them short and bounded; never pass an empty list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """The SQL for one set of IN-list lengths, and how to lay out the parameters."""

    sql: str
    template: Mapping[str, Any]  # every final parameter, with its default (or None)
    order: tuple[str, ...] | None  # positional paramstyles (qmark, format): the order
    processors: Mapping[str, Callable[[Any], Any]]


class Prepared:
    """A Core statement compiled once for a dialect, executed on raw DBAPI cursors.

    Parameters are the statement's named `bindparam`s (and `columns`); literal values in the
    statement are bound as their defaults. Type bind processors are applied as Core would.
    """

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str] | None = None
    ) -> None:
        # `columns`: for an INSERT or UPDATE without `.values()`, the columns it sets; each is a
        # parameter named after its column (as when Core executes `update(t), {...}`).
        compiled = statement.compile(dialect=dialect, column_keys=columns)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        self._compiled = compiled
        binds = self._compiled.binds
        self._required = frozenset(name for name, bind in binds.items() if bind.required)
        self._expanding = tuple(name for name, bind in binds.items() if bind.expanding)
        self._processors = {
            name: processor
            for name, bind in binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        self._plans: dict[tuple[int, ...], _Plan] = {}

    @property
    def sql(self) -> str:
        """The compiled SQL (with IN-lists not yet expanded)."""
        return self._compiled.string

    def _plan(self, lists: Mapping[str, Sequence[Any]]) -> _Plan:
        lengths = tuple(len(lists[name]) for name in self._expanding)
        plan = self._plans.get(lengths)
        if plan is None:
            plan = self._plans[lengths] = self._render(lists)
        return plan

    def _render(self, lists: Mapping[str, Sequence[Any]]) -> _Plan:
        """Render the SQL once for these IN-list lengths (SQLAlchemy's own expansion)."""
        dummies: dict[str, Any] = {name: None for name in self._required}
        dummies.update({name: [None] * len(values) for name, values in lists.items()})
        state = self._compiled.construct_expanded_state(dummies)
        processors = {}
        for key in state.parameters:
            base = self._base_name(key)
            if base in self._processors:
                processors[key] = self._processors[base]
        order = tuple(state.positiontup) if state.positiontup is not None else None
        return _Plan(state.statement, dict(state.parameters), order, processors)

    def _base_name(self, key: str) -> str:
        """`ids_3` → `ids` for an expanded IN-list element; other names map to themselves."""
        if key not in self._compiled.binds:
            head, _, _ = key.rpartition("_")
            if head in self._expanding:
                return head
        return key

    def _lists(self, params: Mapping[str, Any]) -> dict[str, Sequence[Any]]:
        """The IN-lists: given ones, else the literal lists the statement was built with."""
        binds = self._compiled.binds
        return {
            name: params[name] if name in params else list(binds[name].effective_value or ())
            for name in self._expanding
        }

    def bind(self, params: Mapping[str, Any]) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
        """The SQL and the DBAPI parameters (a tuple, or a dict for named paramstyles)."""
        if not params.keys() >= self._required:
            missing = sorted(self._required - params.keys())
            raise TypeError(f"missing parameters {missing} for: {self.sql}")
        if not self._expanding:  # most statements: one plan, nothing to expand
            plan = self._plans.get(()) or self._plan({})
            return _laid_out(plan, {**plan.template, **params})
        lists = self._lists(params)
        plan = self._plan(lists)
        values = {**plan.template, **params}
        for name, items in lists.items():
            values.pop(name, None)
            values.update((f"{name}_{i}", item) for i, item in enumerate(items, 1))
        return _laid_out(plan, values)


def _laid_out(plan: _Plan, values: dict[str, Any]) -> tuple[str, Sequence[Any] | Mapping[str, Any]]:
    """The SQL and the parameters as the driver takes them, type processors applied."""
    for key, processor in plan.processors.items():
        values[key] = processor(values[key])
    if plan.order is None:
        return plan.sql, values
    return plan.sql, tuple([values[key] for key in plan.order])


class RawTransaction:
    """One open write transaction on a raw DBAPI connection; runs `Prepared` statements.

    `statements` counts the statements it ran (an `execute_many` counts one per row).
    """

    __slots__ = ("_cursor", "statements")

    def __init__(self, dbapi_connection: Any) -> None:
        self._cursor = dbapi_connection.cursor()
        self.statements = 0

    def execute(self, statement: Prepared, **params: Any) -> int:
        """Run a statement; returns the number of rows it changed."""
        sql, args = statement.bind(params)
        self._cursor.execute(sql, args)
        self.statements += 1
        return int(self._cursor.rowcount)

    def execute_many(self, statement: Prepared, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set (one driver call)."""
        bound = [statement.bind(row) for row in rows]
        if bound:
            self._cursor.executemany(bound[0][0], [args for _, args in bound])
            self.statements += len(bound)

    def rows(self, statement: Prepared, **params: Any) -> list[Row]:
        """Run a query (or a statement with RETURNING); its rows as dicts by column name."""
        sql, args = statement.bind(params)
        cursor = self._cursor
        cursor.execute(sql, args)
        self.statements += 1
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def first(self, statement: Prepared, **params: Any) -> Row | None:
        """The first row of a query, or None."""
        rows = self.rows(statement, **params)
        return rows[0] if rows else None

    def scalars(self, statement: Prepared, **params: Any) -> list[Any]:
        """The first column of every row."""
        sql, args = statement.bind(params)
        self._cursor.execute(sql, args)
        self.statements += 1
        return [row[0] for row in self._cursor.fetchall()]
