/**
 * What contract.test.ts leaves open about the Python service's clients: that its answers still validate says
 * nothing about a field the contract stops requiring (an answer without it would validate too), and its query
 * parameters were not checked at all. Here every field of the original README's answers must stay required, and
 * its query parameters must stay declared, taking the README's values, with no other one required.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { operation, validate, validateResponse } from '../helpers/contract.js';

type Json = Record<string, unknown>;

const original = JSON.parse(
  readFileSync(new URL('../fixtures/original-readme-examples.json', import.meta.url), 'utf8'),
) as {
  queries: Record<string, Record<string, string>>;
  responses: Record<string, { status: number; body: Json }>;
};

/** `body` less one field, for every field (nested objects' fields too), named by its path. */
function withoutEachField(body: Json, path = ''): [string, Json][] {
  const out: [string, Json][] = [];
  for (const [key, value] of Object.entries(body)) {
    const { [key]: _dropped, ...rest } = body;
    out.push([`${path}${key}`, rest]);
    if (
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      Object.keys(value).length > 0
    ) {
      for (const [inner, shorter] of withoutEachField(value as Json, `${path}${key}.`))
        out.push([inner, { ...body, [key]: shorter }]);
    }
  }
  return out;
}

describe("the original README's answers: every field stays required", () => {
  const cases = Object.entries(original.responses).flatMap(([operationId, { status, body }]) =>
    withoutEachField(body).map(([field, shorter]) => [operationId, status, field, shorter] as const),
  );

  it('has the fields to check', () => {
    // 8 answers; the refund's id, amount and status are nested in createRefund's.
    expect(Object.keys(original.responses)).toHaveLength(8);
    expect(cases.map(([op, , field]) => `${op}.${field}`)).toContain('createRefund.refund.status');
  });

  it.each(cases)('%s %s without %s is not a valid answer', (operationId, status, _field, shorter) => {
    expect(validateResponse(operationId, status, original.responses[operationId]!.body)).toEqual([]);
    expect(validateResponse(operationId, status, shorter)).not.toEqual([]);
  });

  it("outcome messages on stripe_refund_responses carry, required, the fields of the original's refund status", () => {
    // The original README publishes each refund's result to stripe_refund_responses and reads its status with
    // GET /refund-status; a consumer written for it reads those fields from the message.
    const statusFields = Object.keys(original.responses.getRefundStatus!.body);
    const message: Json = {
      success: true,
      owner: null,
      request_id: 'unique-id-123',
      refund_id: 're_1',
      status: 'succeeded',
      amount: 5000,
      currency: 'sgd',
      payment_intent_id: 'pi_1',
      failure_reason: null,
    };
    const pointer = '#/components/schemas/RefundOutcomeMessage';
    expect(validate(pointer, message)).toEqual([]);
    for (const field of statusFields) {
      expect(message, field).toHaveProperty(field);
      const { [field]: _dropped, ...rest } = message;
      expect(validate(pointer, rest), field).not.toEqual([]);
    }
  });
});

describe("the original README's query parameters", () => {
  function queryParameters(operationId: string): Json[] {
    return ((operation(operationId).op.parameters ?? []) as Json[]).filter((p) => p.in === 'query');
  }

  it.each(Object.entries(original.queries))(
    '%s declares %o and requires nothing else',
    (operationId, query) => {
      const declared = queryParameters(operationId);
      for (const [name, value] of Object.entries(query)) {
        const parameter = declared.find((p) => p.name === name);
        expect(parameter, name).toBeDefined();
        const schema = parameter!.schema as Json;
        const pointer = typeof schema.$ref === 'string' ? schema.$ref : null;
        expect(pointer, `${name} names a component schema`).not.toBeNull();
        expect(validate(pointer!, value), name).toEqual([]);
      }
      const required = declared.filter((p) => p.required === true).map((p) => p.name);
      expect(required.filter((name) => !(String(name) in query))).toEqual([]);
    },
  );

  it('GET /checkout-session still requires session_id; GET /refund-status takes payment_intent_id without needing it', () => {
    expect(queryParameters('getCheckoutSession').find((p) => p.name === 'session_id')?.required).toBe(true);
    expect(queryParameters('getRefundStatus').find((p) => p.name === 'payment_intent_id')?.required).not.toBe(
      true,
    );
  });
});
