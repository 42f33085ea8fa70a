import type { RouteHandler } from './context.js';
import type { ObjectSpec } from './param-spec.js';

export interface RouteDefinition {
  method: 'GET' | 'POST' | 'DELETE';
  /** Like `/v1/payment_intents/:intent/confirm`. */
  path: string;
  spec: ObjectSpec;
  handler: RouteHandler;
}

interface CompiledRoute extends RouteDefinition {
  segments: string[];
}

export interface RouteMatch {
  route: RouteDefinition;
  pathParams: string[];
}

export class Router {
  private readonly bySize = new Map<number, CompiledRoute[]>();

  constructor(routes: readonly RouteDefinition[]) {
    for (const route of routes) {
      const segments = route.path.split('/').filter((s) => s !== '');
      const list = this.bySize.get(segments.length) ?? [];
      list.push({ ...route, segments });
      this.bySize.set(segments.length, list);
    }
  }

  /** `METHOD /path/:param` for every route, for the control API. */
  list(): string[] {
    return [...this.bySize.values()].flat().map((r) => `${r.method} ${r.path}`);
  }

  /** Path segments are already split and percent-decoded. */
  match(method: string, segments: readonly string[]): RouteMatch | undefined {
    for (const route of this.bySize.get(segments.length) ?? []) {
      if (route.method !== method) continue;
      const pathParams: string[] = [];
      let matched = true;
      for (let i = 0; i < segments.length; i++) {
        const pattern = route.segments[i] ?? '';
        const actual = segments[i] ?? '';
        if (pattern.startsWith(':')) {
          if (actual === '') {
            matched = false;
            break;
          }
          pathParams.push(actual);
        } else if (pattern !== actual) {
          matched = false;
          break;
        }
      }
      if (matched) return { route, pathParams };
    }
    return undefined;
  }
}
