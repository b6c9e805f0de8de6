/**
 * What every view shares: its props, the generated form, the delete dialog, small buttons.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { FormComponent } from '@jupyterlab/ui-components';
import type { ReadonlyJSONObject } from '@lumino/coreutils';
import type { RegistryWidgetsType } from '@rjsf/utils';
import { customizeValidator } from '@rjsf/validator-ajv8';
import React from 'react';

import type { Json } from '../api';
import type { IError, LakebookModel } from '../model';
import { ISchema, pruneEmpty } from '../schema';
import { ErrorBox, SqlWidget } from '../widgets';

/** What the views need besides the model. */
export interface IViewProps {
  model: LakebookModel;
  /** Open a file (path under the server's root) as a JupyterLab document. */
  openPath: (path: string) => void;
}

const WIDGETS: RegistryWidgetsType = { sql: SqlWidget };
/** Checks a form against its schema before it is sent (the server checks again). */
const validator = customizeValidator<ReadonlyJSONObject>();

/**
 * A form generated from a spec's JSON Schema (JupyterLab's FormComponent), with the server's
 * refusal shown next to its submit button. What is submitted has its empty fields left out.
 */
export function SpecForm(props: {
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
export async function confirmDelete(title: string, body: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  return result.button.accept;
}

export function BackLink({ onClick, label }: { onClick: () => void; label: string }): JSX.Element {
  return (
    <button className="lb-link lb-back" onClick={onClick}>
      ← {label}
    </button>
  );
}

export function SubmitButton({ label }: { label: string }): JSX.Element {
  return (
    <button type="submit" className="lb-button lb-primary" data-lakebook="submit">
      {label}
    </button>
  );
}
