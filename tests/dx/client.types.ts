/**
 * Type-level tests of the client, checked by `npm run typecheck` (tsc): each `@ts-expect-error` must meet
 * an error, so if the client stopped rejecting one of these mistakes tsc would fail on the unused directive.
 * Nothing here is ever called. openapi-fetch infers the request options generically, so TypeScript's
 * excess-property check does not run on bodies: an unknown extra field compiles (the service answers 400).
 */
import {
  createPaymentsClient,
  PaymentsApiError,
  RefundWaitTimeoutError,
  type RefundStatus,
} from '../../client/index.js';

const client = createPaymentsClient({ baseUrl: 'http://127.0.0.1:5000', apiKey: 'psk_example' });

export async function rightCalls(): Promise<RefundStatus> {
  const created = await client.POST('/payment-intent', { body: { amount: 1000, currency: 'sgd' } });
  if (created.data) {
    const secret: string = created.data.clientSecret;
    void secret;
  }
  await client.POST('/refund', {
    body: { payment_intent_id: 'pi_1', amount: 500 },
    ...client.withIdempotencyKey('retry-safe-1'),
  });
  await client.GET('/checkout-session', { params: { query: { session_id: 'cs_test_1' } } });
  await client.GET('/payment-intent/{payment_intent_id}', {
    params: { path: { payment_intent_id: 'pi_1' } },
    signal: AbortSignal.timeout(10_000),
  });
  return client.refundAndWait('unique-id-123', { timeoutMs: 1000 });
}

export function errorFields(err: unknown): string | undefined {
  if (err instanceof PaymentsApiError) {
    const seconds: number | undefined = err.retryAfter;
    void seconds;
    return err.requestId ?? err.code;
  }
  if (err instanceof RefundWaitTimeoutError) return err.requestId;
  return undefined;
}

export async function wrongCalls(): Promise<void> {
  // @ts-expect-error amount must be an integer number, not a string
  await client.POST('/payment-intent', { body: { amount: '1000', currency: 'sgd' } });

  // @ts-expect-error currency is required
  await client.POST('/payment-intent', { body: { amount: 1000 } });

  // @ts-expect-error payment_intent_id is required
  await client.POST('/refund', { body: { amount: 500 } });

  // @ts-expect-error reason is one of duplicate, fraudulent, requested_by_customer
  await client.POST('/refund', { body: { payment_intent_id: 'pi_1', reason: 'changed_mind' } });

  // @ts-expect-error POST /payment-intent needs a body
  await client.POST('/payment-intent', {});

  // @ts-expect-error there is no /refunds path
  await client.POST('/refunds', { body: { payment_intent_id: 'pi_1' } });

  // @ts-expect-error /refund-status/{request_id} needs its path parameter
  await client.GET('/refund-status/{request_id}', {});

  // @ts-expect-error session_id is a required query parameter
  await client.GET('/checkout-session', { params: { query: {} } });

  const e = new PaymentsApiError(503, undefined);
  // @ts-expect-error requestId is read-only
  e.requestId = 'x';

  // @ts-expect-error refundAndWait takes a request id or a refund-async body, not a number
  await client.refundAndWait(42);

  const got = await client.GET('/payment-intent/{payment_intent_id}', {
    params: { path: { payment_intent_id: 'pi_1' } },
  });
  // @ts-expect-error the client secret is never returned by GET /payment-intent/{id}
  void got.data?.clientSecret;
}
