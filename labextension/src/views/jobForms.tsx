/**
 * The ingest job and silver/gold dataset forms, generated from the specs' JSON Schemas.
 */
import React, { useState } from 'react';

import type { Json } from '../api';
import { text } from '../format';
import {
  datasetFormSchema,
  formReady,
  ingestFormSchema,
  ISchema,
  normalizeSchema,
  SOURCE_SECTION,
  TRANSFORM_CONFIG,
  uiSchemaFor
} from '../schema';
import { BackLink, IViewProps, SpecForm } from './common';

export function IngestJobForm(
  props: IViewProps & { pipeline: string; job: string | null }
): JSX.Element {
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

export function DatasetJobForm(
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
