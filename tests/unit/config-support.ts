/** What the configuration tests ask of loadConfig. */
import { ConfigError, loadConfig } from '../../src/config/index.js';

/** The problems loadConfig reports for `env` (none when it loads). */
export function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}
