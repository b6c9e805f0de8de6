/**
 * The one client of lakebook's REST API (`/lakebook/api/…`): a method per endpoint.
 *
 * Requests go through JupyterLab's `ServerConnection`, so they carry the server's token and XSRF
 * cookie like every other JupyterLab request. A refused request rejects with `LakebookApiError`,
 * which keeps the server's message and, for a 400 on a spec, the field-level problems.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { ISchema } from './schema';

/** Which list of jobs of a pipeline: ingest jobs or silver/gold dataset jobs. */
export type JobKind = 'ingest_jobs' | 'dataset_jobs';

/** A JSON object as the API sends and receives it. */
export type Json = { [key: string]: unknown };

/** One problem the server found in a spec: where, and what is wrong. */
export interface IProblem {
  location: string;
  message: string;
}

/** An entry of the pipelines list. */
export interface IPipelineSummary {
  name: string;
  description?: string | null;
  valid: boolean;
  problems: IProblem[];
  ingest_jobs?: number;
  dataset_jobs?: number;
  last_run: IRun | null;
}

/** A pipeline file, as saved (defaults left out). */
export interface IPipeline extends Json {
  name: string;
  description?: string;
  ingest_jobs?: Json[];
  dataset_jobs?: Json[];
}

/** A pipeline run; `jobs` is filled when one run is fetched. */
export interface IRun {
  id: string;
  pipeline: string;
  status: string;
  trigger?: string;
  started_at?: string | null;
  ended_at?: string | null;
  duration_seconds?: number | null;
  error?: string | null;
  job?: string;
  /** In run lists: the jobs the run ran (one for a single-job run). */
  jobs_run?: string[];
  jobs?: IJobRun[];
}

/** One job of a run, with its row counts. */
export interface IJobRun {
  run_id: string;
  job: string;
  kind: string;
  dataset: string;
  status: string;
  started_at?: string | null;
  ended_at?: string | null;
  duration_seconds?: number | null;
  rows_read?: number | null;
  rows_written?: number | null;
  quarantined_rows?: number | null;
  deduplicated_rows?: number | null;
  dropped_rows?: number | null;
  notebook_path?: string | null;
  error?: string | null;
}

/** A data-quality incident. */
export interface IIncident {
  id: number;
  pipeline: string;
  job: string;
  dataset: string;
  rule: string;
  check_type: string;
  severity: string;
  status: string;
  owner?: string | null;
  opened_run_id: string;
  last_run_id: string;
  occurrences: number;
  rows_failing: number;
  failure_rate: number;
  action_taken: string;
  sample?: Json[] | null;
  opened_at?: string | null;
  updated_at?: string | null;
  note?: string | null;
}

/** Filters of the incidents list. */
export interface IIncidentFilter {
  status?: string;
  dataset?: string;
  job?: string;
  run_id?: string;
  pipeline?: string;
}

/** The specs' JSON Schemas, by spec name. */
export type Schemas = { [name: string]: ISchema | undefined };

/** A named connection of the workspace (its settings stay on the server). */
export interface IConnection {
  name: string;
  type?: string | null;
}

/** The server refused a request: its status, message and any spec problems. */
export class LakebookApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: IProblem[] = []
  ) {
    super(message);
    this.name = 'LakebookApiError';
  }
}

/** The path segment of a job kind in the API's URLs. */
export function kindSegment(kind: JobKind): string {
  return kind === 'ingest_jobs' ? 'ingest-jobs' : 'dataset-jobs';
}

export class LakebookApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  // pipelines ---------------------------------------------------------------------------------
  async listPipelines(): Promise<IPipelineSummary[]> {
    const data = await this.request<{ pipelines: IPipelineSummary[] }>('pipelines');
    return data.pipelines;
  }

  getPipeline(name: string): Promise<IPipeline> {
    return this.request<IPipeline>(`pipelines/${enc(name)}`);
  }

  createPipeline(spec: Json): Promise<IPipeline> {
    return this.request<IPipeline>('pipelines', 'POST', spec);
  }

  updatePipeline(name: string, spec: Json): Promise<IPipeline> {
    return this.request<IPipeline>(`pipelines/${enc(name)}`, 'PUT', spec);
  }

  async deletePipeline(name: string): Promise<void> {
    await this.request(`pipelines/${enc(name)}`, 'DELETE');
  }

  // jobs ---------------------------------------------------------------------------------------
  createJob(pipeline: string, kind: JobKind, job: Json): Promise<Json> {
    return this.request<Json>(`pipelines/${enc(pipeline)}/${kindSegment(kind)}`, 'POST', job);
  }

  updateJob(pipeline: string, kind: JobKind, name: string, job: Json): Promise<Json> {
    return this.request<Json>(this.jobPath(pipeline, kind, name), 'PUT', job);
  }

  async deleteJob(pipeline: string, kind: JobKind, name: string): Promise<void> {
    await this.request(this.jobPath(pipeline, kind, name), 'DELETE');
  }

  /** Makes (once) the job's own notebook from its template; its path under the server root. */
  async jobNotebook(pipeline: string, kind: JobKind, name: string): Promise<string> {
    const data = await this.request<{ path: string }>(
      `${this.jobPath(pipeline, kind, name)}/notebook`,
      'POST'
    );
    return data.path;
  }

  async jobRuns(pipeline: string, kind: JobKind, name: string, limit = 10): Promise<IJobRun[]> {
    const data = await this.request<{ runs: IJobRun[] }>(
      `${this.jobPath(pipeline, kind, name)}/runs?limit=${limit}`
    );
    return data.runs;
  }

  // data-quality rules -------------------------------------------------------------------------
  async listRules(pipeline: string, kind: JobKind, job: string): Promise<Json[]> {
    const data = await this.request<{ rules: Json[] }>(
      `${this.jobPath(pipeline, kind, job)}/dq-rules`
    );
    return data.rules;
  }

  createRule(pipeline: string, kind: JobKind, job: string, rule: Json): Promise<Json> {
    return this.request<Json>(`${this.jobPath(pipeline, kind, job)}/dq-rules`, 'POST', rule);
  }

  updateRule(
    pipeline: string,
    kind: JobKind,
    job: string,
    name: string,
    rule: Json
  ): Promise<Json> {
    return this.request<Json>(
      `${this.jobPath(pipeline, kind, job)}/dq-rules/${enc(name)}`,
      'PUT',
      rule
    );
  }

  async deleteRule(pipeline: string, kind: JobKind, job: string, name: string): Promise<void> {
    await this.request(`${this.jobPath(pipeline, kind, job)}/dq-rules/${enc(name)}`, 'DELETE');
  }

  // runs ---------------------------------------------------------------------------------------
  runPipeline(name: string): Promise<IRun> {
    return this.request<IRun>(`pipelines/${enc(name)}/run`, 'POST');
  }

  runJob(pipeline: string, kind: JobKind, name: string): Promise<IRun> {
    return this.request<IRun>(`${this.jobPath(pipeline, kind, name)}/run`, 'POST');
  }

  async listRuns(pipeline: string, limit = 10): Promise<IRun[]> {
    const data = await this.request<{ runs: IRun[] }>(
      `pipelines/${enc(pipeline)}/runs?limit=${limit}`
    );
    return data.runs;
  }

  getRun(id: string): Promise<IRun> {
    return this.request<IRun>(`runs/${enc(id)}`);
  }

  // specs and incidents ------------------------------------------------------------------------
  schemas(): Promise<Schemas> {
    return this.request<Schemas>('schemas');
  }

  async listConnections(): Promise<IConnection[]> {
    const data = await this.request<{ connections: IConnection[] }>('connections');
    return data.connections;
  }

  async listIncidents(filter: IIncidentFilter = {}): Promise<IIncident[]> {
    const query = Object.entries(filter)
      .filter(([, value]) => value !== undefined && value !== '')
      .map(([key, value]) => `${key}=${encodeURIComponent(String(value))}`)
      .join('&');
    const data = await this.request<{ incidents: IIncident[] }>(
      query ? `dq/incidents?${query}` : 'dq/incidents'
    );
    return data.incidents;
  }

  getIncident(id: number): Promise<IIncident> {
    return this.request<IIncident>(`dq/incidents/${id}`);
  }

  acknowledgeIncident(id: number, owner?: string): Promise<IIncident> {
    return this.request<IIncident>(`dq/incidents/${id}/ack`, 'POST', owner ? { owner } : {});
  }

  resolveIncident(id: number, note?: string): Promise<IIncident> {
    return this.request<IIncident>(`dq/incidents/${id}/resolve`, 'POST', note ? { note } : {});
  }

  // plumbing -----------------------------------------------------------------------------------
  private jobPath(pipeline: string, kind: JobKind, name: string): string {
    return `pipelines/${enc(pipeline)}/${kindSegment(kind)}/${enc(name)}`;
  }

  private async request<T = unknown>(path: string, method = 'GET', body?: Json): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, 'lakebook', 'api', path);
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new LakebookApiError(0, `The Jupyter server did not answer: ${String(error)}`);
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!response.ok) {
      const reply = (data ?? {}) as { message?: string; problems?: IProblem[] };
      const message = reply.message || `${method} ${path} failed (${response.status})`;
      throw new LakebookApiError(response.status, message, reply.problems ?? []);
    }
    return data as T;
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}
