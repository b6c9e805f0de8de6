"""`transform_type: scd2_dimension`: keep one row per version of each business key.

The first input is the latest snapshot of the source: one row per business key. It is compared
with the dimension's current table (`__existing`) and the builder leaves the whole new dimension
(history + changes) in `output`, which the runner writes with `full_refresh` as one commit.

Semantics (the decisions a user needs to know):

- Versions are half-open intervals `[effective_from, effective_to)` in UTC (`TIMESTAMPTZ`); the
  current version has `effective_to` NULL and `is_current` true. A new version starts at the row's
  `effective_time_column` value, or at the run time when none is configured.
- Tracked columns are `change_detection_columns`, or every input column except the business keys
  and `effective_time_column`. With `change_detection: hash`, an MD5 of the tracked values is
  stored in `hash_column` and compared instead of the columns one by one.
- A change only in untracked columns adds no version: the current row's untracked values are
  updated in place (SCD1-style), so the current row always mirrors the latest source row.
- Keys missing from the input (hard deletes), by `hard_deletes`: `ignore` keeps them current;
  `close` ends their current version at the run time (the key then has no current row); `tombstone`
  ends it and adds a current tombstone row (`is_deleted` true, attributes NULL). A deleted key that
  comes back gets a new current version.
- Running again on unchanged input changes nothing and commits nothing (`unchanged`).
- Before anything is committed the result is checked: at most one current row per key, current rows
  open and the others closed, no empty or overlapping intervals. Otherwise the job fails naming the
  key, and the table keeps its previous version.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, Scd2Config
from lakebook.sql import quote_identifier as q
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import key_problems

IS_DELETED_COLUMN = "is_deleted"
SUMMARY_TABLE = "__scd2_changes"


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Leave the new dimension in `output`: existing history plus this snapshot's changes."""
    config = job.scd2
    assert config is not None  # the spec requires it for scd2_dimension jobs
    if job.refresh_mode != "full_refresh":
        raise TransformError(
            f"Job `{job.name}`: an scd2_dimension job rewrites its whole dimension in one commit; "
            f"set `refresh_mode: full_refresh` (it is `{job.refresh_mode}`)."
        )
    source = job.inputs[0].name
    columns = _columns(con, source)
    plan = _Plan(job.name, config, columns, run)
    con.execute(f"CREATE TEMP TABLE __scd2_source AS {plan.source_select(source)}")
    _check_source_keys(con, job.name, plan)
    if not run.has_existing:
        con.execute(f"CREATE TABLE output AS {plan.first_load()}")
        con.execute(f"CREATE TEMP TABLE {SUMMARY_TABLE} AS SELECT NULL::BIGINT AS changes")
    else:
        existing = _columns(con, "__existing")
        plan.check_existing(existing)
        con.execute(f"CREATE TEMP TABLE __scd2_old AS {plan.old_select(existing)}")
        con.execute(f"CREATE TEMP TABLE __scd2_diff AS {plan.diff()}")
        con.execute(f"CREATE TABLE output AS {plan.merge()}")
        con.execute(
            f"CREATE TEMP TABLE {SUMMARY_TABLE} AS SELECT count(*) AS changes FROM __scd2_diff "
            f"WHERE action NOT IN ('same', 'gone'{plan.ignored_deletes})"
        )
    _check_versions(con, job.name, plan)


def unchanged(con: duckdb.DuckDBPyConnection, job: DatasetJob) -> bool:
    """True when `output` equals the current table: no key changed and the columns are the same."""
    changes = con.sql(f"SELECT changes FROM {SUMMARY_TABLE}").fetchall()[0][0]
    if changes is None or changes > 0:
        return False
    before = con.sql("DESCRIBE __existing").fetchall()
    after = con.sql("DESCRIBE output").fetchall()
    if [row[:2] for row in before] != [row[:2] for row in after]:
        return False
    counts = con.sql(
        "SELECT (SELECT count(*) FROM __existing), (SELECT count(*) FROM output)"
    ).fetchall()[0]
    return bool(counts[0] == counts[1])  # e.g. a DQ `drop` rule removed rows


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [str(row[0]) for row in con.sql(f"DESCRIBE {q(table)}").fetchall()]


def _key_text(keys: Sequence[str], values: Sequence[object]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in zip(keys, values, strict=True))


class _Plan:
    """The SQL of one SCD2 run, from the config and the input's columns."""

    def __init__(self, job: str, config: Scd2Config, columns: list[str], run: RunInfo) -> None:
        self.job = job
        self.config = config
        self.columns = columns
        self.keys = config.business_key_columns
        self.run_time = f"TIMESTAMPTZ '{run.run_time.isoformat()}'"
        self.hashed = config.change_detection == "hash"
        self.tombstones = config.hard_deletes == "tombstone"
        self.has_deleted = self.tombstones  # also true when the existing table has the column
        self.ignored_deletes = ", 'delete'" if config.hard_deletes == "ignore" else ""
        self.eff_from = config.effective_from_column
        self.eff_to = config.effective_to_column
        self.current = config.is_current_column
        self._check_names()
        tracked = config.change_detection_columns or [
            column
            for column in columns
            if column not in self.keys and column != config.effective_time_column
        ]
        self.tracked = tracked
        self.untracked = [c for c in columns if c not in self.keys and c not in tracked]

    def _check_names(self) -> None:
        config = self.config
        named = {
            "business_key_columns": self.keys,
            "change_detection_columns": config.change_detection_columns,
            "effective_time_column": [config.effective_time_column]
            if config.effective_time_column
            else [],
        }
        for field, names in named.items():
            missing = [name for name in names if name not in self.columns]
            if missing:
                raise TransformError(
                    f"Job `{self.job}`: `scd2.{field}` names {', '.join(f'`{m}`' for m in missing)}, "
                    f"not a column of the input (its columns: {', '.join(self.columns)}). Fix the name."
                )
        both = [name for name in config.change_detection_columns if name in self.keys]
        if both:
            raise TransformError(
                f"Job `{self.job}`: {', '.join(f'`{b}`' for b in both)} is a business key; remove "
                "it from `scd2.change_detection_columns` (keys identify a row, they do not change)."
            )
        reserved = {
            self.eff_from: "effective_from_column",
            self.eff_to: "effective_to_column",
            self.current: "is_current_column",
        }
        if self.hashed:
            reserved[config.hash_column] = "hash_column"
        if self.tombstones:
            reserved[IS_DELETED_COLUMN] = "tombstone flag"
        if len(reserved) < 3 + self.hashed + self.tombstones:
            raise TransformError(
                f"Job `{self.job}`: the SCD2 output column names must differ from each other "
                f"({', '.join(reserved)})."
            )
        clashes = [name for name in reserved if name in self.columns]
        if clashes:
            raise TransformError(
                f"Job `{self.job}`: the input already has column(s) "
                f"{', '.join(f'`{c}`' for c in clashes)}, which the SCD2 dimension adds itself "
                f"({', '.join(reserved[c] for c in clashes)}). Rename them in the input or "
                "choose other names in `scd2`."
            )

    # -- SQL pieces -----------------------------------------------------------------------

    def hash_of(self, prefix: str) -> str:
        values = ", ".join(f"CAST({prefix}{q(c)} AS VARCHAR)" for c in self.tracked)
        return f"md5(CAST(to_json([{values}]::VARCHAR[]) AS VARCHAR))"

    def out_columns(self) -> list[str]:
        extra = [self.config.hash_column] if self.hashed else []
        flag = [IS_DELETED_COLUMN] if self.has_deleted else []
        return [*self.columns, *extra, self.eff_from, self.eff_to, self.current, *flag]

    def source_select(self, source: str) -> str:
        effective = (
            f"CAST({q(self.config.effective_time_column)} AS TIMESTAMPTZ)"
            if self.config.effective_time_column
            else self.run_time
        )
        hashed = f", {self.hash_of('')} AS {q(self.config.hash_column)}" if self.hashed else ""
        listed = ", ".join(q(c) for c in self.columns)
        return f"SELECT {listed}{hashed}, {effective} AS __eff FROM {q(source)}"

    def key_join(self, left: str, right: str) -> str:
        return " AND ".join(f"{left}.{q(k)} = {right}.{q(k)}" for k in self.keys)

    def first_load(self) -> str:
        return self._versions("s", "__scd2_source s", "TRUE") + f" ORDER BY {self._order()}"

    def _order(self) -> str:
        return ", ".join([*(q(k) for k in self.keys), q(self.eff_from)])

    def _versions(self, alias: str, source: str, where: str) -> str:
        """New current versions from source rows (`alias` columns)."""
        parts = [f"{alias}.{q(c)}" for c in self.columns]
        if self.hashed:
            parts.append(f"{alias}.{q(self.config.hash_column)}")
        parts += [
            f"{alias}.__eff AS {q(self.eff_from)}",
            f"NULL::TIMESTAMPTZ AS {q(self.eff_to)}",
            f"TRUE AS {q(self.current)}",
        ]
        if self.has_deleted:
            parts.append(f"FALSE AS {q(IS_DELETED_COLUMN)}")
        return f"SELECT {', '.join(parts)} FROM {source} WHERE {where}"

    def check_existing(self, existing: list[str]) -> None:
        """The current table has the keys and SCD columns, and every column the input lacks."""
        needed = [*self.keys, self.eff_from, self.eff_to, self.current]
        missing = [name for name in needed if name not in existing]
        if missing:
            raise TransformError(
                f"Job `{self.job}`: the current table lacks column(s) "
                f"{', '.join(f'`{m}`' for m in missing)}, so it is not this SCD2 dimension (were "
                "`business_key_columns` or the SCD column names changed?). Restore the names, or "
                "drop the table to rebuild the dimension from scratch."
            )
        if IS_DELETED_COLUMN in existing:
            self.has_deleted = True  # keep earlier tombstones visible
        known = set(self.out_columns()) | {self.config.hash_column, IS_DELETED_COLUMN}
        dropped = [name for name in existing if name not in known]
        if dropped:
            raise TransformError(
                f"Job `{self.job}`: the input no longer has column(s) "
                f"{', '.join(f'`{d}`' for d in dropped)}, which the dimension's history holds. "
                "Select them in the input (NULL if they are gone) so no history is lost."
            )

    def old_select(self, existing: list[str]) -> str:
        """The current table in the output's shape; new input columns are NULL in history."""
        parts = []
        hash_column = self.config.hash_column
        for name in self.out_columns():
            if name in existing:
                parts.append(q(name))
            elif name == IS_DELETED_COLUMN:
                parts.append(f"FALSE AS {q(name)}")
            elif name != hash_column:
                parts.append(f"NULL AS {q(name)}")
        select = f"SELECT {', '.join(parts)} FROM __existing"
        if self.hashed and hash_column not in existing:
            # The table was built without a stored hash: compute it from the tracked values.
            listed = ", ".join(
                f"{self.hash_of('')} AS {q(name)}" if name == hash_column else q(name)
                for name in self.out_columns()
            )
            select = f"SELECT {listed} FROM ({select})"
        return select

    def diff(self) -> str:
        """One row per key in the snapshot or current: both sides and what happens to it."""
        deleted = f"c.{q(IS_DELETED_COLUMN)}" if self.has_deleted else "FALSE"
        if self.hashed:
            hash_column = q(self.config.hash_column)
            changed = f"s.{hash_column} IS DISTINCT FROM c.{hash_column}"
        else:
            changed = " OR ".join(f"s.{q(t)} IS DISTINCT FROM c.{q(t)}" for t in self.tracked)
        untracked = (
            " OR ".join(f"s.{q(u)} IS DISTINCT FROM c.{q(u)}" for u in self.untracked) or "FALSE"
        )
        present = f"s.{q(self.keys[0])} IS NOT NULL"
        current = f"c.{q(self.keys[0])} IS NOT NULL"
        action = f"""CASE
            WHEN NOT {current} THEN 'insert'
            WHEN {present} AND {deleted} THEN 'reopen'
            WHEN {present} AND ({changed or "FALSE"}) THEN 'change'
            WHEN {present} AND ({untracked}) THEN 'update'
            WHEN {present} THEN 'same'
            WHEN {deleted} THEN 'gone'
            ELSE 'delete' END"""
        source_columns = [*self.columns, "__eff"]
        if self.hashed:
            source_columns.append(self.config.hash_column)
        picked = [f"s.{q(c)} AS {q('s__' + c)}" for c in source_columns]
        picked += [f"c.{q(c)} AS {q('c__' + c)}" for c in self.out_columns()]
        return (
            f"SELECT {', '.join(picked)}, {action} AS action "
            f"FROM __scd2_source s FULL OUTER JOIN "
            f"(SELECT * FROM __scd2_old WHERE {q(self.current)}) c ON {self.key_join('s', 'c')}"
        )

    def merge(self) -> str:
        """History, current rows updated or closed, new versions and tombstones, in key order."""
        out = self.out_columns()
        # A changed or returning key's version ends where the new one starts; a deleted one
        # ends at the run time.
        close_at = f"CASE WHEN action = 'delete' THEN {self.run_time} ELSE {q('s____eff')} END"
        closed_actions = ["change", "reopen"]
        if self.config.hard_deletes != "ignore":
            closed_actions.append("delete")
        closed_list = ", ".join(repr(a) for a in closed_actions)
        current_rows = []
        for name in out:
            previous = q("c__" + name)
            if name in self.untracked:
                value = f"CASE WHEN action = 'update' THEN {q('s__' + name)} ELSE {previous} END"
            elif name == self.eff_to:
                value = f"CASE WHEN action IN ({closed_list}) THEN {close_at} ELSE {previous} END"
            elif name == self.current:
                value = f"action NOT IN ({closed_list})"
            else:
                value = previous
            current_rows.append(f"{value} AS {q(name)}")
        new_rows = []
        for name in out:
            if name == self.eff_from:
                value = q("s____eff")
            elif name == self.eff_to:
                value = "NULL::TIMESTAMPTZ"
            elif name == self.current:
                value = "TRUE"
            elif name == IS_DELETED_COLUMN:
                value = "FALSE"
            else:
                value = q("s__" + name)
            new_rows.append(f"{value} AS {q(name)}")
        parts = [
            f"SELECT * FROM __scd2_old WHERE NOT {q(self.current)}",
            f"SELECT {', '.join(current_rows)} FROM __scd2_diff WHERE action <> 'insert'",
            f"SELECT {', '.join(new_rows)} FROM __scd2_diff "
            "WHERE action IN ('insert', 'change', 'reopen')",
        ]
        if self.tombstones:
            tombstone = []
            for name in out:
                if name in self.keys:
                    value = q("c__" + name)
                elif name == self.eff_from:
                    value = self.run_time
                elif name == self.eff_to:
                    value = "NULL::TIMESTAMPTZ"
                elif name in (self.current, IS_DELETED_COLUMN):
                    value = "TRUE"
                else:
                    value = "NULL"
                tombstone.append(f"{value} AS {q(name)}")
            parts.append(f"SELECT {', '.join(tombstone)} FROM __scd2_diff WHERE action = 'delete'")
        union = " UNION ALL BY NAME ".join(f"({part})" for part in parts)
        listed = ", ".join(q(name) for name in out)
        return f"SELECT {listed} FROM ({union}) ORDER BY {self._order()}"


def _check_source_keys(con: duckdb.DuckDBPyConnection, job: str, plan: _Plan) -> None:
    """The snapshot has one row per business key, with no null key and a start time per row."""
    keys = ", ".join(q(k) for k in plan.keys)
    nulls, repeated = key_problems(con, "__scd2_source", plan.keys)
    if nulls:
        raise TransformError(
            f"Job `{job}`: {nulls} input row(s) have a null business key "
            f"({', '.join(plan.keys)}). Filter or fill them before the SCD2 job."
        )
    if repeated:
        values, count = repeated
        raise TransformError(
            f"Job `{job}`: business key ({_key_text(plan.keys, values)}) appears {count} times "
            "in the input; an SCD2 input is a snapshot with one row per key. Deduplicate it "
            "upstream (e.g. keep each key's latest row)."
        )
    column = plan.config.effective_time_column
    if column:
        missing = con.sql(
            f"SELECT {keys} FROM __scd2_source WHERE __eff IS NULL ORDER BY {keys} LIMIT 1"
        ).fetchall()
        if missing:
            raise TransformError(
                f"Job `{job}`: business key ({_key_text(plan.keys, missing[0])}) has no "
                f"`{column}` (the effective_time_column). Fill it, or leave "
                "`effective_time_column` unset to use the run time."
            )


def _check_versions(con: duckdb.DuckDBPyConnection, job: str, plan: _Plan) -> None:
    """Refuse to commit a dimension whose versions of a key are not one clean timeline."""
    keys = ", ".join(q(k) for k in plan.keys)
    eff_from, eff_to, current = q(plan.eff_from), q(plan.eff_to), q(plan.current)
    start, end = f"CAST({eff_from} AS VARCHAR)", f"CAST({eff_to} AS VARCHAR)"
    problem = f"""CASE
        WHEN currents > 1 THEN 'has ' || CAST(currents AS VARCHAR) || ' current rows'
        WHEN {eff_from} IS NULL THEN 'has a version with no {plan.eff_from}'
        WHEN {current} AND {eff_to} IS NOT NULL THEN 'has a current row with {plan.eff_to} set'
        WHEN NOT {current} AND {eff_to} IS NULL THEN 'has a closed row with no {plan.eff_to}'
        WHEN {eff_to} <= {eff_from} THEN
            'has a version ending (' || {end} || ') where it starts (' || {start} || ') or before'
        WHEN next_from IS NOT NULL AND ({eff_to} IS NULL OR {eff_to} > next_from) THEN
            'has overlapping versions: the one starting ' || {start} || ' ends '
            || coalesce({end}, 'never') || ', after the next one starts ('
            || CAST(next_from AS VARCHAR) || ')'
        END"""
    found = con.sql(
        f"""SELECT {keys}, problem FROM (
              SELECT *, {problem} AS problem FROM (
                SELECT {keys}, {eff_from}, {eff_to}, {current},
                       lead({eff_from}) OVER (PARTITION BY {keys} ORDER BY {eff_from}) AS next_from,
                       count_if({current}) OVER (PARTITION BY {keys}) AS currents
                FROM output))
            WHERE problem IS NOT NULL ORDER BY {keys} LIMIT 1"""
    ).fetchall()
    if found:
        *values, problem = found[0]
        hint = (
            f" Its `{plan.config.effective_time_column}` values must increase from run to run."
            if plan.config.effective_time_column
            else ""
        )
        raise TransformError(
            f"Job `{job}`: refusing to commit the SCD2 dimension: business key "
            f"({_key_text(plan.keys, values)}) {problem}. Nothing was written.{hint}"
        )
