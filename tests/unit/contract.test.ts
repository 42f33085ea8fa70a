import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  operation,
  operations,
  requestSchemaPointer,
  spec,
  validate,
  validateResponse,
} from '../helpers/contract.js';

const original = JSON.parse(
  readFileSync(new URL('../fixtures/original-readme-examples.json', import.meta.url), 'utf8'),
) as {
  requests: Record<string, unknown>;
  queries: Record<string, Record<string, string>>;
  responses: Record<string, { status: number; body: unknown }>;
};

describe('openapi.yaml covers the original service', () => {
  const expected: [string, string, string][] = [
    ['post', '/create-checkout-session', 'createCheckoutSession'],
    ['get', '/checkout-session', 'getCheckoutSession'],
    ['post', '/payment-intent', 'createPaymentIntent'],
    ['get', '/payment-intent/{payment_intent_id}', 'getPaymentIntent'],
    ['post', '/refund', 'createRefund'],
    ['post', '/refund-async', 'createRefundAsync'],
    ['get', '/refund-status/{request_id}', 'getRefundStatus'],
    ['post', '/webhook', 'handleStripeWebhook'],
  ];

  it.each(expected)('%s %s is %s', (method, path, operationId) => {
    const op = operation(operationId);
    expect(op.method).toBe(method);
    expect(op.path).toBe(path);
  });

  it('is OpenAPI 3.1', () => {
    expect(spec.document.openapi).toMatch(/^3\.1\./);
  });

  it.each(operations().map((o) => [o.operationId, o] as const))(
    '%s has a tag, a summary, examples and a default problem+json response',
    (_id, o) => {
      expect(Array.isArray(o.op.tags) && (o.op.tags as unknown[]).length).toBeTruthy();
      expect(typeof o.op.summary).toBe('string');
      const responses = o.op.responses as Record<string, Record<string, unknown>>;
      expect(responses.default).toEqual({ $ref: '#/components/responses/Problem' });
      const raw = JSON.stringify(o.op);
      expect(raw).toContain('"examples"');
    },
  );
});

describe("the original README's payloads validate against the contract", () => {
  it.each(Object.entries(original.requests))('request %s', (name, body) => {
    const operationId = name.replace(/Frontend$/, '');
    expect(validate(requestSchemaPointer(operationId), body)).toEqual([]);
  });

  it.each(Object.entries(original.responses))('response %s', (operationId, { status, body }) => {
    expect(validateResponse(operationId, status, body)).toEqual([]);
  });

  it('rejects what the contract forbids (the validator is not vacuous)', () => {
    expect(
      validate(requestSchemaPointer('createPaymentIntent'), { amount: 10.5, currency: 'SGD' }),
    ).not.toEqual([]);
    expect(validate(requestSchemaPointer('createPaymentIntent'), { amount: 0, currency: 'sgd' })).not.toEqual(
      [],
    );
    expect(
      validate(requestSchemaPointer('createRefund'), { payment_intent_id: 'ch_1', amount: 5 }),
    ).not.toEqual([]);
    expect(validateResponse('createPaymentIntent', 200, { success: true })).not.toEqual([]);
  });
});
