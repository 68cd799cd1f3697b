'use strict';
// Unit tests of the status processor, without Backstage: `node --test test/`.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FerryStatusProcessor, statusToAnnotations } = require('../src/processor');

const entity = (annotations) => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'sales-orders', namespace: 'default', annotations },
  spec: { type: 'dataset', owner: 'team-data' },
});

function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init });
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return { status: a.status, ok: a.status >= 200 && a.status < 300, json: async () => a.body };
  };
  fn.calls = calls;
  return fn;
}

const DONE = {
  dataset: 'sales-orders', status: 'done', event_id: 'e1', objects_done: 300, objects_total: 300,
  bytes_done: 12345, progress: 1, updated_at_ms: 1700000000000, finished_at_ms: 1700000001000,
};

test('maps a done migration to annotations', () => {
  assert.deepEqual(statusToAnnotations(DONE), {
    'ferry.io/status': 'done',
    'ferry.io/progress': '100%',
    'ferry.io/objects': '300/300',
    'ferry.io/bytes': '12345',
    'ferry.io/event-id': 'e1',
    'ferry.io/updated-at': '2023-11-14T22:13:20.000Z',
    'ferry.io/finished-at': '2023-11-14T22:13:21.000Z',
  });
});

test('running and failed migrations', () => {
  const r = statusToAnnotations({ status: 'running', objects_done: 5, objects_total: null, progress: null, bytes_done: 7 });
  assert.equal(r['ferry.io/status'], 'running');
  assert.equal(r['ferry.io/objects'], '5');
  assert.equal(r['ferry.io/progress'], undefined);
  assert.equal(r['ferry.io/finished-at'], undefined);
  const f = statusToAnnotations({ status: 'failed', last_error: 'x'.repeat(900), finished_at_ms: 1 });
  assert.equal(f['ferry.io/error'].length, 500);
});

test('entities without ferry annotations are left alone, without a request', async () => {
  const fetch = fakeFetch([]);
  const p = new FerryStatusProcessor({ producerUrl: 'http://p', fetch });
  const e = entity({ 'backstage.io/techdocs-ref': 'dir:.' });
  assert.equal(await p.preProcessEntity(e), e);
  assert.equal(fetch.calls.length, 0);
});

test('merges the status, sends the token, keeps other annotations', async () => {
  const fetch = fakeFetch([{ status: 200, body: DONE }]);
  const p = new FerryStatusProcessor({ producerUrl: 'http://p:8080/', token: 't0ken', fetch });
  const out = await p.preProcessEntity(entity({
    'ferry.io/source': 's3://a/x/', 'ferry.io/target': 's3://b/x/', 'ferry.io/status': 'forged',
  }));
  assert.equal(fetch.calls[0].url, 'http://p:8080/v1/datasets/sales-orders');
  assert.equal(fetch.calls[0].init.headers.authorization, 'Bearer t0ken');
  assert.equal(out.metadata.annotations['ferry.io/status'], 'done');
  assert.equal(out.metadata.annotations['ferry.io/source'], 's3://a/x/');
});

test('ferry.io/dataset names the dataset', async () => {
  const fetch = fakeFetch([{ status: 404, body: {} }]);
  const p = new FerryStatusProcessor({ producerUrl: 'http://p', fetch });
  const out = await p.preProcessEntity(entity({
    'ferry.io/source': 's3://a/', 'ferry.io/target': 's3://b/', 'ferry.io/dataset': 'sales.orders', 'ferry.io/status': 'x',
  }));
  assert.equal(fetch.calls[0].url, 'http://p/v1/datasets/sales.orders');
  assert.equal(out.metadata.annotations['ferry.io/status'], undefined); // 404: no migration yet
});

test('keeps the last known status while the producer is unreachable', async () => {
  const fetch = fakeFetch([{ status: 200, body: DONE }, new Error('ECONNREFUSED'), { status: 503, body: {} }]);
  const warnings = [];
  const p = new FerryStatusProcessor({ producerUrl: 'http://p', fetch, logger: { warn: m => warnings.push(m), info() {} } });
  const e = entity({ 'ferry.io/source': 's3://a/', 'ferry.io/target': 's3://b/' });
  await p.preProcessEntity(e);
  const out = await p.preProcessEntity(e);
  assert.equal(out.metadata.annotations['ferry.io/status'], 'done');
  const out2 = await p.preProcessEntity(e);
  assert.equal(out2.metadata.annotations['ferry.io/status'], 'done');
  assert.equal(warnings.length, 1); // logged once per outage
});
