/**
 * The sidebar's views. They render the model and call its methods; they hold no state of their
 * own beyond a form's draft. `Sidebar` picks the view the model says is current.
 */
import React from 'react';

import { ErrorBox } from '../widgets';
import type { IViewProps } from './common';
import { IncidentDetail, IncidentsView } from './incidents';
import { DatasetJobForm, IngestJobForm } from './jobForms';
import { PipelinePage } from './pipeline';
import { NewPipelineForm, PipelinesList } from './pipelines';
import { RulesTab } from './rules';

export type { IViewProps } from './common';
export { PAINT_MARK } from './pipelines';

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
