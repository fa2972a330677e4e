// The conformance check in JavaScript (rules in ../README.md).
import { about, fromJson, specOf, catalog, check as c } from './portolan.js';

const trimAscii = (s) => s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');

function judge(e, minLength) {
  const kind = e.kind.toLowerCase();
  if (kind === 'user' || kind === 'group') return c.skipped('people and teams are exempt');
  const text = trimAscii(e.description ?? '');
  if (text === '') return c.failed('no description');
  const length = [...text].length; // code points, not UTF-16 units
  if (length < minLength) return c.failed(`description has ${length} characters, fewer than ${minLength}`);
  const upper = e.tags.find((t) => /[A-Z]/.test(t));
  if (upper !== undefined) return c.failed(`tag "${upper}" is not lowercase`);
  if (e.links.length === 0) return c.failed('no links');
  return c.passed(undefined, length);
}

// The `owner-known` check: each entity's owner, completed as a Group in the
// entity's namespace, looked up in the catalog in one call.
function ownersKnown(entities) {
  const owners = entities.map((e) => {
    const owner = specOf(e).owner;
    return typeof owner === 'string' && owner !== '' ? catalog.fullRef(owner, 'group', e.namespace) : undefined;
  });
  let found;
  try {
    found = catalog.lookup(owners.filter((o) => o !== undefined));
  } catch (err) {
    return owners.map((o) => (o === undefined ? c.skipped('no owner') : c.errored(String(err.message ?? err))));
  }
  let next = 0;
  return owners.map((owner) => {
    if (owner === undefined) return c.skipped('no owner');
    return found[next++] !== undefined ? c.passed(undefined, owner) : c.failed(`owner "${owner}" is not in the catalog`);
  });
}

export const check = {
  describe() {
    return c.info(
      about('Conformance (JavaScript)', '0.1.0', 'The cross-language conformance check.'),
      c.define('conformance', 'Conformance', 'Description, lowercase tags and links.', {
        parametersSchema: { type: 'object', properties: { minLength: { type: 'integer', minimum: 0 } } },
      }),
      c.define('owner-known', 'Owner known', 'The owner is in the catalog.'),
    );
  },
  evaluate(id, parameters, entities) {
    if (id === 'owner-known') return ownersKnown(entities);
    if (id !== 'conformance') throw c.unknownCheck(id);
    const minLength = fromJson(parameters, {}).minLength ?? 10;
    return entities.map((e) => judge(e, minLength));
  },
};
