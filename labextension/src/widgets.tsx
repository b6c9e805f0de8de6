/**
 * Small shared pieces of the sidebar: status badges, inline errors and the SQL editor widget
 * that the generated forms use for SQL fields (CodeMirror, as in JupyterLab's own editors).
 */
import { sql } from '@codemirror/lang-sql';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers } from '@codemirror/view';
import type { WidgetProps } from '@rjsf/utils';
import React, { useEffect, useRef } from 'react';

import type { IError } from './model';

/** A run or job status as a coloured badge. */
export function StatusBadge({ status }: { status: string | null | undefined }): JSX.Element {
  const value = status || 'never run';
  return (
    <span className={`lb-status lb-status-${value.replace(/\s+/g, '-')}`} data-status={value}>
      {value}
    </span>
  );
}

/** A plain badge (source type, refresh mode, …). */
export function Badge({ label, title }: { label: string; title?: string }): JSX.Element {
  return (
    <span className="lb-badge" title={title}>
      {label}
    </span>
  );
}

/** A refused request, shown where it happened, with every field-level problem. */
export function ErrorBox({ error }: { error: IError | undefined }): JSX.Element | null {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'nearest' });
  }, [error]);
  if (!error) {
    return null;
  }
  return (
    <div className="lb-error" role="alert" ref={box}>
      <div className="lb-error-message">{error.problems.length ? 'Not saved:' : error.message}</div>
      {error.problems.length > 0 && (
        <ul>
          {error.problems.map((problem, index) => (
            <li key={index}>
              {problem.location ? <code>{problem.location}</code> : null} {problem.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** An rjsf widget: a CodeMirror editor with SQL highlighting for SQL fields. */
export function SqlWidget(props: WidgetProps): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;
  const value = typeof props.value === 'string' ? props.value : '';

  useEffect(() => {
    if (!host.current) {
      return;
    }
    const editor = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          sql(),
          keymap.of([]),
          EditorView.lineWrapping,
          EditorView.updateListener.of(update => {
            if (update.docChanged) {
              const text = update.state.doc.toString();
              onChange.current(text === '' ? undefined : text);
            }
          })
        ]
      })
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // the editor is created once; later values arrive through the effect below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  return <div className="lb-sql-editor" id={props.id} ref={host} data-lakebook="sql-editor" />;
}
