"""Pipeline and job specifications: the pipeline file's contents as validated, frozen values.

A pipeline lives in `pipelines/<name>/pipeline.yaml`. Field names follow the feature plan verbatim;
cross-field rules are validation whose message names the field and says what to do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakebook.errors import SpecProblem, SpecValidationError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
NAME_HELP = "lowercase letters, digits and underscores, starting with a letter"

SourceType = Literal["file_upload", "local_path", "s3", "database", "api"]
IngestFormat = Literal["csv", "json", "jsonl", "parquet"]
Compression = Literal["snappy", "zstd", "gzip", "none"]
PartitionMode = Literal["date", "none"]
PartitionPattern = Literal["yyyy/MM/dd", "yyyy/MM", "yyyy"]
SchemaMode = Literal["infer", "user"]
ErrorHandling = Literal["fail", "quarantine"]
IncrementalMode = Literal["full", "incremental"]
ColumnType = Literal[
    "string", "integer", "bigint", "double", "decimal", "boolean", "date", "timestamp"
]
Layer = Literal["silver", "gold"]
DatasetType = Literal[
    "fact",
    "dimension",
    "reference",
    "snapshot",
    "event_log",
    "feature_set",
    "fact_aggregate",
    "metric_table",
    "mart",
    "ml_training_set",
    "vector_index",
    "export_feed",
]
SILVER_DATASET_TYPES = ("fact", "dimension", "reference", "snapshot", "event_log", "feature_set")
GOLD_DATASET_TYPES = (
    "fact_aggregate",
    "metric_table",
    "mart",
    "snapshot",
    "ml_training_set",
    "feature_set",
    "vector_index",
    "export_feed",
)
ChangePattern = Literal["append_only", "upsert", "full_refresh"]
RefreshMode = Literal["full_refresh", "overwrite_partition", "append", "upsert"]
TransformType = Literal[
    "sql",
    "scd2_dimension",
    "conform_sources",
    "metrics_aggregate",
    "snapshot",
    "ml_training_set",
    "vector_index",
    "export_feed",
]
TimeGrain = Literal["hour", "day", "week", "month", "quarter", "year"]
Aggregation = Literal["sum", "count", "count_distinct", "avg", "min", "max", "ratio"]
UseCase = Literal["bi", "ml", "rag", "export"]
Severity = Literal["info", "warn", "error", "critical"]
DQAction = Literal["warn", "drop", "quarantine", "fail"]
DQScope = Literal["ingest", "silver", "gold"]
CheckType = Literal[
    "not_null",
    "unique",
    "accepted_values",
    "range",
    "regex",
    "relationships",
    "custom_predicate",
    "row_count",
    "freshness",
    "custom_sql",
    "metric_threshold",
    "metric_change",
    "schema",
]
AutoFixType = Literal["trim", "lower", "upper", "default", "cast"]
ROW_LEVEL_CHECKS = (
    "not_null",
    "unique",
    "accepted_values",
    "range",
    "regex",
    "relationships",
    "custom_predicate",
)
FIXABLE_CHECKS = ("not_null", "accepted_values", "range", "regex", "relationships")
MAX_AGE_PATTERN = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE
)
MAX_AGE_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


class Spec(BaseModel):
    """Base of every spec: frozen, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(Spec):
    """One column of a user-declared schema."""

    name: str = Field(min_length=1, description="Column name as it appears after `rename_map`.")
    type: ColumnType = Field(description="Logical type; values are cast to it.")
    nullable: bool = Field(default=True, description="False rejects rows with no value here.")
    description: str = ""


class FileConfig(Spec):
    """Where a file source is and how to parse it (CSV options apply to `format: csv`)."""

    path: str | None = Field(
        default=None,
        description=(
            "File, folder or glob. For `local_path`, relative to the pipeline folder; "
            "for `file_upload`, relative to the workspace's `uploads/` folder."
        ),
    )
    s3_uri: str | None = Field(default=None, description="s3://bucket/prefix (source_type s3).")
    bucket: str | None = None
    prefix: str | None = None
    connection_id: str | None = Field(
        default=None, description="Named connection holding endpoint, region and credentials."
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    encoding: Literal["utf-8", "utf-8-sig", "latin-1"] = "utf-8"
    quote: str = Field(default='"', min_length=1, max_length=1)


class DbConfig(Spec):
    """A database source: a named connection and a table or a query."""

    connection_id: str = Field(min_length=1, description="Connection name from the workspace.")
    table_name: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> DbConfig:
        if (self.table_name is None) == (self.query is None):
            raise ValueError("set exactly one of `table_name` or `query` in `config.db`")
        return self


class ApiPagination(Spec):
    """How an API source pages through results."""

    page_param: str | None = None
    page_size: int | None = Field(default=None, ge=1)
    next_token_path: str | None = None


class ApiAuth(Spec):
    """API authentication; the secret comes from the named connection, never from this file."""

    type: Literal["none", "bearer", "basic", "api_key"] = "none"
    connection_id: str | None = None


class ApiWatermark(Spec):
    """The request parameter that carries the last watermark value."""

    param_name: str


class ApiConfig(Spec):
    """An HTTP API source."""

    url: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    auth: ApiAuth = Field(default_factory=ApiAuth)
    body: dict[str, Any] | None = None
    pagination: ApiPagination = Field(default_factory=ApiPagination)
    records_path: str | None = None
    watermark: ApiWatermark | None = None


class IngestConfig(Spec):
    """Source-specific settings; the one matching `source_type` is required."""

    file: FileConfig | None = None
    db: DbConfig | None = None
    api: ApiConfig | None = None


FILE_SOURCES = ("file_upload", "local_path", "s3")
WATERMARK_LAG_PATTERN = r"\d+(\.\d+)?( (second|minute|hour|day|week|month|year)s?)?"
TEXT_FORMATS = ("csv", "json", "jsonl")


class IngestJob(Spec):
    """An ingest job: reads a source into Landing (raw) and a Bronze Delta table."""

    name: str = Field(pattern=NAME_PATTERN, description=f"Job name ({NAME_HELP}).")
    description: str = ""
    source_type: SourceType
    format: IngestFormat = "csv"
    force_to_parquet: bool = Field(
        default=True,
        description=(
            "Convert text sources (csv/json) to typed Parquet columns in Bronze; off keeps every "
            "value as text. Default on for csv/json."
        ),
    )
    partition_mode: PartitionMode = "date"
    partition_pattern: PartitionPattern = "yyyy/MM/dd"
    filename_pattern: str | None = Field(
        default=None, description="Glob of file names to load from a folder or prefix."
    )
    compression: Compression = "snappy"
    landing_retention_days: int | None = Field(default=None, ge=1)
    schema_mode: SchemaMode = "infer"
    user_schema: list[ColumnSpec] | None = None
    error_handling: ErrorHandling = "fail"
    quarantine_path: str | None = None
    dedupe_keys: list[str] = Field(default_factory=list)
    incremental_mode: IncrementalMode = "full"
    watermark_column: str | None = None
    last_watermark_value: str | None = Field(
        default=None, description="Starting watermark when the ledger has none."
    )
    watermark_lag: str | None = Field(
        default=None,
        description=(
            "Look-back window re-read on every incremental run to catch late rows, e.g. "
            "`2 hours` or `3 days` (date/time columns) or `100` (numeric); re-read rows already "
            "in Bronze are de-duplicated."
        ),
    )
    max_invalid_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Fail the job when more than this share of rows is invalid (0.1 = 10%); "
            "default `c.Lakebook.max_invalid_ratio`."
        ),
    )
    rename_map: dict[str, str] = Field(default_factory=dict)
    is_reference: bool = False
    allow_empty_files: bool = Field(
        default=False,
        description=(
            "Landing check: a source file with no bytes fails the job (naming the file) unless "
            "this is true. File sources only."
        ),
    )
    data_quality: list[DQRule] = Field(
        default_factory=list,
        description=(
            "Bronze checks on the typed rows before the commit. A row-level rule without "
            "`action_on_violation` quarantines with `error_handling: quarantine`, else fails."
        ),
    )
    config: IngestConfig = Field(default_factory=IngestConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_force_to_parquet(cls, data: Any) -> Any:
        # The plan: force_to_parquet defaults to true for csv/json when not provided.
        if isinstance(data, dict) and "force_to_parquet" not in data:
            data = {**data, "force_to_parquet": data.get("format", "csv") in TEXT_FORMATS}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_rule_actions(cls, data: Any) -> Any:
        # Bronze layer default: row-level rules quarantine when the job quarantines, else fail.
        if not isinstance(data, dict) or data.get("error_handling") != "quarantine":
            return data
        rules = []
        for rule in data.get("data_quality") or []:
            if isinstance(rule, DQRule):
                unset = rule.row_level and "action_on_violation" not in rule.model_fields_set
            else:
                unset = isinstance(rule, dict) and "action_on_violation" not in rule
                unset = unset and rule.get("check_type") in ROW_LEVEL_CHECKS
            if unset and isinstance(rule, DQRule):
                rule = rule.model_copy(update={"action_on_violation": "quarantine"})
            elif unset:
                rule = {**rule, "action_on_violation": "quarantine"}
            rules.append(rule)
        return {**data, "data_quality": rules} if rules else data

    @model_validator(mode="after")
    def _cross_field_rules(self) -> IngestJob:
        problems = []
        if self.incremental_mode == "incremental" and not self.watermark_column:
            problems.append(
                "`watermark_column` is required when `incremental_mode` is `incremental`: "
                "name the column whose maximum marks how far the load got"
            )
        if self.watermark_lag and not re.fullmatch(WATERMARK_LAG_PATTERN, self.watermark_lag):
            problems.append(
                f"`watermark_lag` `{self.watermark_lag}` is not a duration: write a number, or a "
                "number and a unit such as `90 minutes`, `2 hours`, `3 days`"
            )
        if self.error_handling == "quarantine" and not self.quarantine_path:
            problems.append(
                "`quarantine_path` is required when `error_handling` is `quarantine`: "
                "give a lake path such as `quarantine/orders`"
            )
        if self.schema_mode == "user" and not self.user_schema:
            problems.append(
                "`user_schema` is required when `schema_mode` is `user`: list the columns with "
                "`name` and `type`, or set `schema_mode: infer`"
            )
        if self.source_type in ("file_upload", "local_path") and (
            self.config.file is None or not self.config.file.path
        ):
            problems.append(f"`config.file.path` is required for source_type `{self.source_type}`")
        if self.source_type == "s3" and (
            self.config.file is None or not (self.config.file.s3_uri or self.config.file.bucket)
        ):
            problems.append("`config.file.s3_uri` (or `bucket`) is required for source_type `s3`")
        if self.source_type == "database" and self.config.db is None:
            problems.append("`config.db` is required for source_type `database`")
        if self.source_type == "api" and self.config.api is None:
            problems.append("`config.api` is required for source_type `api`")
        for rule in self.data_quality:
            prefix = f"`data_quality` rule `{rule.name}`"
            if rule.scope not in (None, "ingest"):
                problems.append(f"{prefix}: an ingest job's rules have scope `ingest`")
            if rule.action_on_violation == "drop":
                problems.append(
                    f"{prefix}: Bronze keeps every row it reads, so rules cannot `drop`; use "
                    "`quarantine` (with `error_handling: quarantine`), `warn` or `fail`"
                )
            if rule.action_on_violation == "quarantine" and self.error_handling != "quarantine":
                problems.append(
                    f"{prefix}: `quarantine` needs `error_handling: quarantine` and a "
                    "`quarantine_path`; or use `fail` or `warn`"
                )
        if self.user_schema:
            names = [column.name for column in self.user_schema]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                problems.append(f"`user_schema` lists column(s) twice: {', '.join(duplicates)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def dataset(self) -> str:
        """The Bronze dataset this job writes."""
        return f"bronze.{self.name}"


class DatasetInput(Spec):
    """An upstream dataset and the alias the job's SQL uses for it."""

    dataset: str = Field(pattern=r"^(bronze|silver|gold)\.[a-z][a-z0-9_]*$")
    alias: str | None = Field(default=None, pattern=NAME_PATTERN)

    @property
    def name(self) -> str:
        """The name the SQL sees: the alias, or the dataset's table name."""
        return self.alias or self.dataset.split(".", 1)[1]


class AutoFix(Spec):
    """A safe fix applied to a rule's failing values before the rule is checked again."""

    type: AutoFixType
    value: str | int | float | bool | None = Field(
        default=None, description="The replacement of a `default` fix."
    )
    to_type: str | None = Field(
        default=None, description="The DuckDB type a `cast` fix converts the column to."
    )


class DQRule(Spec):
    """A data-quality rule: a named check over the job's output, and what to do on violation.

    Row-level checks (`ROW_LEVEL_CHECKS`) flag individual rows and may `drop` or `quarantine`
    them; the other checks judge the table as a whole and can only `warn` or `fail`.
    """

    name: str = Field(pattern=NAME_PATTERN)
    check_type: CheckType
    scope: DQScope | None = Field(default=None, description="Layer checked; default the job's.")
    target: str | None = Field(default=None, description="What is checked, as free text.")
    column: str | None = None
    columns: list[str] = Field(default_factory=list)
    values: list[str | int | float] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    pattern: str | None = Field(default=None, description="Regex a whole value must match.")
    to: str | None = Field(
        default=None,
        pattern=r"^(bronze|silver|gold)\.[a-z][a-z0-9_]*$",
        description="Dataset a relationships rule points to.",
    )
    field: str | None = Field(default=None, description="Column of `to` the values must exist in.")
    date_column: str | None = Field(default=None, description="Count rows per day of it.")
    max_age: str | None = Field(default=None, description="Freshness bound, e.g. `24 hours`.")
    metric: str | None = Field(default=None, description="SQL aggregate, e.g. `sum(amount)`.")
    max_change: float | None = Field(default=None, ge=0)
    max_change_pct: float | None = Field(default=None, ge=0)
    columns_expected: dict[str, str] = Field(default_factory=dict)
    condition: str | None = Field(
        default=None,
        description="custom_predicate: SQL true for a good row; custom_sql: a query of bad rows.",
    )
    severity: Severity = "error"
    action_on_violation: DQAction = "fail"
    auto_fix: AutoFix | None = None
    notification: str | None = Field(default=None, description="Channel name (stored only).")
    sample_size: int = Field(default=20, ge=0, le=1000)

    @model_validator(mode="after")
    def _check_arguments(self) -> DQRule:
        prefix = f"rule `{self.name}`"
        needs_column = (
            "not_null",
            "accepted_values",
            "range",
            "regex",
            "relationships",
            "freshness",
        )
        if self.check_type in needs_column and not self.column:
            raise ValueError(f"{prefix}: `column` is required for `{self.check_type}`")
        if self.check_type == "unique" and not (self.column or self.columns):
            raise ValueError(f"{prefix}: `column` or `columns` is required for unique")
        if self.check_type == "accepted_values" and not self.values:
            raise ValueError(f"{prefix}: `values` lists the accepted values")
        bounded = ("range", "row_count", "metric_threshold")
        if self.check_type in bounded and self.min is None and self.max is None:
            raise ValueError(f"{prefix}: give `min`, `max` or both")
        required: dict[str, tuple[str, ...]] = {
            "regex": ("pattern",),
            "relationships": ("to", "field"),
            "freshness": ("max_age",),
            "custom_predicate": ("condition",),
            "custom_sql": ("condition",),
            "metric_threshold": ("metric",),
            "metric_change": ("metric",),
            "schema": ("columns_expected",),
        }
        for name in required.get(self.check_type, ()):
            if not getattr(self, name):
                raise ValueError(f"{prefix}: `{name}` is required for `{self.check_type}`")
        if self.check_type == "metric_change" and (
            self.max_change is None and self.max_change_pct is None
        ):
            raise ValueError(f"{prefix}: give `max_change`, `max_change_pct` or both")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(f"{prefix}: `pattern` is not a regex: {error}") from None
        if self.max_age is not None and self.max_age_seconds is None:
            raise ValueError(
                f"{prefix}: `max_age` `{self.max_age}` is not a duration; write e.g. "
                "`30 minutes`, `24 hours` or `2 days`"
            )
        if self.check_type not in ROW_LEVEL_CHECKS and self.action_on_violation in (
            "drop",
            "quarantine",
        ):
            raise ValueError(
                f"{prefix}: a {self.check_type} rule checks the table as a whole and cannot "
                f"`{self.action_on_violation}` rows; use `warn` or `fail`"
            )
        if self.auto_fix is not None:
            self._check_auto_fix(prefix)
        return self

    def _check_auto_fix(self, prefix: str) -> None:
        """An auto_fix needs a single-column check and the fields its type uses."""
        assert self.auto_fix is not None
        if self.check_type not in FIXABLE_CHECKS:
            fixable = ", ".join(f"`{check}`" for check in FIXABLE_CHECKS)
            raise ValueError(
                f"{prefix}: `auto_fix` applies to single-column checks ({fixable}), "
                f"not `{self.check_type}`"
            )
        if self.auto_fix.type == "default" and self.auto_fix.value is None:
            raise ValueError(f"{prefix}: `auto_fix.value` is required for a `default` fix")
        if self.auto_fix.type == "cast" and not self.auto_fix.to_type:
            raise ValueError(f"{prefix}: `auto_fix.to_type` is required for a `cast` fix")

    @property
    def key_columns(self) -> list[str]:
        """The columns a unique rule covers."""
        return self.columns or ([self.column] if self.column else [])

    @property
    def row_level(self) -> bool:
        """True when the rule flags individual rows (and so may drop or quarantine them)."""
        return self.check_type in ROW_LEVEL_CHECKS

    @property
    def max_age_seconds(self) -> float | None:
        """`max_age` in seconds, or None when it is unset or not a duration."""
        match = MAX_AGE_PATTERN.match(self.max_age or "")
        if not match:
            return None
        return float(match.group(1)) * MAX_AGE_SECONDS[match.group(2).lower()]


class Scd2Config(Spec):
    """SCD type 2 dimension: one row per version of each business key."""

    business_key_columns: list[str] = Field(min_length=1)
    change_detection: Literal["columns", "hash"] = Field(
        default="columns",
        description="Compare `change_detection_columns` one by one, or a hash of them.",
    )
    change_detection_columns: list[str] = Field(
        default_factory=list, description="Tracked columns; empty means every non-key column."
    )
    effective_time_column: str | None = Field(
        default=None, description="Input column giving when a version starts; default the run time."
    )
    effective_from_column: str = "effective_from"
    effective_to_column: str = "effective_to"
    is_current_column: str = "is_current"
    hash_column: str = "row_hash"
    hard_deletes: Literal["ignore", "close", "tombstone"] = Field(
        default="ignore",
        description=(
            "Keys missing from the input: keep them current, close their current version, or "
            "close it and add a tombstone row."
        ),
    )


class ConformMapping(Spec):
    """How one input's columns map onto the conformed columns."""

    input: str = Field(description="An input's name (its alias, or table name).")
    columns: dict[str, str] = Field(
        description="Conformed column → the input's column (or a SQL expression over it)."
    )
    source_system: str | None = Field(
        default=None, description="Value of the source-system column; default the input's name."
    )


class ConformConfig(Spec):
    """Unify several inputs into one entity."""

    key_columns: list[str] = Field(min_length=1)
    mappings: list[ConformMapping] = Field(min_length=2)
    resolution: Literal["priority", "latest"] = "priority"
    priority: list[str] = Field(
        default_factory=list, description="Input names, most trusted first (resolution priority)."
    )
    updated_at_column: str | None = Field(
        default=None, description="Conformed column deciding `latest` wins."
    )
    source_system_column: str | None = "source_system"


class MetricDefinition(Spec):
    """One metric of a metrics table."""

    name: str = Field(pattern=NAME_PATTERN)
    aggregation: Aggregation
    column: str | None = None
    numerator: str | None = Field(default=None, description="Metric name (ratio only).")
    denominator: str | None = Field(default=None, description="Metric name (ratio only).")
    filter: str | None = Field(default=None, description="SQL condition on the source rows.")


class MetricsConfig(Spec):
    """Group a fact by a time grain and dimensions and compute metrics."""

    source: str = Field(description="The input holding the facts.")
    time_column: str
    time_grain: TimeGrain = "day"
    dimensions: list[str] = Field(default_factory=list)
    metrics: list[MetricDefinition] = Field(min_length=1)


class SnapshotConfig(Spec):
    """An as-of table: each key's row as it stood on a date."""

    source: str
    as_of: str | None = Field(default=None, description="YYYY-MM-DD; default the run date.")
    key_columns: list[str] = Field(min_length=1)
    valid_from_column: str = Field(description="When a row version became valid.")
    valid_to_column: str | None = Field(
        default=None, description="When it stopped (SCD2 inputs); else the next version's start."
    )
    snapshot_date_column: str = "snapshot_date"


class FeatureSet(Spec):
    """Features taken from one input, as they stood before each label's time."""

    input: str
    key_columns: list[str] = Field(min_length=1, description="Join keys shared with the base.")
    timestamp_column: str = Field(description="When the feature value became known.")
    columns: list[str] = Field(min_length=1)
    prefix: str = ""


class MLTrainingConfig(Spec):
    """Label rows joined point-in-time correctly to features."""

    base: str = Field(description="The input with one row per labelled example.")
    entity_columns: list[str] = Field(min_length=1)
    label_column: str
    label_timestamp_column: str
    features: list[FeatureSet] = Field(min_length=1)


class VectorIndexConfig(Spec):
    """Chunk a text column and embed the chunks, for retrieval."""

    source: str
    id_column: str
    text_column: str
    chunk_size: int = Field(default=500, ge=20, description="Characters per chunk.")
    chunk_overlap: int = Field(default=50, ge=0)
    embedding_model: str = Field(
        default="lakebook-hash-256",
        description=(
            "`lakebook-hash-256` (built in, no dependencies) or `all-MiniLM-L6-v2` "
            "(the `embeddings` extra)."
        ),
    )


class ExportConfig(Spec):
    """Files for consumers, written beside the dataset's table."""

    source: str
    file_format: Literal["csv", "parquet", "json"] = "csv"
    path: str = Field(description="Folder under the lake's `exports/`.")


RESERVED_LAKE_FOLDERS = (
    "bronze",
    "silver",
    "gold",
    "landing",
    "quarantine",
    "exports",
    "_locks",
    "_locations",
)
REFRESH_WINDOW_PATTERN = r"\s*[1-9]\d*\s*(day|days|week|weeks)\s*"

TRANSFORM_CONFIG_FIELD = {
    "scd2_dimension": "scd2",
    "conform_sources": "conform",
    "metrics_aggregate": "metrics",
    "snapshot": "snapshot",
    "ml_training_set": "ml_training",
    "vector_index": "vector_index",
    "export_feed": "export",
}


class DatasetJob(Spec):
    """A silver or gold dataset job: SQL over upstream datasets, written as one Delta commit."""

    name: str = Field(pattern=NAME_PATTERN, description=f"Dataset name ({NAME_HELP}).")
    description: str = ""
    layer: Layer
    dataset_type: DatasetType = Field(
        default="fact", description="Default `fact` for silver, `fact_aggregate` for gold."
    )
    grain: str = ""
    primary_use_case: UseCase | None = None
    change_pattern: ChangePattern = "full_refresh"
    inputs: list[DatasetInput] = Field(min_length=1)
    transform_type: TransformType = "sql"
    sql_text: str | None = Field(default=None, description="The SELECT (transform_type sql).")
    scd2: Scd2Config | None = None
    conform: ConformConfig | None = None
    metrics: MetricsConfig | None = None
    snapshot: SnapshotConfig | None = None
    ml_training: MLTrainingConfig | None = None
    vector_index: VectorIndexConfig | None = None
    export: ExportConfig | None = None
    target_schema: list[ColumnSpec] | None = Field(
        default=None, description="The output's columns and types; left out, the result's own."
    )
    refresh_mode: RefreshMode = "full_refresh"
    refresh_window: str | None = Field(
        default=None,
        description="overwrite_partition: how far back partitions are rebuilt, e.g. `3 days`.",
    )
    unique_key: list[str] = Field(
        default_factory=list, description="Columns identifying a row (upsert merges on them)."
    )
    partitioning: list[str] = Field(default_factory=list)
    output_path: str | None = Field(
        default=None,
        description=(
            "Where the table lives, relative to the lake (default `<layer>/<name>`); the dataset "
            "keeps its `<layer>.<name>` address."
        ),
    )
    format: Literal["delta"] = "delta"
    compression: Compression = "snappy"
    data_quality: list[DQRule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_dataset_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dataset_type" not in data and data.get("layer") == "gold":
            data = {**data, "dataset_type": "fact_aggregate"}
        return data

    @field_validator("sql_text")
    @classmethod
    def _sql_parses(cls, value: str | None) -> str | None:
        from lakebook.sql import sql_parse_problem

        if value is None:
            return value
        problem = sql_parse_problem(value)
        if problem:
            raise ValueError(f"`sql_text` does not parse: {problem}")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> DatasetJob:
        allowed = SILVER_DATASET_TYPES if self.layer == "silver" else GOLD_DATASET_TYPES
        if self.dataset_type not in allowed:
            raise ValueError(
                f"`dataset_type` `{self.dataset_type}` is not a {self.layer} type; "
                f"use one of: {', '.join(allowed)}"
            )
        names = [item.name for item in self.inputs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"`inputs` use the name(s) {', '.join(duplicates)} twice: add aliases")
        problems = []
        if self.transform_type == "sql" and not self.sql_text:
            problems.append("`sql_text` is required when `transform_type` is `sql`")
        if self.target_schema is not None and not self.target_schema:
            problems.append(
                "`target_schema` is empty: list the output columns with `name` and `type`, "
                "or leave the field out to keep the result's own columns"
            )
        if self.output_path is not None:
            parts = [part for part in self.output_path.split("/") if part not in ("", ".")]
            if self.output_path.startswith("/") or ".." in parts or not parts:
                problems.append(
                    f"`output_path` `{self.output_path}` must be a path inside the lake, "
                    "relative to it"
                )
            elif parts[0] in RESERVED_LAKE_FOLDERS:
                problems.append(
                    f"`output_path` `{self.output_path}` is inside `{parts[0]}/`, which lakebook "
                    "manages (other datasets live there); choose another folder, e.g. `shared/`"
                )
        if self.transform_type != "sql" and self.sql_text is not None:
            problems.append(
                f"`sql_text` only applies to transform_type `sql`; `{self.transform_type}` "
                f"is configured in `{TRANSFORM_CONFIG_FIELD[self.transform_type]}`: remove it"
            )
        if self.transform_type == "scd2_dimension" and self.refresh_mode != "full_refresh":
            problems.append(
                "an SCD2 dimension keeps its whole history itself: use `refresh_mode: "
                "full_refresh` (the default)"
            )
        if self.refresh_window is not None and not re.fullmatch(
            REFRESH_WINDOW_PATTERN, self.refresh_window, re.IGNORECASE
        ):
            problems.append(
                f"`refresh_window` `{self.refresh_window}` is not a window: write a positive "
                "number of days or weeks, e.g. `3 days` or `2 weeks`"
            )
        config_field = TRANSFORM_CONFIG_FIELD.get(self.transform_type)
        if config_field and getattr(self, config_field) is None:
            problems.append(
                f"`{config_field}` is required when `transform_type` is `{self.transform_type}`"
            )
        for other, field_name in TRANSFORM_CONFIG_FIELD.items():
            if other != self.transform_type and getattr(self, field_name) is not None:
                problems.append(
                    f"`{field_name}` only applies to transform_type `{other}`; remove it"
                )
        if self.refresh_mode == "upsert" and not self.unique_key:
            problems.append("`unique_key` is required when `refresh_mode` is `upsert`")
        if self.refresh_mode == "overwrite_partition" and not self.partitioning:
            problems.append(
                "`partitioning` (a date column) is required when `refresh_mode` is "
                "`overwrite_partition`"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def dataset(self) -> str:
        """The dataset this job writes."""
        return f"{self.layer}.{self.name}"


class Schedule(Spec):
    """When the pipeline runs on its own."""

    cron: str
    timezone: str = "UTC"
    enabled: bool = True


class PipelineSpec(Spec):
    """A pipeline (the plan's "workflow"): its jobs and metadata."""

    name: str = Field(pattern=NAME_PATTERN, description=f"Pipeline name ({NAME_HELP}).")
    description: str = ""
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    ingest_jobs: list[IngestJob] = Field(default_factory=list)
    dataset_jobs: list[DatasetJob] = Field(default_factory=list)

    def job(self, name: str) -> IngestJob | DatasetJob:
        """The job called `name`, or KeyError."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    @property
    def jobs(self) -> list[IngestJob | DatasetJob]:
        """All jobs, ingest jobs first."""
        return [*self.ingest_jobs, *self.dataset_jobs]


def _describe_location(loc: tuple[str | int, ...], data: dict[str, Any]) -> str:
    """Turn pydantic's error location into "job `orders` → field `config.file.path`"."""
    if len(loc) >= 2 and loc[0] in ("ingest_jobs", "dataset_jobs") and isinstance(loc[1], int):
        group, index = str(loc[0]), loc[1]
        jobs = data.get(group) or []
        job_name = None
        if index < len(jobs) and isinstance(jobs[index], dict):
            job_name = jobs[index].get("name")
        where = f"job `{job_name}`" if job_name else f"{group}[{index}]"
        field = ".".join(str(part) for part in loc[2:] if not str(part).startswith("function-"))
        return f"{where}, field `{field}`" if field else where
    field = ".".join(str(part) for part in loc)
    return f"field `{field}`" if field else "pipeline"


def problems_from_validation_error(
    error: ValidationError, data: dict[str, Any]
) -> list[SpecProblem]:
    """Readable problems from a pydantic error, each naming the job and the field."""
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif item["type"] == "missing":
            message = "this field is required"
        problems.append(SpecProblem(_describe_location(tuple(item["loc"]), data), message))
    return problems


def parse_pipeline(data: Any, source: str = "pipeline") -> PipelineSpec:
    """Validate a pipeline document; raise SpecValidationError listing every problem."""
    if not isinstance(data, dict):
        raise SpecValidationError(
            source, [SpecProblem("", "expected a mapping of pipeline fields")]
        )
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as error:
        raise SpecValidationError(source, problems_from_validation_error(error, data)) from None
    problems = [
        SpecProblem(f"job `{name}`", "two jobs have this name; job names must be unique")
        for name in sorted({job.name for job in spec.jobs if _count(spec, job.name) > 1})
    ]
    paths = [job.output_path.strip("/") for job in spec.dataset_jobs if job.output_path]
    problems += [
        SpecProblem("field `output_path`", f"two jobs write to `{path}`; give each its own folder")
        for path in sorted({path for path in paths if paths.count(path) > 1})
    ]
    if problems:
        raise SpecValidationError(source, problems)
    return spec


def _count(spec: PipelineSpec, name: str) -> int:
    return sum(1 for job in spec.jobs if job.name == name)


def parse_yaml(text: str) -> Any:
    """YAML as Python data, safely; with libyaml's C parser where installed (10x faster)."""
    return yaml.load(text, Loader=SAFE_LOADER)


SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_pipeline_file(path: Path) -> PipelineSpec:
    """Read and validate `pipeline.yaml`."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecValidationError(
            str(path), [SpecProblem(where, f"not valid YAML: {error}")]
        ) from None
    spec = parse_pipeline(data, str(path))
    if spec.name != path.parent.name:
        raise SpecValidationError(
            str(path),
            [
                SpecProblem(
                    "field `name`",
                    f"`{spec.name}` differs from the folder name `{path.parent.name}`; "
                    "make them the same",
                )
            ],
        )
    return spec


def pipeline_data(spec: PipelineSpec) -> dict[str, Any]:
    """The pipeline as plain data, without fields left at their defaults."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    # force_to_parquet's default depends on `format`, so compare with that, not the field default.
    for job, dumped in zip(spec.ingest_jobs, data.get("ingest_jobs", []), strict=True):
        dumped.pop("force_to_parquet", None)
        if job.force_to_parquet != (job.format in TEXT_FORMATS):
            dumped["force_to_parquet"] = job.force_to_parquet
    return data


def dump_pipeline(spec: PipelineSpec) -> str:
    """The pipeline as YAML, without fields left at their defaults."""
    return yaml.safe_dump(pipeline_data(spec), sort_keys=False, allow_unicode=True)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the specs; the sidebar generates its forms from these."""
    return {
        "pipeline": PipelineSpec.model_json_schema(),
        "ingest_job": IngestJob.model_json_schema(),
        "dataset_job": DatasetJob.model_json_schema(),
    }


def is_valid_name(name: str) -> bool:
    """True when `name` is usable as a pipeline, job or dataset name."""
    return re.match(NAME_PATTERN, name) is not None
