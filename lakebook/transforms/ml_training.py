"""`transform_type: ml_training_set`: label rows joined point-in-time correctly to features.

The output has one row per row of `ml_training.base`: its `entity_columns`, its
`label_timestamp_column`, its `label_column`, then each feature set's `columns` renamed
`<prefix><column>`. A feature set contributes, for each label row, the values of its latest row
with the same `key_columns` whose `timestamp_column` <= the label's timestamp (a DuckDB
ASOF LEFT JOIN): never a value that became known after the label's time. Without such a row the
features are NULL. Two feature rows with the same keys and timestamp would make the choice
arbitrary, so they fail the job.
"""

from __future__ import annotations

from collections import Counter

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, FeatureSet, MLTrainingConfig
from lakebook.sql import quote_identifier as q
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import describe_key, require_columns, require_input

SAMPLE_KEYS = 3


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Join the base's labels to their features as of each label's time into the table `output`."""
    config = job.ml_training
    assert config is not None  # the spec requires it for ml_training_set jobs
    _check(con, job, config)
    base = [*config.entity_columns, config.label_timestamp_column, config.label_column]
    selected = [f"base.{q(column)}" for column in base]
    joins = []
    for position, feature in enumerate(config.features):
        alias = f"feature_{position}"
        selected += [
            f"{alias}.{q(column)} AS {q(feature.prefix + column)}" for column in feature.columns
        ]
        keys = " AND ".join(f"base.{q(key)} = {alias}.{q(key)}" for key in feature.key_columns)
        joins.append(
            f"ASOF LEFT JOIN {q(feature.input)} AS {alias} ON {keys} AND "
            f"base.{q(config.label_timestamp_column)} >= {alias}.{q(feature.timestamp_column)}"
        )
    order = ", ".join(str(position) for position in range(1, len(base)))
    con.execute(
        f"CREATE TABLE output AS SELECT {', '.join(selected)} FROM {q(config.base)} AS base "
        f"{' '.join(joins)} ORDER BY {order}"
    )


def _check(con: duckdb.DuckDBPyConnection, job: DatasetJob, config: MLTrainingConfig) -> None:
    """Errors naming the field for missing inputs or columns, clashing names or ambiguous rows."""
    require_input(job, config.base, "ml_training.base")
    require_columns(
        con,
        job,
        config.base,
        {
            "ml_training.entity_columns": config.entity_columns,
            "ml_training.label_column": [config.label_column],
            "ml_training.label_timestamp_column": [config.label_timestamp_column],
        },
    )
    for position, feature in enumerate(config.features):
        field = f"ml_training.features[{position}]"
        require_input(job, feature.input, f"{field}.input")
        require_columns(con, job, config.base, {f"{field}.key_columns": feature.key_columns})
        require_columns(
            con,
            job,
            feature.input,
            {
                f"{field}.key_columns": feature.key_columns,
                f"{field}.timestamp_column": [feature.timestamp_column],
                f"{field}.columns": feature.columns,
            },
        )
        _check_unique_feature_rows(con, job, feature, field)
    names = [*config.entity_columns, config.label_timestamp_column, config.label_column]
    names += [feature.prefix + column for feature in config.features for column in feature.columns]
    clashes = sorted(name for name, count in Counter(names).items() if count > 1)
    if clashes:
        raise TransformError(
            f"Job `{job.name}`: the training set would have the column(s) "
            f"{', '.join(f'`{name}`' for name in clashes)} twice. Give the feature sets "
            "distinct `prefix` values (e.g. `customer_`)."
        )


def _check_unique_feature_rows(
    con: duckdb.DuckDBPyConnection, job: DatasetJob, feature: FeatureSet, field: str
) -> None:
    """Fail when a feature set has two rows for one key at one timestamp."""
    columns = ", ".join(q(column) for column in [*feature.key_columns, feature.timestamp_column])
    duplicated = con.sql(
        f"SELECT {columns} FROM {q(feature.input)} "
        f"WHERE {q(feature.timestamp_column)} IS NOT NULL "
        f"GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT {SAMPLE_KEYS}"
    ).fetchall()
    if duplicated:
        names = [*feature.key_columns, feature.timestamp_column]
        examples = "; ".join(describe_key(names, row) for row in duplicated)
        raise TransformError(
            f"Job `{job.name}`: `{field}` (input `{feature.input}`) has several rows for one key "
            f"at one time, e.g. {examples}, so the feature value as of a label is ambiguous. "
            "De-duplicate the input first."
        )
