import { invalidRequest } from './stripe-error.js';

/**
 * Checks `expand[]` against what the object supports. `alwaysNull` lists expandable fields that are
 * null in the sandbox (customer, invoice, ...): expanding them is valid and changes nothing.
 * In list endpoints Stripe requires the `data.` prefix.
 */
export function parseExpand(
  expand: unknown,
  supported: readonly string[],
  alwaysNull: readonly string[] = [],
  list = false,
): ReadonlySet<string> {
  const out = new Set<string>();
  if (!Array.isArray(expand)) return out;
  for (const raw of expand as string[]) {
    let field = raw;
    if (list) {
      if (!raw.startsWith('data.'))
        throw invalidRequest(`This property cannot be expanded (${raw}).`, 'expand');
      field = raw.slice('data.'.length);
    }
    if (supported.includes(field)) out.add(field);
    else if (!alwaysNull.includes(field)) {
      throw invalidRequest(`This property cannot be expanded (${raw}).`, 'expand');
    }
  }
  return out;
}
