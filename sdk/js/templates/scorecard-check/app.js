// my-plugin: a scorecard check. Rename the check, then write `judge`.
import { about, fromJson, check as c } from './portolan.js';

const SCHEMA = { type: 'object', properties: { minLength: { type: 'integer', minimum: 0 } } };

function judge(entity, minLength) {
  const description = (entity.description ?? '').trim();
  if (description === '') return c.failed('no description');
  if (description.length < minLength) return c.failed(`description shorter than ${minLength} characters`);
  return c.passed(undefined, description.length);
}

export const check = {
  describe() {
    return c.info(
      about('my-plugin', '0.1.0', 'What my checks look at.'),
      c.define('described', 'Is described', 'The entity says what it is.', { parametersSchema: SCHEMA }),
    );
  },
  evaluate(id, parameters, entities) {
    if (id !== 'described') throw c.unknownCheck(id);
    const minLength = fromJson(parameters, {}).minLength ?? 10;
    return entities.map((e) => judge(e, minLength));
  },
};
