/**
 * The Lakebook panel in JupyterLab's left area: a ReactWidget that re-renders when the model
 * changes and tells the model when it is shown or hidden (polling stands by while hidden).
 */
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import React from 'react';

import { LakebookModel } from './model';
import { Sidebar } from './views';

export const SHOWN_MARK = 'lakebook:panel-shown';

export class LakebookPanel extends ReactWidget {
  constructor(
    readonly model: LakebookModel,
    private readonly openPath: (path: string) => void
  ) {
    super();
    this.addClass('lb-panel');
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Sidebar model={this.model} openPath={this.openPath} />}
      </UseSignal>
    );
  }

  protected onAfterShow(message: Message): void {
    super.onAfterShow(message);
    if (!this._shownOnce) {
      this._shownOnce = true;
      performance.mark(SHOWN_MARK);
    }
    this.model.setVisible(true);
  }

  protected onAfterHide(message: Message): void {
    super.onAfterHide(message);
    this.model.setVisible(false);
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  private _shownOnce = false;
}
