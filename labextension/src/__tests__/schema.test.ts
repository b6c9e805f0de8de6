import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  datasetFormSchema,
  formReady,
  ingestFormSchema,
  ISchema,
  normalizeSchema,
  pruneEmpty
} from '../schema';

// the JSON Schemas the server serves, as committed in docs/schemas (a Python test keeps them current)
const SCHEMAS = join(__dirname, '..', '..', '..', 'docs', 'schemas');
const load = (name: string): ISchema =>
  JSON.parse(readFileSync(join(SCHEMAS, `${name}.schema.json`), 'utf-8')) as ISchema;

void test('normalizing inlines $refs and makes "X or null" plain X', () => {
  const schema = normalizeSchema(load('ingest_job'));
  assert.equal(JSON.stringify(schema).includes('$ref'), false);
  assert.equal(schema.properties?.watermark_column?.type, 'string');
  assert.equal(schema.properties?.watermark_column?.default, undefined);
  assert.equal(schema.properties?.config?.properties?.file?.type, 'object');
});

void test('the ingest form shows only the sections of the chosen source type', () => {
  const base = normalizeSchema(load('ingest_job'));
  const upload = ingestFormSchema(base, 'file_upload');
  const file = upload.properties?.config?.properties?.file;
  assert.deepEqual(Object.keys(upload.properties?.config?.properties ?? {}), ['file']);
  assert.ok(file?.properties?.path);
  assert.equal(file?.properties?.s3_uri, undefined);
  assert.equal(upload.properties?.data_quality, undefined);

  const s3 = ingestFormSchema(base, 's3').properties?.config?.properties?.file;
  assert.ok(s3?.properties?.s3_uri && s3.properties.connection_id);
  assert.equal(s3?.properties?.path, undefined);

  const db = ingestFormSchema(base, 'database');
  assert.deepEqual(Object.keys(db.properties?.config?.properties ?? {}), ['db']);
  assert.equal(db.properties?.format, undefined);
  assert.deepEqual(db.properties?.config?.required, ['db']);

  const api = ingestFormSchema(base, 'api').properties?.config?.properties?.api;
  assert.ok(api?.properties?.url && api.properties.pagination && api.properties.auth);
});

void test('the dataset form keeps only its transform type config and offers the pipeline datasets', () => {
  const base = normalizeSchema(load('dataset_job'));
  const scd2 = datasetFormSchema(base, 'scd2_dimension', ['bronze.b', 'bronze.a']);
  assert.ok(scd2.properties?.scd2);
  assert.equal(scd2.properties?.metrics, undefined);
  assert.equal(scd2.properties?.sql_text, undefined);
  assert.ok(scd2.required?.includes('scd2'));
  const dataset = scd2.properties?.inputs?.items?.properties?.dataset;
  assert.deepEqual(dataset?.enum, ['bronze.a', 'bronze.b']);

  const sql = datasetFormSchema(base, 'sql', []);
  assert.ok(sql.properties?.sql_text);
  assert.equal(sql.properties?.scd2, undefined);
});

void test('optional objects keep no defaults, so a form does not invent them', () => {
  const pipeline = normalizeSchema(load('pipeline'));
  const ready = formReady(pipeline);
  const schedule = ready.properties?.schedule;
  assert.equal(schedule?.properties?.timezone?.default, undefined);
  assert.match(String(schedule?.properties?.timezone?.description), /Default: "UTC"/);
  // a required section keeps its defaults
  const upload = formReady(ingestFormSchema(normalizeSchema(load('ingest_job')), 'local_path'));
  assert.equal(upload.properties?.config?.properties?.file?.properties?.delimiter?.default, ',');
});

void test('empty values are left out of what is saved', () => {
  assert.deepEqual(pruneEmpty({ a: '', b: [], c: {}, d: { e: null }, f: 0, g: false, h: ['x'] }), {
    f: 0,
    g: false,
    h: ['x']
  });
});

void test('connection fields pick from the workspace connections', () => {
  const base = normalizeSchema(load('ingest_job'));
  const db = ingestFormSchema(base, 'database', ['warehouse', 'crm']);
  assert.deepEqual(db.properties?.config?.properties?.db?.properties?.connection_id?.enum, [
    'crm',
    'warehouse'
  ]);
  const none = ingestFormSchema(base, 'database', []);
  const field = none.properties?.config?.properties?.db?.properties?.connection_id;
  assert.equal(field?.enum, undefined);
  assert.match(String(field?.description), /c\.Lakebook\.connections/);
});
