// run-automation: a day-2 action that starts a job on an automation server
// (Rundeck, AWX, a Jenkins webhook, an in-house runner) with fetch over
// wasi:http, and reports what it answered.
//
// Settings: `url` (required; its host must be on the sidecar's [http] allow
// list), `token_secret` (name of a granted secret, sent in `token_header`,
// default `X-Automation-Token`).
// Input: {"job": "...", "parameters": {...}}.
// Request: POST url, JSON {runId, actor, attempt, job, parameters, entity}.
// Output: {"status": <HTTP status>, "response": <the JSON answer, or its text>}.
// A non-2xx answer or an unreachable server fails the run.
import { about, action, log, secret, setting } from './portolan.js';

const INPUT_SCHEMA = {
  type: 'object',
  required: ['job'],
  additionalProperties: false,
  properties: {
    job: { type: 'string', minLength: 1, description: 'The automation job to start.' },
    parameters: { type: 'object', description: 'Passed to the job as they are.' },
  },
};

const ref = (e) => `${e.kind.toLowerCase()}:${e.namespace || 'default'}/${e.name}`;

export const operation = {
  describe() {
    return action.info(
      about('Run an automation job', '0.1.0', 'Starts a job on the automation server and reports its answer.'),
      { inputSchema: INPUT_SCHEMA, kinds: ['Component'], requiredRole: 'member' },
    );
  },

  async run(invocation) {
    const url = setting('url');
    if (!url) throw action.failed('the setting "url" is missing');
    const input = JSON.parse(invocation.input);
    const headers = { 'content-type': 'application/json' };
    const tokenSecret = setting('token_secret');
    if (tokenSecret) headers[setting('token_header', 'X-Automation-Token')] = secret(tokenSecret);

    const body = {
      runId: invocation.runId,
      actor: invocation.actor,
      attempt: invocation.attempt,
      job: input.job,
      parameters: input.parameters ?? {},
      entity: invocation.entity ? ref(invocation.entity) : null,
    };
    log.info(`starting job ${input.job} at ${url}`);
    let response;
    try {
      response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (e) {
      throw action.failed(`cannot reach ${url}: ${e.message ?? e}`);
    }
    const text = await response.text();
    let answer = text;
    try { answer = text === '' ? null : JSON.parse(text); } catch { /* keep the text */ }
    log.info(`the automation server answered ${response.status}`);
    if (!response.ok) {
      throw action.failed(`the automation server answered ${response.status}: ${text.slice(0, 500)}`);
    }
    return action.outcome({ status: response.status, response: answer });
  },
};
