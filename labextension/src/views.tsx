/**
 * The sidebar's views. They render the model and call its methods; they hold no state of their
 * own beyond a form's draft.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { FormComponent } from '@jupyterlab/ui-components';
import type { ReadonlyJSONObject } from '@lumino/coreutils';
import type { RegistryWidgetsType } from '@rjsf/utils';
import { customizeValidator } from '@rjsf/validator-ajv8';
import React, { useEffect, useState } from 'react';

import type { IIncident, IJobRun, IRun, Json, JobKind } from './api';
import { formatCount, formatDate, formatDuration, text } from './format';
import { IError, isActive, LakebookModel } from './model';
import {
  datasetFormSchema,
  formReady,
  ingestFormSchema,
  ISchema,
  normalizeSchema,
  pruneEmpty,
  SOURCE_SECTION,
  TRANSFORM_CONFIG,
  uiSchemaFor
} from './schema';
import { Badge, ErrorBox, SqlWidget, StatusBadge } from './widgets';

/** What the views need besides the model. */
export interface IViewProps {
  model: LakebookModel;
  /** Open a file (path under the server's root) as a JupyterLab document. */
  openPath: (path: string) => void;
}

const WIDGETS: RegistryWidgetsType = { sql: SqlWidget };
/** Checks a form against its schema before it is sent (the server checks again). */
const validator = customizeValidator<ReadonlyJSONObject>();

export function Sidebar(props: IViewProps): JSX.Element {
  const { model } = props;
  const view = model.view;
  const top = view.name === 'incidents' || view.name === 'incident' ? 'incidents' : 'pipelines';
  return (
    <div className="lb-sidebar">
      <nav className="lb-nav">
        <button
          className={top === 'pipelines' ? 'lb-tab lb-tab-active' : 'lb-tab'}
          onClick={() => model.navigate({ name: 'pipelines' })}
        >
          Pipelines
        </button>
        <button
          className={top === 'incidents' ? 'lb-tab lb-tab-active' : 'lb-tab'}
          onClick={() => model.navigate({ name: 'incidents' })}
        >
          Incidents
        </button>
      </nav>
      <ErrorBox error={model.errors.load} />
      <div className="lb-body">{renderView(props)}</div>
    </div>
  );
}

function renderView(props: IViewProps): JSX.Element {
  const view = props.model.view;
  switch (view.name) {
    case 'pipelines':
      return <PipelinesList {...props} />;
    case 'new-pipeline':
      return <NewPipelineForm {...props} />;
    case 'pipeline':
      return <PipelinePage {...props} pipeline={view.pipeline} />;
    case 'job':
      return view.kind === 'ingest_jobs' ? (
        <IngestJobForm {...props} pipeline={view.pipeline} job={view.job} />
      ) : (
        <DatasetJobForm
          {...props}
          pipeline={view.pipeline}
          job={view.job}
          layer={view.layer ?? 'silver'}
        />
      );
    case 'rules':
      return <RulesTab {...props} pipeline={view.pipeline} kind={view.kind} job={view.job} />;
    case 'incidents':
      return <IncidentsView {...props} />;
    case 'incident':
      return <IncidentDetail {...props} id={view.id} />;
  }
}

// pipelines list ------------------------------------------------------------------------------
export const PAINT_MARK = 'lakebook:pipelines-painted';

function PipelinesList({ model }: IViewProps): JSX.Element {
  const pipelines = model.pipelines;
  useEffect(() => {
    if (pipelines && model.firstPaint === null) {
      // measured by the browser test: panel shown -> list painted
      model.firstPaint = performance.mark(PAINT_MARK).startTime;
    }
  }, [pipelines, model]);
  return (
    <div className="lb-pipelines">
      <div className="lb-toolbar">
        <h2>Pipelines</h2>
        <button className="lb-button" onClick={() => model.navigate({ name: 'new-pipeline' })}>
          New pipeline
        </button>
      </div>
      {pipelines === null ? (
        <div className="lb-muted">Loading…</div>
      ) : pipelines.length === 0 ? (
        <div className="lb-muted">No pipelines yet: create one, or run `lakebook init`.</div>
      ) : (
        <ul className="lb-list" data-lakebook="pipelines">
          {pipelines.map(item => (
            <li
              key={item.name}
              className="lb-list-item"
              data-pipeline={item.name}
              onClick={() => model.navigate({ name: 'pipeline', pipeline: item.name })}
            >
              <div className="lb-row">
                <span className="lb-name">{item.name}</span>
                <StatusBadge status={item.last_run?.status} />
              </div>
              <div className="lb-row lb-muted">
                <span>{item.description ?? ''}</span>
                <span className="lb-when">{formatDate(item.last_run?.started_at)}</span>
              </div>
              {!item.valid && (
                <div className="lb-warning">
                  {item.problems.length} problem{item.problems.length === 1 ? '' : 's'}:{' '}
                  {item.problems[0]?.message}
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function NewPipelineForm({ model }: IViewProps): JSX.Element {
  const [draft, setDraft] = useState<Json>({});
  if (!model.schemas?.pipeline) {
    return <div className="lb-muted">Loading…</div>;
  }
  const full = normalizeSchema(model.schemas.pipeline);
  const properties = { ...(full.properties ?? {}) };
  delete properties.ingest_jobs;
  delete properties.dataset_jobs;
  const schema = formReady({ ...full, properties, required: ['name'] });
  return (
    <div className="lb-form" data-lakebook="pipeline-form">
      <BackLink onClick={() => model.navigate({ name: 'pipelines' })} label="Pipelines" />
      <h2>New pipeline</h2>
      <SpecForm
        schema={schema}
        data={draft}
        uiSchema={{ description: { 'ui:widget': 'textarea' } }}
        onChange={setDraft}
        onSubmit={data => void model.createPipeline(data)}
        error={model.errors.form}
        submitLabel="Create pipeline"
      />
    </div>
  );
}

// pipeline page -------------------------------------------------------------------------------
function PipelinePage(props: IViewProps & { pipeline: string }): JSX.Element {
  const { model, pipeline } = props;
  const spec = model.pipeline?.name === pipeline ? model.pipeline : null;
  if (!spec) {
    return (
      <div>
        <BackLink onClick={() => model.navigate({ name: 'pipelines' })} label="Pipelines" />
        <div className="lb-muted">Loading {pipeline}…</div>
      </div>
    );
  }
  const ingest = spec.ingest_jobs ?? [];
  const datasets = spec.dataset_jobs ?? [];
  const running = model.runs.some(isActive);
  return (
    <div className="lb-pipeline" data-lakebook="pipeline-page">
      <BackLink onClick={() => model.navigate({ name: 'pipelines' })} label="Pipelines" />
      <div className="lb-toolbar">
        <h2>{spec.name}</h2>
        <button
          className="lb-button lb-primary"
          data-lakebook="run-pipeline"
          disabled={running}
          onClick={() => void model.runPipeline(pipeline)}
        >
          {running ? 'Running…' : 'Run pipeline'}
        </button>
      </div>
      {spec.description ? <p className="lb-muted">{spec.description}</p> : null}
      <ErrorBox error={model.errors.run} />
      <ErrorBox error={model.errors.pipeline} />
      <JobSection
        {...props}
        title="Ingest"
        kind="ingest_jobs"
        jobs={ingest}
        onAdd={() => model.navigate({ name: 'job', pipeline, kind: 'ingest_jobs', job: null })}
      />
      {(['silver', 'gold'] as const).map(layer => (
        <JobSection
          key={layer}
          {...props}
          title={layer === 'silver' ? 'Silver' : 'Gold'}
          kind="dataset_jobs"
          jobs={datasets.filter(job => job.layer === layer)}
          onAdd={() =>
            model.navigate({ name: 'job', pipeline, kind: 'dataset_jobs', job: null, layer })
          }
        />
      ))}
      <RunsList {...props} runs={model.runs} />
      <div className="lb-danger-zone">
        <button
          className="lb-link lb-danger"
          onClick={() =>
            void confirmDelete(
              `Delete pipeline ${pipeline}?`,
              'Its pipeline file goes; its tables and run records stay in the lake.'
            ).then(yes => yes && model.deletePipeline(pipeline))
          }
        >
          Delete pipeline
        </button>
      </div>
    </div>
  );
}

function JobSection(
  props: IViewProps & {
    pipeline: string;
    title: string;
    kind: JobKind;
    jobs: Json[];
    onAdd: () => void;
  }
): JSX.Element {
  const { model, pipeline, kind, jobs, title, openPath } = props;
  const openNotebook = async (job: string): Promise<void> => {
    const path = await model.jobNotebook(pipeline, kind, job);
    if (path) {
      openPath(path);
    }
  };
  return (
    <section className="lb-section" data-layer={title.toLowerCase()}>
      <div className="lb-toolbar">
        <h3>{title}</h3>
        <button className="lb-link" onClick={props.onAdd}>
          + {kind === 'ingest_jobs' ? 'Ingest job' : `${title} dataset`}
        </button>
      </div>
      {jobs.length === 0 ? <div className="lb-muted">None yet.</div> : null}
      <ul className="lb-list">
        {jobs.map(job => {
          const name = text(job.name);
          const rules = Array.isArray(job.data_quality) ? job.data_quality.length : 0;
          return (
            <li key={name} className="lb-job" data-job={name}>
              <div className="lb-row">
                <span className="lb-name">{name}</span>
                <span className="lb-actions">
                  <button
                    className="lb-link"
                    onClick={() => model.navigate({ name: 'job', pipeline, kind, job: name })}
                  >
                    Edit
                  </button>
                  <button
                    className="lb-link"
                    onClick={() => model.navigate({ name: 'rules', pipeline, kind, job: name })}
                  >
                    Data quality ({rules})
                  </button>
                  <button className="lb-link" onClick={() => void openNotebook(name)}>
                    Notebook
                  </button>
                  <button
                    className="lb-link"
                    onClick={() => void model.runJob(pipeline, kind, name)}
                  >
                    Run
                  </button>
                  <button
                    className="lb-link lb-danger"
                    onClick={() =>
                      void confirmDelete(
                        `Delete job ${name}?`,
                        'It is removed from the pipeline file; its table stays in the lake.'
                      ).then(yes => yes && model.deleteJob(pipeline, kind, name))
                    }
                  >
                    Delete
                  </button>
                </span>
              </div>
              <div className="lb-badges">
                {kind === 'ingest_jobs' ? ingestBadges(job, model) : datasetBadges(job, model)}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** A job field's value, or its default from the spec's schema when the file leaves it out. */
function field(job: Json, name: string, model: LakebookModel, schema: string): unknown {
  if (job[name] !== undefined) {
    return job[name];
  }
  const properties = model.schemas?.[schema]?.properties;
  return properties?.[name]?.default;
}

function ingestBadges(job: Json, model: LakebookModel): JSX.Element[] {
  const get = (name: string): unknown => field(job, name, model, 'ingest_job');
  const format = text(get('format') ?? 'csv');
  const toParquet = get('force_to_parquet') !== false && format !== 'parquet';
  const partition = text(get('partition_mode') ?? 'date');
  const badges = [
    <Badge key="source" label={text(job.source_type)} title="source type" />,
    <Badge key="format" label={toParquet ? `${format}→parquet` : format} title="format" />,
    <Badge
      key="partition"
      label={
        partition === 'none' ? 'unpartitioned' : `by ${text(get('partition_pattern') ?? partition)}`
      }
      title="partitioning"
    />,
    <Badge key="mode" label={text(get('incremental_mode') ?? 'full')} title="load mode" />
  ];
  if (job.is_reference) {
    badges.push(<Badge key="ref" label="reference" title="loaded before the other ingests" />);
  }
  return badges;
}

function datasetBadges(job: Json, model: LakebookModel): JSX.Element[] {
  const get = (name: string): unknown => field(job, name, model, 'dataset_job');
  const inputs = Array.isArray(job.inputs) ? (job.inputs as Json[]) : [];
  return [
    <Badge key="type" label={text(get('dataset_type') ?? 'fact')} title="dataset type" />,
    <Badge key="transform" label={text(get('transform_type') ?? 'sql')} title="transform" />,
    <Badge key="refresh" label={text(get('refresh_mode') ?? 'full_refresh')} title="refresh" />,
    ...inputs.map(input => (
      <Badge key={text(input.dataset)} label={`← ${text(input.dataset)}`} title="input" />
    ))
  ];
}

function RunsList(props: IViewProps & { runs: IRun[] }): JSX.Element {
  const { model, runs } = props;
  const jobCount =
    (model.pipeline?.ingest_jobs?.length ?? 0) + (model.pipeline?.dataset_jobs?.length ?? 0);
  return (
    <section className="lb-section" data-lakebook="runs">
      <h3>Recent runs</h3>
      {runs.length === 0 ? <div className="lb-muted">Not run yet.</div> : null}
      <ul className="lb-list">
        {runs.map(run => {
          const detail = model.expanded.has(run.id) ? model.runDetails[run.id] : undefined;
          // a run of some jobs only (e.g. one job's Run button) says which
          const scope =
            run.job ??
            (run.jobs_run && run.jobs_run.length < jobCount ? run.jobs_run.join(', ') : '');
          return (
            <li key={run.id} className="lb-run" data-run={run.id} data-status={run.status}>
              <div className="lb-row lb-clickable" onClick={() => void model.toggleRun(run.id)}>
                <span>
                  {model.expanded.has(run.id) ? '▾' : '▸'} {formatDate(run.started_at)}
                  {scope ? ` · ${scope}` : ''}
                </span>
                <span>
                  <span className="lb-muted">{formatDuration(run.duration_seconds)}</span>{' '}
                  <StatusBadge status={run.status} />
                </span>
              </div>
              {run.error ? <div className="lb-warning">{run.error}</div> : null}
              {detail?.jobs ? <JobRunsTable {...props} jobs={detail.jobs} /> : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function JobRunsTable(props: IViewProps & { jobs: IJobRun[] }): JSX.Element {
  const { jobs, openPath } = props;
  return (
    <ul className="lb-list lb-job-runs" data-lakebook="job-runs">
      {jobs.map(job => (
        <li key={job.job} className="lb-job-run" data-job={job.job}>
          <div className="lb-row">
            <span title={job.dataset}>{job.job}</span>
            <StatusBadge status={job.status} />
          </div>
          <div className="lb-row lb-muted">
            <span>
              <span data-metric="rows_read">{formatCount(job.rows_read)}</span> read ·{' '}
              <span data-metric="rows_written">{formatCount(job.rows_written)}</span> written
              {job.quarantined_rows ? (
                <>
                  {' '}
                  · <span data-metric="quarantined_rows">
                    {formatCount(job.quarantined_rows)}
                  </span>{' '}
                  quarantined
                </>
              ) : null}{' '}
              · {formatDuration(job.duration_seconds)}
            </span>
            {job.notebook_path ? (
              <button
                className="lb-link"
                data-lakebook="open-run-notebook"
                onClick={() => openPath(text(job.notebook_path))}
              >
                Notebook
              </button>
            ) : null}
          </div>
          {job.error ? <div className="lb-warning">{job.error}</div> : null}
        </li>
      ))}
    </ul>
  );
}

// job forms -----------------------------------------------------------------------------------
function IngestJobForm(props: IViewProps & { pipeline: string; job: string | null }): JSX.Element {
  const { model, pipeline, job } = props;
  const existing = job ? model.findJob('ingest_jobs', job) : null;
  const [sourceType, setSourceType] = useState<string>(text(existing?.source_type ?? ''));
  const [draft, setDraft] = useState<Json>(() => formData(existing, ['source_type']));
  const base = model.schemas?.ingest_job;
  if (!base || (job && !existing)) {
    return <div className="lb-muted">Loading…</div>;
  }
  const sourceTypes = (base.properties?.source_type?.enum ?? []) as string[];
  return (
    <div className="lb-form" data-lakebook="ingest-form">
      <BackLink onClick={() => model.navigate({ name: 'pipeline', pipeline })} label={pipeline} />
      <h2>{job ? `Ingest job ${job}` : 'New ingest job'}</h2>
      <label className="lb-field">
        <span>Source type</span>
        <select
          data-lakebook="source-type"
          value={sourceType}
          onChange={event => setSourceType(event.target.value)}
        >
          <option value="" disabled>
            Choose where the data comes from…
          </option>
          {sourceTypes.map(value => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
      </label>
      {sourceType ? (
        <>
          <SpecForm
            key={sourceType}
            schema={formReady(
              ingestFormSchema(normalizeSchema(base), sourceType, model.connections ?? [])
            )}
            data={keepSection(draft, SOURCE_SECTION[sourceType] ?? 'file')}
            uiSchema={uiSchemaFor('ingest')}
            onChange={setDraft}
            onSubmit={data =>
              void model.saveJob(pipeline, 'ingest_jobs', job, { ...data, source_type: sourceType })
            }
            error={model.errors.form}
            submitLabel={job ? 'Save job' : 'Create job'}
          />
        </>
      ) : null}
    </div>
  );
}

function DatasetJobForm(
  props: IViewProps & { pipeline: string; job: string | null; layer: string }
): JSX.Element {
  const { model, pipeline, job } = props;
  const existing = job ? model.findJob('dataset_jobs', job) : null;
  const layer = text(existing?.layer ?? props.layer);
  const [transformType, setTransformType] = useState<string>(
    text(existing?.transform_type ?? 'sql')
  );
  const [draft, setDraft] = useState<Json>(() => ({
    layer,
    ...formData(existing, ['transform_type'])
  }));
  const base = model.schemas?.dataset_job;
  if (!base || (job && !existing)) {
    return <div className="lb-muted">Loading…</div>;
  }
  const own = job ? `${layer}.${job}` : null;
  const datasets = model.datasets().filter(name => name !== own);
  const schema = formReady(datasetFormSchema(normalizeSchema(base), transformType, datasets));
  const transformTypes = Object.keys(TRANSFORM_CONFIG);
  return (
    <div className="lb-form" data-lakebook="dataset-form">
      <BackLink onClick={() => model.navigate({ name: 'pipeline', pipeline })} label={pipeline} />
      <h2>{job ? `Dataset ${layer}.${job}` : `New ${layer} dataset`}</h2>
      <label className="lb-field">
        <span>Transform type</span>
        <select
          data-lakebook="transform-type"
          value={transformType}
          onChange={event => setTransformType(event.target.value)}
        >
          {transformTypes.map(value => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
      </label>
      <SpecForm
        key={transformType}
        schema={schema}
        data={onlyKnown(draft, schema)}
        uiSchema={uiSchemaFor('dataset')}
        onChange={setDraft}
        onSubmit={data =>
          void model.saveJob(pipeline, 'dataset_jobs', job, {
            ...data,
            transform_type: transformType
          })
        }
        error={model.errors.form}
        submitLabel={job ? 'Save dataset' : 'Create dataset'}
      />
    </div>
  );
}

/** A saved job as a form's starting data: without the fields the form does not show. */
function formData(job: Json | null, drop: string[]): Json {
  const data: Json = { ...(job ?? {}) };
  for (const name of ['data_quality', ...drop]) {
    delete data[name];
  }
  return data;
}

/** Keep only the config section of the chosen source type. */
function keepSection(draft: Json, section: string): Json {
  const config = (draft.config ?? {}) as Json;
  return { ...draft, config: config[section] ? { [section]: config[section] } : {} };
}

/** Drop fields the schema no longer has (another transform type's config). */
function onlyKnown(draft: Json, schema: ISchema): Json {
  const known = schema.properties ?? {};
  return Object.fromEntries(Object.entries(draft).filter(([name]) => name in known));
}

// data quality --------------------------------------------------------------------------------
function RulesTab(
  props: IViewProps & { pipeline: string; kind: JobKind; job: string }
): JSX.Element {
  const { model, pipeline, job } = props;
  const [editing, setEditing] = useState<string | null | undefined>(undefined);
  const [draft, setDraft] = useState<Json>({});
  const rules = model.rules;
  const defs = model.schemas?.ingest_job?.$defs;
  const edit = (rule: Json | null): void => {
    setEditing(rule ? text(rule.name) : null);
    setDraft(rule ?? {});
  };
  return (
    <div className="lb-rules" data-lakebook="rules">
      <BackLink onClick={() => model.navigate({ name: 'pipeline', pipeline })} label={pipeline} />
      <div className="lb-toolbar">
        <h2>Data quality · {job}</h2>
        <button className="lb-button" onClick={() => edit(null)}>
          Add rule
        </button>
      </div>
      <ErrorBox error={model.errors.rules} />
      {rules === null ? (
        <div className="lb-muted">Loading…</div>
      ) : rules.length === 0 ? (
        <div className="lb-muted">No rules: the layer's defaults apply.</div>
      ) : (
        <ul className="lb-list">
          {rules.map(rule => (
            <li key={text(rule.name)} className="lb-job" data-rule={text(rule.name)}>
              <div className="lb-row">
                <span className="lb-name">{text(rule.name)}</span>
                <span className="lb-actions">
                  <button className="lb-link" onClick={() => edit(rule)}>
                    Edit
                  </button>
                  <button
                    className="lb-link lb-danger"
                    onClick={() => void model.deleteRule(text(rule.name))}
                  >
                    Delete
                  </button>
                </span>
              </div>
              <div className="lb-badges">{ruleBadges(rule, defs?.DQRule)}</div>
            </li>
          ))}
        </ul>
      )}
      {editing !== undefined && defs ? (
        <div className="lb-form" data-lakebook="rule-form">
          <h3>{editing ? `Rule ${editing}` : 'New rule'}</h3>
          <SpecForm
            schema={formReady(normalizeSchema({ $ref: '#/$defs/DQRule', $defs: defs }))}
            data={draft}
            uiSchema={uiSchemaFor('rule')}
            onChange={setDraft}
            onSubmit={data => {
              void model.saveRule(editing, data).then(saved => {
                if (saved) {
                  setEditing(undefined);
                }
              });
            }}
            error={model.errors.form}
            submitLabel="Save rule"
          >
            <button type="button" className="lb-link" onClick={() => setEditing(undefined)}>
              Cancel
            </button>
          </SpecForm>
        </div>
      ) : null}
    </div>
  );
}

/** What a rule checks and does, as badges. */
function ruleBadges(rule: Json, schema: ISchema | undefined): JSX.Element[] {
  // fields left out of the file take the rule schema's defaults
  const get = (name: string): string =>
    text(rule[name], text(schema?.properties?.[name]?.default, '—'));
  const columns = Array.isArray(rule.columns) ? rule.columns.map(column => text(column)) : [];
  const target = text(rule.column, columns.join(', '));
  const badges = [<Badge key="check" label={text(rule.check_type)} title="check" />];
  if (target) {
    badges.push(<Badge key="column" label={target} title="column" />);
  }
  badges.push(<Badge key="severity" label={get('severity')} title="severity" />);
  badges.push(
    <Badge key="action" label={`on failure: ${get('action_on_violation')}`} title="action" />
  );
  return badges;
}

// incidents -----------------------------------------------------------------------------------
const INCIDENT_STATUSES = ['', 'open', 'acknowledged', 'resolved'];

function IncidentsView({ model }: IViewProps): JSX.Element {
  const [filter, setFilter] = useState(model.incidentFilter);
  const incidents = model.incidents;
  const text = (name: 'dataset' | 'job' | 'run_id', label: string): JSX.Element => (
    <label className="lb-field">
      <span>{label}</span>
      <input
        data-filter={name}
        value={filter[name] ?? ''}
        onChange={event => setFilter({ ...filter, [name]: event.target.value })}
      />
    </label>
  );
  return (
    <div className="lb-incidents" data-lakebook="incidents">
      <h2>Data-quality incidents</h2>
      <form
        className="lb-filters"
        onSubmit={event => {
          event.preventDefault();
          model.setIncidentFilter(filter);
        }}
      >
        <label className="lb-field">
          <span>Status</span>
          <select
            data-filter="status"
            value={filter.status ?? ''}
            onChange={event => setFilter({ ...filter, status: event.target.value })}
          >
            {INCIDENT_STATUSES.map(value => (
              <option key={value} value={value}>
                {value || 'any'}
              </option>
            ))}
          </select>
        </label>
        {text('dataset', 'Dataset')}
        {text('job', 'Job')}
        {text('run_id', 'Run')}
        <button className="lb-button" type="submit">
          Filter
        </button>
      </form>
      {incidents === null ? (
        <div className="lb-muted">Loading…</div>
      ) : incidents.length === 0 ? (
        <div className="lb-muted">No incidents match.</div>
      ) : (
        <ul className="lb-list">
          {incidents.map(item => (
            <li
              key={item.id}
              className="lb-list-item"
              data-incident={item.id}
              onClick={() => model.navigate({ name: 'incident', id: item.id })}
            >
              <div className="lb-row">
                <span className="lb-name">
                  {item.dataset} · {item.rule}
                </span>
                <StatusBadge status={item.status} />
              </div>
              <div className="lb-row lb-muted">
                <span>
                  {item.severity} · {formatCount(item.rows_failing)} rows · {item.job}
                </span>
                <span>{formatDate(item.updated_at)}</span>
              </div>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function IncidentDetail({ model, id }: IViewProps & { id: number }): JSX.Element {
  const [note, setNote] = useState('');
  const incident: IIncident | null = model.incident?.id === id ? model.incident : null;
  return (
    <div className="lb-incident" data-lakebook="incident">
      <BackLink onClick={() => model.navigate({ name: 'incidents' })} label="Incidents" />
      {incident === null ? (
        <div className="lb-muted">Loading…</div>
      ) : (
        <>
          <div className="lb-toolbar">
            <h2>
              #{incident.id} {incident.rule}
            </h2>
            <StatusBadge status={incident.status} />
          </div>
          <ErrorBox error={model.errors.incident} />
          <dl className="lb-facts">
            <dt>Dataset</dt>
            <dd>{incident.dataset}</dd>
            <dt>Job</dt>
            <dd>
              {incident.pipeline} / {incident.job}
            </dd>
            <dt>Check</dt>
            <dd>
              {incident.check_type} ({incident.severity}, action {incident.action_taken})
            </dd>
            <dt>Failing rows</dt>
            <dd>
              {formatCount(incident.rows_failing)} ({(incident.failure_rate * 100).toFixed(2)}%)
            </dd>
            <dt>Runs</dt>
            <dd>
              opened in {incident.opened_run_id}, last seen in {incident.last_run_id} (
              {incident.occurrences}×)
            </dd>
            <dt>Owner</dt>
            <dd>{incident.owner ?? '—'}</dd>
            <dt>Opened</dt>
            <dd>{formatDate(incident.opened_at)}</dd>
            {incident.note ? (
              <>
                <dt>Note</dt>
                <dd>{incident.note}</dd>
              </>
            ) : null}
          </dl>
          <h3>Sample of failing rows</h3>
          <SampleTable rows={incident.sample ?? []} />
          {incident.status !== 'resolved' ? (
            <div className="lb-incident-actions">
              {incident.status === 'open' ? (
                <button className="lb-button" onClick={() => void model.acknowledge(incident.id)}>
                  Acknowledge
                </button>
              ) : null}
              <input
                placeholder="Resolution note"
                value={note}
                onChange={event => setNote(event.target.value)}
              />
              <button className="lb-button" onClick={() => void model.resolve(incident.id, note)}>
                Resolve
              </button>
            </div>
          ) : null}
        </>
      )}
    </div>
  );
}

function SampleTable({ rows }: { rows: Json[] }): JSX.Element {
  if (rows.length === 0) {
    return <div className="lb-muted">No sample kept.</div>;
  }
  const columns = Array.from(new Set(rows.flatMap(row => Object.keys(row))));
  return (
    <div className="lb-scroll">
      <table className="lb-table" data-lakebook="sample">
        <thead>
          <tr>
            {columns.map(column => (
              <th key={column}>{column}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, index) => (
            <tr key={index}>
              {columns.map(column => (
                <td key={column}>{cell(row[column])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function cell(value: unknown): string {
  return text(value, '∅');
}

// small pieces --------------------------------------------------------------------------------
/**
 * A form generated from a spec's JSON Schema (JupyterLab's FormComponent), with the server's
 * refusal shown next to its submit button. What is submitted has its empty fields left out.
 */
function SpecForm(props: {
  schema: ISchema;
  data: Json;
  uiSchema: Json;
  onChange: (data: Json) => void;
  onSubmit: (data: Json) => void;
  error: IError | undefined;
  submitLabel: string;
  children?: React.ReactNode;
}): JSX.Element {
  return (
    <FormComponent
      schema={props.schema as ReadonlyJSONObject}
      formData={props.data as ReadonlyJSONObject}
      uiSchema={props.uiSchema}
      widgets={WIDGETS}
      validator={validator}
      onChange={event => props.onChange(event.formData ?? {})}
      onSubmit={event => props.onSubmit(pruneEmpty(event.formData) as Json)}
      noHtml5Validate
      compact
    >
      <ErrorBox error={props.error} />
      <SubmitButton label={props.submitLabel} />
      {props.children}
    </FormComponent>
  );
}

/** Ask before deleting, with JupyterLab's own dialog. */
async function confirmDelete(title: string, body: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  return result.button.accept;
}

function BackLink({ onClick, label }: { onClick: () => void; label: string }): JSX.Element {
  return (
    <button className="lb-link lb-back" onClick={onClick}>
      ← {label}
    </button>
  );
}

function SubmitButton({ label }: { label: string }): JSX.Element {
  return (
    <button type="submit" className="lb-button lb-primary" data-lakebook="submit">
      {label}
    </button>
  );
}
