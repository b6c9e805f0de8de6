/**
 * The sidebar's state, kept outside the React components.
 *
 * Components read the model and call its methods; the model talks to the server through the one
 * `LakebookApi` and emits `changed` after every update. One `Poll` refreshes what the current view
 * shows: every 2 s while a run is going, every 15 s otherwise, and not at all while the panel is
 * hidden (or the browser tab is).
 */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IIncident,
  IIncidentFilter,
  IPipeline,
  IPipelineSummary,
  IRun,
  Json,
  JobKind,
  LakebookApi,
  LakebookApiError,
  IProblem,
  Schemas
} from './api';

/** What the sidebar shows. */
export type View =
  | { name: 'pipelines' }
  | { name: 'new-pipeline' }
  | { name: 'pipeline'; pipeline: string }
  | { name: 'job'; pipeline: string; kind: JobKind; job: string | null; layer?: string }
  | { name: 'rules'; pipeline: string; kind: JobKind; job: string }
  | { name: 'incidents' }
  | { name: 'incident'; id: number };

/** A refused request, as shown next to what caused it. */
export interface IError {
  message: string;
  problems: IProblem[];
}

/** Statuses of a run that is not over yet. */
const ACTIVE = new Set(['pending', 'running', 'queued']);

/** Default refresh intervals (the `refreshInterval` settings override them). */
export const FAST_POLL_MS = 2000;
export const SLOW_POLL_MS = 15000;

export function isActive(run: { status: string } | null | undefined): boolean {
  return run !== null && run !== undefined && ACTIVE.has(run.status);
}

export class LakebookModel {
  constructor(readonly api: LakebookApi) {
    this.poll = new Poll({
      auto: false,
      factory: () => this.refresh(),
      frequency: { interval: SLOW_POLL_MS, backoff: false, max: SLOW_POLL_MS },
      name: '@lakebook/labextension:refresh',
      standby: () => !this._visible || 'when-hidden'
    });
  }

  readonly poll: Poll;

  /** Emitted after any change of state. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  view: View = { name: 'pipelines' };
  pipelines: IPipelineSummary[] | null = null;
  pipeline: IPipeline | null = null;
  runs: IRun[] = [];
  /** Runs fetched with their jobs, by id. */
  runDetails: { [id: string]: IRun } = {};
  /** Runs whose jobs are shown (a run started here opens by itself). */
  expanded = new Set<string>();
  incidents: IIncident[] | null = null;
  incidentFilter: IIncidentFilter = { status: 'open' };
  incident: IIncident | null = null;
  rules: Json[] | null = null;
  schemas: Schemas | null = null;
  /** Names of the workspace's connections, for the connection pickers. */
  connections: string[] | null = null;
  /** The last refused request of each area (`list`, `pipeline`, `run`, `form`, …). */
  errors: { [area: string]: IError | undefined } = {};
  /** When the pipelines list was first drawn with data (ms since navigation start). */
  firstPaint: number | null = null;

  /** How often to refresh (ms): while a run of the shown pipeline goes on, and otherwise. */
  setIntervals(slowMs: number, fastMs: number): void {
    this._slowMs = slowMs;
    this._fastMs = fastMs;
    this.tune();
    void this.poll.refresh();
  }

  /** Called by the panel when it is shown or hidden: polling only runs while it is visible. */
  setVisible(visible: boolean): void {
    this._visible = visible;
    if (visible) {
      void this.poll.refresh();
      if (!this._started) {
        this._started = true;
        void this.poll.start();
      }
    }
  }

  navigate(view: View): void {
    this.view = view;
    this.errors = {};
    this.emit();
    void this.poll.refresh();
  }

  /** Fetch what the current view shows. */
  async refresh(): Promise<void> {
    const view = this.view;
    try {
      switch (view.name) {
        case 'pipelines':
          this.pipelines = await this.api.listPipelines();
          break;
        case 'pipeline':
          await this.loadSchemas(); // defaults for the job badges
          await this.loadPipeline(view.pipeline);
          break;
        case 'job':
        case 'new-pipeline':
          await this.loadSchemas();
          if (view.name === 'job') {
            await this.loadPipelineDocument(view.pipeline);
            const connections = await this.api.listConnections();
            this.connections = connections.map(connection => connection.name);
          }
          break;
        case 'rules':
          await this.loadSchemas();
          await this.loadRules(view.pipeline, view.kind, view.job);
          break;
        case 'incidents':
          this.incidents = await this.api.listIncidents(this.incidentFilter);
          break;
        case 'incident':
          this.incident = await this.api.getIncident(view.id);
          break;
      }
      delete this.errors.load;
    } catch (error) {
      this.errors.load = toError(error);
    }
    this.tune();
    this.emit();
  }

  // pipelines ----------------------------------------------------------------------------------
  async createPipeline(spec: Json): Promise<boolean> {
    return this.attempt('form', async () => {
      const created = await this.api.createPipeline(spec);
      this.navigate({ name: 'pipeline', pipeline: created.name });
    });
  }

  async deletePipeline(name: string): Promise<boolean> {
    return this.attempt('pipeline', async () => {
      await this.api.deletePipeline(name);
      this.navigate({ name: 'pipelines' });
    });
  }

  // jobs ---------------------------------------------------------------------------------------
  /** Save a job from its form; on success go back to the pipeline page. */
  async saveJob(
    pipeline: string,
    kind: JobKind,
    original: string | null,
    job: Json
  ): Promise<boolean> {
    return this.attempt('form', async () => {
      const existing = original ? this.findJob(kind, original) : null;
      // the Data Quality tab owns the rules: keep them when the job's form is saved
      const rules = existing?.data_quality;
      const body = rules && job.data_quality === undefined ? { ...job, data_quality: rules } : job;
      if (original) {
        await this.api.updateJob(pipeline, kind, original, body);
      } else {
        await this.api.createJob(pipeline, kind, body);
      }
      this.navigate({ name: 'pipeline', pipeline });
    });
  }

  async deleteJob(pipeline: string, kind: JobKind, job: string): Promise<boolean> {
    return this.attempt('pipeline', async () => {
      await this.api.deleteJob(pipeline, kind, job);
      await this.loadPipeline(pipeline);
    });
  }

  /** The job's own notebook (made from its template on first use); null when refused. */
  async jobNotebook(pipeline: string, kind: JobKind, job: string): Promise<string | null> {
    let path: string | null = null;
    await this.attempt('pipeline', async () => {
      path = await this.api.jobNotebook(pipeline, kind, job);
    });
    return path;
  }

  /** The job of the loaded pipeline with this name, as saved. */
  findJob(kind: JobKind, name: string): Json | null {
    const jobs = this.pipeline?.[kind] ?? [];
    return jobs.find(job => job.name === name) ?? null;
  }

  /** Every dataset the loaded pipeline makes, for the inputs picker. */
  datasets(): string[] {
    const pipeline = this.pipeline;
    if (!pipeline) {
      return [];
    }
    const bronze = (pipeline.ingest_jobs ?? []).map(job => `bronze.${String(job.name)}`);
    const made = (pipeline.dataset_jobs ?? []).map(
      job => `${String(job.layer)}.${String(job.name)}`
    );
    return [...bronze, ...made];
  }

  // runs ---------------------------------------------------------------------------------------
  async runPipeline(pipeline: string): Promise<boolean> {
    return this.attempt('run', async () => {
      const run = await this.api.runPipeline(pipeline);
      this.runs = [run, ...this.runs];
      this.runDetails[run.id] = run;
      this.expanded.add(run.id);
      this.tune();
      void this.poll.refresh(); // next ticks at the fast interval
    });
  }

  async runJob(pipeline: string, kind: JobKind, job: string): Promise<boolean> {
    return this.attempt('run', async () => {
      const run = await this.api.runJob(pipeline, kind, job);
      this.runs = [run, ...this.runs];
      this.runDetails[run.id] = run;
      this.expanded.add(run.id);
      this.tune();
      void this.poll.refresh(); // next ticks at the fast interval
    });
  }

  /** Show (or hide) the jobs of a run. */
  async toggleRun(id: string): Promise<void> {
    if (this.expanded.has(id)) {
      this.expanded.delete(id);
      this.emit();
      return;
    }
    this.expanded.add(id);
    await this.attempt('run', async () => {
      this.runDetails[id] = await this.api.getRun(id);
    });
  }

  // data quality -------------------------------------------------------------------------------
  async saveRule(original: string | null, rule: Json): Promise<boolean> {
    const view = this.view;
    if (view.name !== 'rules') {
      return false;
    }
    return this.attempt('form', async () => {
      if (original) {
        await this.api.updateRule(view.pipeline, view.kind, view.job, original, rule);
      } else {
        await this.api.createRule(view.pipeline, view.kind, view.job, rule);
      }
      await this.loadRules(view.pipeline, view.kind, view.job);
    });
  }

  async deleteRule(name: string): Promise<boolean> {
    const view = this.view;
    if (view.name !== 'rules') {
      return false;
    }
    return this.attempt('rules', async () => {
      await this.api.deleteRule(view.pipeline, view.kind, view.job, name);
      await this.loadRules(view.pipeline, view.kind, view.job);
    });
  }

  setIncidentFilter(filter: IIncidentFilter): void {
    this.incidentFilter = filter;
    this.incidents = null;
    this.emit();
    void this.poll.refresh();
  }

  async acknowledge(id: number): Promise<boolean> {
    return this.attempt('incident', async () => {
      this.incident = await this.api.acknowledgeIncident(id);
    });
  }

  async resolve(id: number, note: string): Promise<boolean> {
    return this.attempt('incident', async () => {
      this.incident = await this.api.resolveIncident(id, note || undefined);
    });
  }

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }

  // plumbing -----------------------------------------------------------------------------------
  private async loadPipeline(name: string): Promise<void> {
    await this.loadPipelineDocument(name);
    this.runs = await this.api.listRuns(name);
    // a run just started may not be listed yet: keep it on top until it is
    for (const run of Object.values(this.runDetails)) {
      if (run.pipeline === name && isActive(run) && !this.runs.some(item => item.id === run.id)) {
        this.runs = [run, ...this.runs];
      }
    }
    // the jobs of shown runs, fetched again while they may still change
    const stale = this.runs.filter(
      run =>
        this.expanded.has(run.id) &&
        (isActive(this.runDetails[run.id]) || !this.runDetails[run.id]?.jobs)
    );
    const fresh = await Promise.all(stale.map(run => this.api.getRun(run.id).catch(() => null)));
    for (const run of fresh) {
      if (run) {
        this.runDetails[run.id] = run;
      }
    }
  }

  private async loadPipelineDocument(name: string): Promise<void> {
    if (this.pipeline?.name !== name) {
      this.runs = [];
    }
    this.pipeline = await this.api.getPipeline(name);
  }

  /** A job's rules, from its pipeline's document (one request for both). */
  private async loadRules(pipeline: string, kind: JobKind, job: string): Promise<void> {
    await this.loadPipelineDocument(pipeline);
    const rules = this.findJob(kind, job)?.data_quality;
    this.rules = Array.isArray(rules) ? (rules as Json[]) : [];
  }

  private async loadSchemas(): Promise<void> {
    if (!this.schemas) {
      this.schemas = await this.api.schemas();
    }
  }

  /** Poll fast while a run of the shown pipeline is going. */
  private tune(): void {
    const running = this.runs.some(isActive);
    const interval = running ? this._fastMs : this._slowMs;
    if (this.poll.frequency.interval !== interval) {
      this.poll.frequency = { interval, backoff: false, max: interval };
    }
  }

  /** Run an action; a refusal is kept under `area` for the view to show inline. */
  private async attempt(area: string, action: () => Promise<void>): Promise<boolean> {
    delete this.errors[area];
    this.emit();
    try {
      await action();
      return true;
    } catch (error) {
      this.errors[area] = toError(error);
      return false;
    } finally {
      this.emit();
    }
  }

  private emit(): void {
    this._changed.emit();
  }

  private _changed = new Signal<this, void>(this);
  private _visible = false;
  private _slowMs = SLOW_POLL_MS;
  private _fastMs = FAST_POLL_MS;
  private _started = false;
}

export function toError(error: unknown): IError {
  if (error instanceof LakebookApiError) {
    return { message: error.message, problems: error.problems };
  }
  return { message: error instanceof Error ? error.message : String(error), problems: [] };
}
