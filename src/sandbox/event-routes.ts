import type { SandboxContext } from './context.js';
import { parseExpand } from './expand.js';
import { arrayOf, bool, expand, listParams, obj, str } from './param-spec.js';
import type { RouteDefinition } from './router.js';
import { invalidRequest } from './stripe-error.js';

export function eventRoutes(ctx: SandboxContext): RouteDefinition[] {
  return [
    {
      method: 'GET',
      path: '/v1/events',
      spec: obj({ ...listParams, type: str(), types: arrayOf(str(), 20), delivery_success: bool }),
      handler: (params) => {
        parseExpand(params['expand'], [], [], true);
        const type = params['type'] as string | undefined;
        const types = params['types'] as string[] | undefined;
        if (type !== undefined && types !== undefined) {
          throw invalidRequest(
            'You may pass either type or types, but not both.',
            'types',
            'parameters_exclusive',
          );
        }
        return {
          status: 200,
          json: ctx.events.list({
            limit: params['limit'] as number | undefined,
            starting_after: params['starting_after'] as string | undefined,
            ending_before: params['ending_before'] as string | undefined,
            created: params['created'] as never,
            types: type !== undefined ? [type] : types,
            delivery_success: params['delivery_success'] as boolean | undefined,
          }),
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/events/:id',
      spec: obj({ expand }),
      handler: (params, [id = '']) => {
        parseExpand(params['expand'], [], []);
        return { status: 200, json: ctx.events.retrieve(id) };
      },
    },
  ];
}
