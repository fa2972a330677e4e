// my-plugin: a day-2 action. Write what `run` does; fetch() reaches the hosts
// on the sidecar's [http] allow list.
import { about, action, fromJson, log } from './portolan.js';

const INPUT = { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 1 } } };

export const operation = {
  describe() {
    return action.info(about('my-plugin', '0.1.0', 'What my action does.'), {
      inputSchema: INPUT, kinds: ['Component'],
    });
  },
  async run(invocation) {
    const { reason } = fromJson(invocation.input);
    const target = invocation.entity ? invocation.entity.name : 'nothing';
    log.info(`${invocation.actor} asked for ${target}: ${reason}`);
    return action.outcome({ target, reason });
  },
};
