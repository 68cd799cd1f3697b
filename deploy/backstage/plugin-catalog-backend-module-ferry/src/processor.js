'use strict';
// FerryStatusProcessor: a catalog processor that merges ferry's migration status into
// every entity carrying ferry's annotations. Backstage has no PATCH for entities from
// file/URL locations, so runtime data is merged in while the entity is processed -- the
// Backstage way. The status comes from ferry-producer's GET /v1/datasets/NAME (Redis).
//
// ferry's poller hashes only the annotations that define a migration (ferry.io/source,
// target, dataset, overwrite, verify, include, exclude), so these status annotations
// changing the entity's etag never start a migration.

const SPEC_ANNOTATIONS = ['ferry.io/source', 'ferry.io/target'];

const STATUS_ANNOTATIONS = Object.freeze({
  status: 'ferry.io/status', // pending | running | done | failed
  progress: 'ferry.io/progress', // "42%"
  objects: 'ferry.io/objects', // "120/300"
  bytes: 'ferry.io/bytes', // bytes copied so far
  eventId: 'ferry.io/event-id',
  updatedAt: 'ferry.io/updated-at', // ISO 8601
  finishedAt: 'ferry.io/finished-at', // ISO 8601, when done or failed
  error: 'ferry.io/error', // last error, when failed
});

const iso = ms => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : undefined);

/** Maps GET /v1/datasets/NAME's JSON to annotations (all values strings). */
function statusToAnnotations(s) {
  const a = {};
  const set = (k, v) => {
    if (v !== undefined && v !== null && v !== '') a[k] = String(v);
  };
  set(STATUS_ANNOTATIONS.status, s.status);
  if (typeof s.progress === 'number') {
    set(STATUS_ANNOTATIONS.progress, `${Math.floor(Math.min(1, Math.max(0, s.progress)) * 100)}%`);
  }
  if (typeof s.objects_done === 'number') {
    set(STATUS_ANNOTATIONS.objects,
      typeof s.objects_total === 'number' ? `${s.objects_done}/${s.objects_total}` : s.objects_done);
  }
  set(STATUS_ANNOTATIONS.bytes, s.bytes_done);
  set(STATUS_ANNOTATIONS.eventId, s.event_id);
  set(STATUS_ANNOTATIONS.updatedAt, iso(s.updated_at_ms));
  if (s.status === 'done' || s.status === 'failed') {
    set(STATUS_ANNOTATIONS.finishedAt, iso(s.finished_at_ms));
  }
  if (s.status === 'failed' && s.last_error) {
    set(STATUS_ANNOTATIONS.error, String(s.last_error).slice(0, 500));
  }
  return a;
}

class FerryStatusProcessor {
  /**
   * @param {object} opts
   * @param {string} opts.producerUrl  base URL of ferry-producer's HTTP API
   * @param {string} [opts.token]      its bearer token
   * @param {number} [opts.timeoutMs]  per request (default 2000)
   * @param {object} [opts.logger]     Backstage LoggerService
   * @param {Function} [opts.fetch]    fetch implementation (tests)
   */
  constructor(opts) {
    this.producerUrl = String(opts.producerUrl).replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.logger = opts.logger;
    this.fetch = opts.fetch ?? globalThis.fetch;
    // Last status seen per entity: kept while the producer cannot be reached, so the
    // annotations do not flap (and the etag does not churn) during an outage.
    this.last = new Map();
    this.failing = false;
  }

  getProcessorName() {
    return 'FerryStatusProcessor';
  }

  /** undefined: no migration known (404); null: could not ask; else the status JSON. */
  async fetchStatus(dataset) {
    const url = `${this.producerUrl}/v1/datasets/${encodeURIComponent(dataset)}`;
    const headers = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    try {
      const res = await this.fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      if (this.failing) this.logger?.info(`ferry status: ${this.producerUrl} answers again`);
      this.failing = false;
      return body;
    } catch (e) {
      if (!this.failing) {
        this.logger?.warn(`ferry status: cannot read ${url}: ${e.message}; keeping the last known status`);
      }
      this.failing = true;
      return null;
    }
  }

  async preProcessEntity(entity) {
    const anns = entity.metadata?.annotations ?? {};
    if (!SPEC_ANNOTATIONS.some(k => anns[k] !== undefined)) return entity;

    const ref = `${entity.kind}:${entity.metadata.namespace ?? 'default'}/${entity.metadata.name}`.toLowerCase();
    const dataset = anns['ferry.io/dataset'] ?? entity.metadata.name;
    let status = await this.fetchStatus(dataset);
    if (status === null) status = this.last.get(ref);
    else if (status === undefined) this.last.delete(ref);
    else this.last.set(ref, status);

    // Only ferry writes these: drop any authored by hand, then add the current ones.
    const merged = {};
    const ours = new Set(Object.values(STATUS_ANNOTATIONS));
    for (const [k, v] of Object.entries(anns)) if (!ours.has(k)) merged[k] = v;
    Object.assign(merged, status ? statusToAnnotations(status) : {});
    return { ...entity, metadata: { ...entity.metadata, annotations: merged } };
  }
}

module.exports = { FerryStatusProcessor, statusToAnnotations, STATUS_ANNOTATIONS };
