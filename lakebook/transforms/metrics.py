"""`transform_type: metrics_aggregate`: a fact grouped by a time grain and dimensions, with metrics.

The output has one row per period and combination of dimension values:

- the period column, named after the grain (`hour`, `day`, `week`, `month`, `quarter` or
  `year`): the start of the period, `date_trunc(grain, time_column)`. It is a DATE for day and
  coarser grains and a TIMESTAMP for `hour`. Timestamps with a time zone are bucketed in UTC.
  Weeks start on Monday.
- the `dimensions`, in their order;
- one column per metric, in their order: `sum`, `count` (of a column's non-null values, or of
  rows when no column is given), `count_distinct`, `avg`, `min`, `max`, each over the rows
  matching its optional SQL `filter`; and `ratio`: `numerator / denominator` of two other
  metrics (by name) as a DOUBLE, NULL when the denominator is 0 or NULL. Sums of integer
  columns are BIGINT.

Rows whose time column is NULL are left out.
"""

from __future__ import annotations

import duckdb

from lakebook.errors import TransformError
from lakebook.specs import DatasetJob, MetricDefinition, MetricsConfig
from lakebook.sql import quote_identifier as q
from lakebook.transforms import RunInfo
from lakebook.transforms.columns import require_columns, require_input

SQL_FUNCTIONS = {
    "sum": "sum",
    "count": "count",
    "count_distinct": "count",
    "avg": "avg",
    "min": "min",
    "max": "max",
}
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
TIME_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


def build(con: duckdb.DuckDBPyConnection, job: DatasetJob, run: RunInfo) -> None:
    """Aggregate `metrics.source` into the table `output`."""
    config = job.metrics
    assert config is not None  # the spec requires it for metrics_aggregate jobs
    con.execute(f"CREATE TABLE output AS {metrics_sql(con, job, config)}")


def metrics_sql(con: duckdb.DuckDBPyConnection, job: DatasetJob, config: MetricsConfig) -> str:
    """The SELECT computing the metrics table; errors name the field or metric at fault."""
    require_input(job, config.source, "metrics.source")
    types = require_columns(
        con,
        job,
        config.source,
        {"metrics.time_column": [config.time_column], "metrics.dimensions": config.dimensions},
    )
    period = config.time_grain
    by_name = _check_names(job, config, period)
    for metric in config.metrics:
        _check_metric(con, job, config, metric, types, by_name)

    aggregates = [
        f"{_aggregate(metric, types)} AS {q(metric.name)}"
        for metric in config.metrics
        if metric.aggregation != "ratio"
    ]
    groups = [f"{_period(job, config, types)} AS {q(period)}"]
    groups += [q(dimension) for dimension in config.dimensions]
    inner = (
        f"SELECT {', '.join([*groups, *aggregates])} FROM {q(config.source)} "
        f"WHERE {q(config.time_column)} IS NOT NULL GROUP BY ALL"
    )
    outer = [q(period), *(q(dimension) for dimension in config.dimensions)]
    outer += [f"{_expression(metric, by_name)} AS {q(metric.name)}" for metric in config.metrics]
    order = ", ".join(str(position) for position in range(1, len(config.dimensions) + 2))
    return f"SELECT {', '.join(outer)} FROM ({inner}) AS aggregated ORDER BY {order}"


def _period(job: DatasetJob, config: MetricsConfig, types: dict[str, str]) -> str:
    """The SQL for the start of each row's period."""
    column = q(config.time_column)
    column_type = types[config.time_column]
    if column_type == "TIMESTAMP WITH TIME ZONE":
        column = f"timezone('UTC', {column})"
    elif column_type not in TIME_TYPES:
        raise TransformError(
            f"Job `{job.name}`: `metrics.time_column` `{config.time_column}` is {column_type}, "
            "not a date or timestamp. Cast it in an upstream job."
        )
    truncated = f"date_trunc('{config.time_grain}', {column})"
    return truncated if config.time_grain == "hour" else f"CAST({truncated} AS DATE)"


def _check_names(
    job: DatasetJob, config: MetricsConfig, period: str
) -> dict[str, MetricDefinition]:
    """Metric names must be unique and differ from the period and dimension columns."""
    by_name: dict[str, MetricDefinition] = {}
    for metric in config.metrics:
        if metric.name in by_name:
            raise TransformError(
                f"Job `{job.name}`: two metrics are named `{metric.name}`. Rename one of them."
            )
        if metric.name == period or metric.name in config.dimensions:
            raise TransformError(
                f"Job `{job.name}`: metric `{metric.name}` has the name of the "
                f"{'period' if metric.name == period else 'dimension'} column. Rename the metric."
            )
        by_name[metric.name] = metric
    if period in config.dimensions:
        raise TransformError(
            f"Job `{job.name}`: dimension `{period}` has the name of the period column "
            f"(named after `metrics.time_grain`). Rename the column in an upstream job."
        )
    return by_name


def _check_metric(
    con: duckdb.DuckDBPyConnection,
    job: DatasetJob,
    config: MetricsConfig,
    metric: MetricDefinition,
    types: dict[str, str],
    by_name: dict[str, MetricDefinition],
) -> None:
    """Errors naming the metric for arguments its aggregation cannot use."""
    where = f"Job `{job.name}`, metric `{metric.name}` ({metric.aggregation})"
    if metric.aggregation == "ratio":
        if metric.column or metric.filter:
            raise TransformError(
                f"{where}: a ratio takes `numerator` and `denominator` (metric names), not "
                "`column` or `filter`. Put the column and filter on those metrics."
            )
        for part in ("numerator", "denominator"):
            other = getattr(metric, part)
            if not other:
                raise TransformError(f"{where}: `{part}` is required: name another metric.")
            if other not in by_name or other == metric.name:
                known = ", ".join(f"`{name}`" for name in by_name if name != metric.name)
                raise TransformError(
                    f"{where}: `{part}` `{other}` is not another metric of this table. "
                    f"Metrics: {known}."
                )
        _expression(metric, by_name, where=where)  # reports ratio cycles
        return
    if metric.numerator or metric.denominator:
        raise TransformError(
            f"{where}: `numerator` and `denominator` apply to ratio metrics only; remove them."
        )
    if metric.column is None:
        if metric.aggregation != "count":
            raise TransformError(f"{where}: `column` is required: name the column to aggregate.")
    elif metric.column not in types:
        raise TransformError(
            f"{where}: column `{metric.column}` is not in input `{config.source}`. "
            f"Its columns are: {', '.join(f'`{name}`' for name in types)}."
        )
    try:
        con.sql(f"SELECT {_aggregate(metric, types)} FROM {q(config.source)}")
    except duckdb.Error as error:
        raise TransformError(f"{where}: cannot be computed: {error}") from None


def _aggregate(metric: MetricDefinition, types: dict[str, str]) -> str:
    """The aggregate expression of a non-ratio metric."""
    function = SQL_FUNCTIONS[metric.aggregation]
    if metric.column is None:
        argument = "*"
    elif metric.aggregation == "count_distinct":
        argument = f"DISTINCT {q(metric.column)}"
    else:
        argument = q(metric.column)
    expression = f"{function}({argument})"
    if metric.filter:
        expression += f" FILTER (WHERE {metric.filter})"
    if metric.aggregation == "sum" and metric.column and types[metric.column] in INTEGER_TYPES:
        # DuckDB sums integers as HUGEINT (decimal(38,0) in Arrow and Delta); BIGINT is what
        # consumers expect.
        expression = f"CAST({expression} AS BIGINT)"
    return expression


def _expression(
    metric: MetricDefinition,
    by_name: dict[str, MetricDefinition],
    where: str = "",
    seen: tuple[str, ...] = (),
) -> str:
    """The outer-query expression of a metric: its column, or a ratio of other metrics."""
    if metric.aggregation != "ratio":
        return q(metric.name)
    if metric.name in seen:
        cycle = " -> ".join(f"`{name}`" for name in [*seen, metric.name])
        raise TransformError(f"{where}: ratios refer to each other in a cycle: {cycle}.")
    assert metric.numerator is not None and metric.denominator is not None
    numerator = _expression(by_name[metric.numerator], by_name, where, (*seen, metric.name))
    denominator = _expression(by_name[metric.denominator], by_name, where, (*seen, metric.name))
    return f"(CAST({numerator} AS DOUBLE) / NULLIF(CAST({denominator} AS DOUBLE), 0))"
