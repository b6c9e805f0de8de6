/**
 * The Lakebook JupyterLab extension: a sidebar to author, run and inspect pipelines.
 *
 * `activate` only wires things up (no awaiting): data is fetched when the panel is first shown.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { LakebookApi } from './api';
import { FAST_POLL_MS, LakebookModel, SLOW_POLL_MS } from './model';
import { LakebookPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 3C7 3 3 4.3 3 6v12c0 1.7 4 3 9 3s9-1.3 9-3V6c0-1.7-4-3-9-3zm0 2c4.4 0 7 1.1 7 1.5S16.4 8 12 8 5 6.9 5 6.5 7.6 5 12 5zm7 13c0 .4-2.6 1.5-7 1.5S5 18.4 5 18v-2.3c1.6.8 4.2 1.3 7 1.3s5.4-.5 7-1.3V18zm0-4.5c0 .4-2.6 1.5-7 1.5s-7-1.1-7-1.5v-2.3c1.6.8 4.2 1.3 7 1.3s5.4-.5 7-1.3v2.3zm0-4.5c0 .4-2.6 1.5-7 1.5S5 9.4 5 9V8.7c1.6.8 4.2 1.3 7 1.3s5.4-.5 7-1.3V9z"/>
</svg>`;

export const lakebookIcon = new LabIcon({ name: 'lakebook:icon', svgstr: ICON_SVG });

export const PANEL_ID = 'lakebook-sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@lakebook/labextension:plugin',
  description: 'The Lakebook sidebar: pipelines, jobs, data-quality rules, runs and incidents.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    documents: IDocumentManager,
    restorer: ILayoutRestorer | null,
    registry: ISettingRegistry | null
  ): void => {
    const model = new LakebookModel(new LakebookApi());
    const panel = new LakebookPanel(model, path => {
      documents.openOrReveal(path);
    });
    panel.id = PANEL_ID;
    panel.title.icon = lakebookIcon;
    panel.title.caption = 'Lakebook';
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }
    if (registry) {
      // settings arrive later; activate does not wait for them
      const apply = (settings: ISettingRegistry.ISettings): void => {
        const seconds = (key: string, fallback: number): number => {
          const value = settings.get(key).composite;
          return typeof value === 'number' && value > 0 ? value * 1000 : fallback;
        };
        model.setIntervals(
          seconds('refreshInterval', SLOW_POLL_MS),
          seconds('runRefreshInterval', FAST_POLL_MS)
        );
      };
      registry
        .load(plugin.id)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => console.error('Lakebook: settings not loaded', reason));
    }
    app.commands.addCommand('lakebook:open', {
      label: 'Open the Lakebook sidebar',
      execute: () => app.shell.activateById(PANEL_ID)
    });
  }
};

export default plugin;
