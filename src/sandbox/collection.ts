import { invalidRequest, resourceMissing } from './stripe-error.js';

/**
 * Objects of one type in creation order, with O(1) lookup by id. Each object gets a sequence
 * number at insertion; lists use it as a stable cursor position. With `maxSize` the oldest
 * objects are dropped (in batches, so eviction stays amortised O(1)), and `onEvict` hears which,
 * so indexes kept elsewhere can forget them too.
 */
export class Collection<T extends { id: string }> {
  private items: T[] = [];
  private base = 0;
  private readonly seqById = new Map<string, number>();

  constructor(
    private readonly maxSize = Number.POSITIVE_INFINITY,
    private readonly onEvict?: (evicted: readonly T[]) => void,
  ) {}

  add(item: T): void {
    this.seqById.set(item.id, this.base + this.items.length);
    this.items.push(item);
    if (this.items.length > this.maxSize) {
      const drop = Math.max(1, Math.ceil(this.maxSize / 10));
      const evicted = this.items.splice(0, drop);
      for (const old of evicted) this.seqById.delete(old.id);
      this.base += drop;
      this.onEvict?.(evicted);
    }
  }

  get(id: string): T | undefined {
    const seq = this.seqById.get(id);
    return seq === undefined ? undefined : this.items[seq - this.base];
  }

  seqOf(id: string): number | undefined {
    return this.seqById.get(id);
  }

  /** `paginate`'s cursor lookup: an id that is not here is a 404 naming the cursor's parameter, as on Stripe. */
  cursor(objectName: string): (id: string, param: string) => number {
    return (id, param) => {
      const seq = this.seqById.get(id);
      if (seq === undefined) throw resourceMissing(objectName, id, param);
      return seq;
    };
  }

  get size(): number {
    return this.items.length;
  }

  clear(): void {
    this.items = [];
    this.base = 0;
    this.seqById.clear();
  }

  /** A view for `paginate` over the whole collection. */
  view(): SeqView<T> {
    const items = this.items;
    const base = this.base;
    return { length: items.length, at: (i) => items[i] as T, seqAt: (i) => base + i };
  }

  /** A view over a subset (for example the refunds of one charge), already in creation order. */
  subsetView(subset: readonly T[]): SeqView<T> {
    return {
      length: subset.length,
      at: (i) => subset[i] as T,
      seqAt: (i) => this.seqById.get((subset[i] as T).id) ?? -1,
    };
  }
}

export interface SeqView<T> {
  length: number;
  at(i: number): T;
  seqAt(i: number): number;
}

export type CreatedFilter = number | { gt?: number; gte?: number; lt?: number; lte?: number };

export interface ListOptions {
  limit?: number;
  starting_after?: string;
  ending_before?: string;
  created?: CreatedFilter;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

/** A page as a Stripe list object, each item rendered. */
export function listObject<T>(page: Page<T>, render: (item: T) => unknown, url: string) {
  return { object: 'list' as const, data: page.data.map(render), has_more: page.has_more, url };
}

export function createdMatches(created: number, filter: CreatedFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'number') return created === filter;
  if (filter.gt !== undefined && !(created > filter.gt)) return false;
  if (filter.gte !== undefined && !(created >= filter.gte)) return false;
  if (filter.lt !== undefined && !(created < filter.lt)) return false;
  if (filter.lte !== undefined && !(created <= filter.lte)) return false;
  return true;
}

/** Index of the first element whose sequence number is greater than `seq`. */
function upperBound<T>(view: SeqView<T>, seq: number): number {
  let lo = 0;
  let hi = view.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (view.seqAt(mid) <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function resolveLimit(limit: number | undefined): number {
  if (limit === undefined) return 10;
  if (limit < 1 || limit > 100) {
    throw invalidRequest(`Invalid limit: must be between 1 and 100`, 'limit');
  }
  return limit;
}

/**
 * Stripe list semantics, newest first: `starting_after` pages towards older objects,
 * `ending_before` towards newer ones; `has_more` says whether more exist in that direction.
 */
export function paginate<T extends { id: string; created: number }>(
  view: SeqView<T>,
  options: ListOptions,
  cursorSeq: (id: string, param: string) => number,
  filter: (item: T) => boolean = () => true,
): Page<T> {
  const limit = resolveLimit(options.limit);
  if (options.starting_after !== undefined && options.ending_before !== undefined) {
    throw invalidRequest(
      'You may only specify one of these parameters: ending_before, starting_after.',
      'ending_before',
    );
  }
  const matches = (item: T): boolean => createdMatches(item.created, options.created) && filter(item);
  const data: T[] = [];
  if (options.ending_before !== undefined) {
    const seq = cursorSeq(options.ending_before, 'ending_before');
    for (let i = upperBound(view, seq); i < view.length && data.length <= limit; i++) {
      const item = view.at(i);
      if (matches(item)) data.push(item);
    }
    const hasMore = data.length > limit;
    return { data: data.slice(0, limit).reverse(), has_more: hasMore };
  }
  let start = view.length - 1;
  if (options.starting_after !== undefined) {
    const seq = cursorSeq(options.starting_after, 'starting_after');
    start = upperBound(view, seq - 1) - 1;
  }
  for (let i = start; i >= 0 && data.length <= limit; i--) {
    const item = view.at(i);
    if (matches(item)) data.push(item);
  }
  const hasMore = data.length > limit;
  if (hasMore) data.pop();
  return { data, has_more: hasMore };
}
