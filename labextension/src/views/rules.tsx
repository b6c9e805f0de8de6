/**
 * A job's Data Quality tab: its rules, and a form to add or edit one.
 */
import React, { useState } from 'react';

import type { Json, JobKind } from '../api';
import { text } from '../format';
import { formReady, ISchema, normalizeSchema, uiSchemaFor } from '../schema';
import { Badge, ErrorBox } from '../widgets';
import { BackLink, IViewProps, SpecForm } from './common';

export function RulesTab(
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
