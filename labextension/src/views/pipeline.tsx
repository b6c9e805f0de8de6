/**
 * A pipeline's page: its jobs by layer with badges and actions, the Run button, recent runs.
 */
import React from 'react';

import type { IJobRun, IRun, Json, JobKind } from '../api';
import { formatCount, formatDate, formatDuration, text } from '../format';
import { isActive, LakebookModel } from '../model';
import { Badge, ErrorBox, StatusBadge } from '../widgets';
import { BackLink, confirmDelete, IViewProps } from './common';

export function PipelinePage(props: IViewProps & { pipeline: string }): JSX.Element {
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
