/**
 * Baseline 2, what a team would write without this service: a minimal Express handler that calls
 * Stripe (here the same standalone sandbox process the service uses) through the official SDK, with
 * no contract validation, no ledger, no idempotency bookkeeping and no auth.
 *
 * Env: PORT (0 = any; printed as `listening <port>`), STRIPE_SECRET_KEY, STRIPE_API_BASE.
 */
import express from 'express';
import Stripe from 'stripe';

const base = new URL(process.env['STRIPE_API_BASE'] ?? 'http://127.0.0.1:12111');
const stripe = new Stripe(process.env['STRIPE_SECRET_KEY'] ?? 'sk_test_baseline', {
  host: base.hostname,
  port: base.port,
  protocol: base.protocol === 'https:' ? 'https' : 'http',
  telemetry: false,
});

const app = express();
app.disable('x-powered-by');
app.use(express.json());

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});

app.post('/payment-intent', async (req, res) => {
  try {
    const body = req.body as { amount: number; currency: string };
    const pi = await stripe.paymentIntents.create({
      amount: body.amount,
      currency: body.currency,
      automatic_payment_methods: { enabled: true },
    });
    res.json({ success: true, clientSecret: pi.client_secret, paymentIntentId: pi.id, status: pi.status });
  } catch (err) {
    res.status(500).json({ error: (err as Error).message });
  }
});

app.get('/payment-intent/:id', async (req, res) => {
  try {
    const pi = await stripe.paymentIntents.retrieve(req.params.id);
    res.json({
      id: pi.id,
      amount: pi.amount,
      currency: pi.currency,
      status: pi.status,
      metadata: pi.metadata,
      amount_received: pi.amount_received,
      created: pi.created,
    });
  } catch (err) {
    res.status(500).json({ error: (err as Error).message });
  }
});

const server = app.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
