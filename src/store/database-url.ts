export const DEFAULT_DATABASE_URL = 'sqlite:./data/payments.db';

export type DatabaseTarget =
  | { dialect: 'sqlite'; /** file path, or `:memory:` */ path: string }
  | { dialect: 'postgres'; connectionString: string };

/**
 * Reads `DATABASE_URL`: `sqlite:<path>` (also `sqlite://<path>`, `sqlite::memory:`) or
 * `postgres://` / `postgresql://`. An empty value means the embedded default.
 */
export function parseDatabaseUrl(url: string | undefined): DatabaseTarget {
  const value = (url ?? '').trim() || DEFAULT_DATABASE_URL;
  if (/^postgres(ql)?:\/\//i.test(value)) return { dialect: 'postgres', connectionString: value };
  const sqlite = /^sqlite:(.*)$/i.exec(value);
  if (sqlite) {
    let path = sqlite[1] ?? '';
    if (path.startsWith('//')) path = path.slice(2);
    if (!path) throw new Error('DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/payments.db');
    return { dialect: 'sqlite', path };
  }
  throw new Error(
    `DATABASE_URL must start with sqlite:, postgres:// or postgresql:// (got "${redactDatabaseUrl(value)}")`,
  );
}

/** The URL without its password, fit for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    parsed.searchParams.forEach((_v, k) => {
      // The names the logger's filter redacts too (token, signature, credential): where it found one unmasked, its
      // [REDACTED] took the text after the URL with it.
      if (/pass|secret|key|token|signature|credential/i.test(k)) parsed.searchParams.set(k, '***');
    });
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}
