// Helpers for Portolan plugins written in JavaScript.
//
// The build (scripts/build-guest.sh) copies this file next to the plugin's
// own sources, so a plugin imports it as './portolan.js'. The WIT types it
// works with are generated as TypeScript declarations (jco types) into
// target/sdk/js/<world>/ when the plugins are built; see README.md.
//
// Value shapes, as componentize-js maps them: records are objects with
// camelCase fields, `option<T>` is the value or `undefined`, enums are their
// kebab-case names ('pass'), variants are `{ tag, val }`, `list<u8>` is a
// Uint8Array, `u64` is a BigInt. An exported function fails with its WIT
// error by throwing a `PluginError` (or any `{ tag, val }` object).

import * as host from 'portolan:plugin/host@0.4.0';
import * as catalogImport from 'portolan:plugin/catalog@0.4.0';

/** What the plugin says about itself in `describe`. */
export function about(title, version, description) {
  return { title, version, description };
}

/** JSON text for a WIT `json` field. */
export const toJson = (value) => JSON.stringify(value === undefined ? null : value);

/** Parses a WIT `json` field; `fallback` when it is empty. */
export function fromJson(text, fallback = undefined) {
  return text === undefined || text === '' ? fallback : JSON.parse(text);
}

const pairs = (obj) => Object.entries(obj || {}).map(([key, value]) => ({ key, value: String(value) }));

/** A link shown with an entity, a run or a result. */
export function link(url, { title, icon, type } = {}) {
  return { url, title, icon, type };
}

/**
 * A catalog entity. `spec` is an object; relations are left to the host,
 * which derives them from the spec.
 */
export function entity(kind, name, opts = {}) {
  return {
    apiVersion: opts.apiVersion || 'backstage.io/v1alpha1',
    kind,
    namespace: opts.namespace || 'default',
    name,
    title: opts.title,
    description: opts.description,
    labels: pairs(opts.labels),
    annotations: pairs(opts.annotations),
    tags: opts.tags || [],
    links: opts.links || [],
    spec: toJson(opts.spec || {}),
    relations: [],
  };
}

/** An entity's spec as an object. */
export const specOf = (e) => fromJson(e.spec, {});

/** A WIT error, thrown from an exported function: `throw new PluginError('failed', 'why')`. */
export class PluginError extends Error {
  constructor(tag, val) {
    super(`${tag}: ${Array.isArray(val) ? val.join(': ') : val}`);
    this.payload = { tag, val };
  }
}

/** The host's log for this call. */
export const log = {
  trace: (m) => host.log('trace', String(m)),
  debug: (m) => host.log('debug', String(m)),
  info: (m) => host.log('info', String(m)),
  warn: (m) => host.log('warn', String(m)),
  error: (m) => host.log('error', String(m)),
};

/** The sidecar's `[settings]` as an object. */
export const settings = () => fromJson(host.settings(), {});

/** One setting (a string as is, anything else as JSON text), or `fallback`. */
export function setting(key, fallback = undefined) {
  const v = host.setting(key);
  return v === undefined ? fallback : v;
}

/** A granted secret's value; throws the host's error when it is not available. */
export const secret = (name) => host.secret(name);

// Read-only catalog lookups (contract 0.3.0 and later), for every role.
export const catalog = {
  /** Most references one `lookup` may carry; split longer lists. */
  MAX_REFS: 1000,
  /**
   * One answer per reference, in order: the entity, or `undefined` where
   * the catalog has no such entity. A reference is `kind:namespace/name`
   * or `kind:name` (namespace `default`), compared case-insensitively; the
   * kind is required (complete a shorthand such as `spec.owner` with
   * `fullRef` first). Look up everything a batch needs in one call: its
   * time counts against the plugin's deadline. Throws a `CatalogError`.
   */
  lookup(refs) {
    const list = [...refs];
    if (list.length > catalog.MAX_REFS) {
      throw new CatalogError(`catalog lookup: ${list.length} references in one call, at most ${catalog.MAX_REFS}`);
    }
    if (list.length === 0) return [];
    try {
      return catalogImport.lookup(list);
    } catch (e) {
      // componentize-js throws an imported function's WIT error with the
      // error value as `payload`.
      const p = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
      switch (p && p.tag) {
        case 'invalid-reference':
          throw new CatalogError(`catalog lookup: reference ${p.val[0]} is invalid: ${p.val[1]}`, { index: p.val[0] });
        case 'too-many-references':
          throw new CatalogError(`catalog lookup: ${p.val} references in one call, at most ${catalog.MAX_REFS}`);
        case 'unavailable':
          throw new CatalogError(`catalog lookup: the catalog is unavailable: ${p.val}`, { retry: true });
        case 'other':
          throw new CatalogError(`catalog lookup failed: ${p.val}`);
        default:
          throw e;
      }
    }
  },
  /**
   * Completes a shorthand reference as Backstage does: `reference` may
   * leave out its kind (then `kind`) and its namespace (then `namespace`,
   * usually the referring entity's). `fullRef('team-a', 'group')` is
   * 'group:default/team-a'. Kind and namespace come out lower-cased; the
   * name is kept as written.
   */
  fullRef(reference, kind, namespace = 'default') {
    const slash = reference.indexOf('/');
    let colon = reference.indexOf(':');
    // A slash before the first colon means the colon belongs to the name.
    if (colon >= 0 && slash >= 0 && slash < colon) colon = -1;
    const [k, rest] = colon >= 0 ? [reference.slice(0, colon), reference.slice(colon + 1)] : [kind, reference];
    const s = rest.indexOf('/');
    const [ns, name] = s >= 0 ? [rest.slice(0, s), rest.slice(s + 1)] : [namespace, rest];
    return `${k.toLowerCase()}:${ns.toLowerCase()}/${name}`;
  },
};

/**
 * A catalog lookup that failed as a whole: `index` is the position of the
 * reference the host refused as malformed (else undefined); `retry` is true
 * when the catalog could not be read now and a later call may succeed.
 */
export class CatalogError extends Error {
  constructor(message, { index, retry = false } = {}) {
    super(message);
    this.index = index;
    this.retry = retry;
  }
}

// Scorecard checks.
export const check = {
  info: (aboutRecord, ...checks) => ({ about: aboutRecord, checks }),
  define: (id, title, description, { kinds = [], parametersSchema = { type: 'object' } } = {}) => ({
    id, title, description, entityKinds: kinds, parametersSchema: toJson(parametersSchema),
  }),
  passed: (message, value) => ({ status: 'pass', message, value: value === undefined ? undefined : toJson(value) }),
  failed: (message, value) => ({ status: 'fail', message, value: value === undefined ? undefined : toJson(value) }),
  skipped: (message) => ({ status: 'skip', message, value: undefined }),
  errored: (message) => ({ status: 'error', message, value: undefined }),
  unknownCheck: (id) => new PluginError('unknown-check', id),
  invalidParameter: (pointer, why) => new PluginError('invalid-parameter', [pointer, why]),
  /**
   * The plugin's `check` export with `evaluateRules` (contract 0.4.0:
   * several rules over one batch in one call) answered by calling its
   * `evaluate` once per rule, unless it has its own. A rule whose
   * `evaluate` throws a WIT error gets that error; the others their
   * outcomes. The build applies it to a check's export.
   */
  withEvaluateRules: (plugin) => {
    if (typeof plugin.evaluateRules === 'function') return plugin;
    return {
      describe: (...args) => plugin.describe(...args),
      evaluate: (...args) => plugin.evaluate(...args),
      evaluateRules(rules, entities) {
        const ok = (val) => ({ tag: 'ok', val });
        const err = (e) => {
          if (e instanceof PluginError) return { tag: 'err', val: e.payload };
          if (e && typeof e === 'object' && 'tag' in e) return { tag: 'err', val: e };
          throw e;
        };
        const answers = rules.map((rule) => {
          try {
            const outcomes = plugin.evaluate(rule.check, rule.parameters, entities);
            return outcomes instanceof Promise ? outcomes.then(ok, err) : ok(outcomes);
          } catch (e) {
            return err(e);
          }
        });
        // An async `evaluate` makes this async too.
        return answers.some((a) => a instanceof Promise) ? Promise.all(answers) : answers;
      },
    };
  },
};

// Catalog sources.
export const source = {
  info: (aboutRecord, settingsSchema) => ({
    about: aboutRecord, settingsSchema: settingsSchema === undefined ? undefined : toJson(settingsSchema),
  }),
  page: (entities, nextCursor = undefined, totalHint = undefined) => ({
    entities, nextCursor, totalHint: totalHint === undefined ? undefined : BigInt(totalHint),
  }),
  error: (tag, why) => new PluginError(tag, why), // unreachable | unauthorized | invalid-data | misconfigured | other
};

// Actions.
export const action = {
  info: (aboutRecord, { inputSchema = { type: 'object' }, kinds = [], types = [], tags = [], requiredRole = 'member', approval } = {}) => ({
    about: aboutRecord, entityKinds: kinds, entityTypes: types, entityTags: tags,
    inputSchema: toJson(inputSchema), requiredRole, approval,
  }),
  outcome: (output = {}, links = []) => ({ output: toJson(output), links }),
  invalidInput: (pointer, why) => new PluginError('invalid-input', [pointer, why]),
  failed: (why) => new PluginError('failed', why),
};

// Scaffold generators.
const encoder = new TextEncoder();
export const generator = {
  info: (aboutRecord, parametersSchema, tags = []) => ({ about: aboutRecord, tags, parametersSchema: toJson(parametersSchema) }),
  file: (path, content, executable = false) => ({
    path, content: typeof content === 'string' ? encoder.encode(content) : content, executable,
  }),
  output: (files, { entity: e, links = [], messages = [] } = {}) => ({ files, entity: e, links, messages }),
  invalidParameter: (pointer, why) => new PluginError('invalid-parameter', [pointer, why]),
};
