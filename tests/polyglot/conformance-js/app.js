// The conformance check in JavaScript (rules in ../README.md).
import { about, fromJson, check as c } from './portolan.js';

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

export const check = {
  describe() {
    return c.info(
      about('Conformance (JavaScript)', '0.1.0', 'The cross-language conformance check.'),
      c.define('conformance', 'Conformance', 'Description, lowercase tags and links.', {
        parametersSchema: { type: 'object', properties: { minLength: { type: 'integer', minimum: 0 } } },
      }),
    );
  },
  evaluate(id, parameters, entities) {
    if (id !== 'conformance') throw c.unknownCheck(id);
    const minLength = fromJson(parameters, {}).minLength ?? 10;
    return entities.map((e) => judge(e, minLength));
  },
};
