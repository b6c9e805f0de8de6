/**
 * The pipelines list (the sidebar's first view) and the new-pipeline form.
 */
import React, { useEffect, useState } from 'react';

import type { Json } from '../api';
import { formatDate } from '../format';
import { formReady, normalizeSchema } from '../schema';
import { StatusBadge } from '../widgets';
import { BackLink, IViewProps, SpecForm } from './common';

export const PAINT_MARK = 'lakebook:pipelines-painted';

export function PipelinesList({ model }: IViewProps): JSX.Element {
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

export function NewPipelineForm({ model }: IViewProps): JSX.Element {
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
