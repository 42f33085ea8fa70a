// The storefront: one product, a Buy button that creates a checkout session and goes to its hosted page.
import { api, clearError, loadConfig, showAuthNotice, showError } from './api.js';
import { formatMoney, minorUnits } from './money.js';

export const PRODUCT = Object.freeze({
  name: 'Sandbox coffee mug',
  description: 'Stoneware, 350 ml',
  unit_amount: 2500,
  currency: 'sgd',
});

const buyButton = document.getElementById('buy');
const status = document.getElementById('buy-status');

function pageUrl(path) {
  return new URL(path, window.location.href).href;
}

async function buy(event) {
  event.preventDefault();
  clearError();
  const quantity = Number(document.getElementById('quantity').value);
  buyButton.disabled = true;
  status.textContent = 'Creating a checkout session…';
  try {
    const session = await api('/create-checkout-session', {
      method: 'POST',
      body: {
        line_items: [
          {
            price_data: {
              currency: PRODUCT.currency,
              product_data: { name: PRODUCT.name, description: PRODUCT.description },
              unit_amount: PRODUCT.unit_amount,
            },
            quantity,
          },
        ],
        // Stripe substitutes the placeholder itself, so it must reach it unencoded.
        success_url: `${pageUrl('success.html')}?session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: pageUrl('./'),
        metadata: { source: 'demo-storefront' },
      },
    });
    status.textContent = 'Redirecting to the checkout page…';
    window.location.assign(session.url);
  } catch (err) {
    status.textContent = '';
    showError(err);
    buyButton.disabled = false;
    // Disabling it took the keyboard's focus away; give it back for another try.
    buyButton.focus();
  }
}

async function init() {
  const config = await loadConfig();
  const units = minorUnits(config);
  document.getElementById('product-name').textContent = PRODUCT.name;
  document.getElementById('product-description').textContent = PRODUCT.description;
  const price = document.getElementById('price');
  price.textContent = formatMoney(PRODUCT.unit_amount, PRODUCT.currency, units);
  price.dataset.amount = String(PRODUCT.unit_amount);
  price.dataset.currency = PRODUCT.currency;
  document.getElementById('buy-form').addEventListener('submit', buy);
  if (config.authRequired) {
    showAuthNotice();
    return;
  }
  buyButton.disabled = false;
  document.body.dataset.ready = 'true';
}

init().catch(showError);
