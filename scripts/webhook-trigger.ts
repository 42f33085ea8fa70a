/**
 * `npm run webhook -- refund.updated --refund re_... --status succeeded`: sends a signed test event to a
 * running service (see src/webhooks/trigger.ts and `--help`).
 */
import { config as loadDotenv } from 'dotenv';
import { runWebhookTrigger } from '../src/webhooks/trigger.js';

loadDotenv({ quiet: true });

const code = await runWebhookTrigger(process.argv.slice(2), process.env, {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
process.exitCode = code;
