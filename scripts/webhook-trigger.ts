/**
 * `npm run webhook -- refund.updated --refund re_... --status succeeded`: sends a signed test event to a
 * running service (see src/webhooks/trigger.ts and `--help`).
 */
import { loadDotenvOrExit, skippedStatementsWarning } from '../src/config/dotenv.js';
import { scrubSecrets } from '../src/logger.js';
import { runWebhookTrigger } from '../src/webhooks/trigger.js';

const skippedInDotenv = skippedStatementsWarning(loadDotenvOrExit());
if (skippedInDotenv) console.error(`warning: ${skippedInDotenv}`);

const code = await runWebhookTrigger(process.argv.slice(2), process.env, {
  // Through the filter too: the `→ POST <url>` line quoted a --url with a password or a ?token= in it.
  out: (line) => console.log(scrubSecrets(line)),
  // Through the logger's filter: Stripe's message when it refuses the key quotes the key's last characters.
  err: (line) => console.error(scrubSecrets(line)),
});
process.exitCode = code;
