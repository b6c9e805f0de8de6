/**
 * Data-quality incidents: the filtered list, and one incident with its failing rows.
 */
import React, { useState } from 'react';

import type { IIncident, Json } from '../api';
import { formatCount, formatDate, text } from '../format';
import { ErrorBox, StatusBadge } from '../widgets';
import { BackLink, IViewProps } from './common';

const INCIDENT_STATUSES = ['', 'open', 'acknowledged', 'resolved'];

export function IncidentsView({ model }: IViewProps): JSX.Element {
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

export function IncidentDetail({ model, id }: IViewProps & { id: number }): JSX.Element {
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
