// Generated from openapi.yaml by `npm run generate`. Do not edit by hand.

export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description Answers 200 while the process is alive and serving HTTP. Checks nothing else.
         */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness
         * @description Checks the store, RabbitMQ (when configured) and Stripe. Answers 503 naming every part that
         *     failed that the process cannot work without, so a load balancer stops sending traffic and an operator
         *     knows where to look. A process that serves the API (`ROLE=api` or `all`) works without RabbitMQ for a
         *     while (queued refunds wait in its database until RabbitMQ is back; nothing else needs it), so RabbitMQ
         *     down leaves it ready, with `broker` listed in `degraded`; a worker process (`ROLE=worker`) is not ready
         *     without it. Stripe unreachable, slow or failing leaves an API process ready too, with `stripe` in
         *     `degraded` (every process shares one Stripe; webhooks, refund status and queued refunds still work, and
         *     calls that need Stripe answer their own problem); Stripe refusing the process's key (401 or 403) makes
         *     it not ready, as it does a worker without Stripe. Each check that is down says why in `reasons`, in a
         *     fixed phrase (never an error's own text, so no host, user or key). Probes arriving while the database
         *     is asked share that one question, and Stripe's answer is kept 5 s, so frequent probes take at most one
         *     database connection at a time and make at most one Stripe call every 5 s.
         */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics
         * @description Metrics in the Prometheus text format: HTTP requests, Stripe calls, refunds in flight by status,
         *     refunds moved into a final status by this process, outbox backlog, how long the oldest refund in
         *     flight and the oldest outbox message have waited, queue and dead-letter depth,
         *     webhook events, and webhook events stored but not yet applied. Open by default; with `METRICS_PUBLIC=false`
         *     a secret API key (`psk_...`) of any scope is required: a publishable key (`ppk_...`) is answered 401.
         *     While the service's database does not answer (within 3 s),
         *     the scrape still answers: `payments_store_up` is 0, and `payments_refunds`,
         *     `payments_outbox_backlog`, `payments_refunds_oldest_age_seconds`,
         *     `payments_outbox_oldest_age_seconds` and `payments_webhook_events_unapplied` have no series (with `METRICS_PUBLIC=false`, checking the key may itself answer
         *     503 `store_unavailable`).
         */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/create-checkout-session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create a checkout session
         * @description Creates a Stripe-hosted checkout page for a one-time payment and returns its URL.
         *     Redirect the customer's browser to `url`. `{CHECKOUT_SESSION_ID}` in `success_url` is
         *     replaced by the session id when the customer comes back; written percent-encoded
         *     (`%7BCHECKOUT_SESSION_ID%7D`) Stripe would leave it as it is, so that is refused with
         *     `400 placeholder_encoded`. With a publishable key, `success_url`
         *     and `cancel_url` must be on one of the shop's origins (`CORS_ORIGINS`), else
         *     `400 redirect_not_allowed`.
         */
        post: operations["createCheckoutSession"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/checkout-session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Retrieve a checkout session
         * @description Returns the payment details of a checkout session, for example on the success page.
         */
        get: operations["getCheckoutSession"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/payment-intent": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create a payment intent
         * @description Creates a payment intent for a custom payment UI and returns its client secret, which the
         *     front end hands to Stripe.js. The client secret is only ever returned here.
         *     With `payment_method` and `confirm: true` the intent is confirmed at once on the server;
         *     a declined card then answers 402 with Stripe's `code` and `decline_code` and the intent made
         *     (`payment_intent_id`, awaiting another payment method), and a card whose issuer
         *     asks for 3D Secure answers 200 with `status: requires_action`: nothing is charged until the customer
         *     authenticates in the browser (Stripe.js `handleNextAction` with `clientSecret`). A publishable key may
         *     not confirm (`403 insufficient_scope`): the browser confirms with Stripe.js and the client secret.
         */
        post: operations["createPaymentIntent"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/payment-intent/{payment_intent_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Retrieve a payment intent
         * @description Returns the amount, currency and status of a payment intent. Never returns its client secret.
         */
        get: operations["getPaymentIntent"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/refund": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Refund a payment now
         * @description Refunds a paid payment intent and waits for Stripe's answer. Without `amount`, the part not
         *     yet refunded is refunded. An amount above what is left to refund (counting refunds still in
         *     flight) is refused with 409 before Stripe is called, or by Stripe with the same 409 when refunds
         *     made in the Stripe dashboard have not reached the service yet. A payment intent that has not succeeded
         *     (not paid yet, or waiting for 3D Secure) is refused with 409 `payment_not_refundable`. Sent again
         *     with the `request_id` of a refund still `processing` (409 `refund_in_progress`), the request makes
         *     that refund itself, once (same Stripe idempotency key), as soon as no attempt can still be at work
         *     on it: the first request's answer was lost (its 503), or the process making it stopped.
         */
        post: operations["createRefund"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/refund-async": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Queue a refund
         * @description Checks the refund like `POST /refund`, stores it durably and answers 202 at once; a
         *     background worker asks Stripe. Follow it with `GET /refund-status/{request_id}`.
         *     Sending the same `request_id` again with the same body returns the same answer and
         *     refunds nothing more; with a different body it is refused with 409. The `request_id` of a refund
         *     asked for with `POST /refund` (same body) names that refund: answered with its status, or, when it
         *     has failed or was canceled, refused with 409 `refund_failed` and the reason (nothing is queued).
         */
        post: operations["createRefundAsync"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/refund-status/{request_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Status of a refund
         * @description Answers from the service's ledger with the refund's current status.
         */
        get: operations["getRefundStatus"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhook": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Receive a Stripe event
         * @description Endpoint for Stripe's webhooks. The `Stripe-Signature` header is checked against the exact
         *     bytes of the body with the webhook signing secret and a 300 second tolerance. Each event id is
         *     processed once; a repeated delivery is acknowledged and changes nothing (the stored event is kept
         *     until 30 days after it was applied; a copy arriving later is applied again, which changes nothing).
         *     Answered under any `Host`, also where the service answers only loopback names (a tunnel forwarding
         *     Stripe's events to a developer's machine names its own host).
         */
        post: operations["handleStripeWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * Problem
         * @description RFC 9457 problem details. Every error answer of this service has this shape.
         */
        Problem: {
            /**
             * Format: uri-reference
             * @description A URI identifying the problem type; `about:blank` when the HTTP status says it all.
             * @default about:blank
             */
            type: string;
            /** @description Short summary of the problem type. */
            title: string;
            /** @description The HTTP status code. */
            status: number;
            /** @description Explanation specific to this occurrence. */
            detail?: string;
            /** @description The request path this problem occurred on. */
            instance?: string;
            /** @description The request id, also sent in the `X-Request-Id` header; quote it to support. */
            request_id?: string;
            /** @description Stable machine-readable code (Stripe's error code where Stripe produced the error). */
            code?: string;
            /** @description Stripe's decline code for a declined card. */
            decline_code?: string;
            /**
             * @description `POST /payment-intent` with `confirm: true` whose card was declined: the payment intent it made, which
             *     awaits another payment method (readable with `GET /payment-intent/{payment_intent_id}`; nothing was charged).
             */
            payment_intent_id?: string;
            /** @description The request parameter Stripe objected to, if any. */
            param?: string;
            /** @description Seconds to wait before retrying (also sent as the `Retry-After` header). */
            retry_after?: number;
            /** @description One entry per invalid field. */
            errors?: components["schemas"]["FieldError"][];
        };
        /**
         * FieldError
         * @description One invalid part of a request.
         */
        FieldError: {
            /** @description JSON pointer to the invalid field, prefixed by its location (`/body/amount`, `/query/session_id`). */
            path: string;
            /** @description What is wrong with it. */
            message: string;
            /** @description Validator rule that failed. */
            code?: string;
        };
        /**
         * Amount
         * Format: int64
         * @description An amount in the currency's smallest unit (for example 1000 = 10.00 SGD, 1000 JPY, or 1000 = 1.000 KWD).
         *     In the three-decimal currencies (`bhd`, `jod`, `kwd`, `omr`, `tnd`) Stripe requires the last digit to be 0
         *     (docs.stripe.com/currencies#three-decimal), and in `isk` and `ugx`, whole units written with two decimals
         *     (500 = 5 ISK), the last two digits to be 00 (docs.stripe.com/currencies#special-cases); any other amount is
         *     refused with 400 `amount_not_rounded`. At most 99999999 (eight digits), or 999999999999 (twelve) in `idr`
         *     (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts); more is refused with 400 `amount_too_large`.
         * @example 10000
         */
        Amount: number;
        /**
         * UnitAmount
         * Format: int64
         * @description The price of one unit of a checkout line item, as an `Amount` but 0 allowed, as Stripe allows it: a free item
         *     beside paid ones. The session's total must still reach Stripe's minimum (a session of free items only is
         *     refused with 400 from Stripe, `param: line_items`).
         * @example 10000
         */
        UnitAmount: number;
        /**
         * Currency
         * @description Three-letter ISO 4217 currency code supported by Stripe, in any case (`SGD` is taken as `sgd`, as Stripe and
         *     the original service take it; answers name it in lower case). Zero-decimal currencies (`jpy`, `krw`, ...)
         *     count whole units; three-decimal ones (`bhd`, `jod`, `kwd`, `omr`, `tnd`) count thousandths, in steps of 10;
         *     `isk` and `ugx` count hundredths, in steps of 100.
         * @example sgd
         */
        Currency: string;
        /**
         * Metadata
         * @description Up to 50 key/value pairs passed through to Stripe (keys up to 40 characters, values up to 500). A value's
         *     length counts UTF-16 code units (an emoji counts 2): a value of at most 500 characters that its emoji take
         *     past 500 units is refused with 400 `metadata_value_too_long` (one of more than 500 characters by `maxLength`,
         *     a 400 without `code`). The key `payment_service_owner` is the service's own (with API keys, it
         *     names a payment intent's or checkout session's owner at Stripe): it is refused with 400
         *     `metadata_key_reserved`, and with API keys a payment intent or checkout session takes up to 49 keys
         *     (50 is 400 `metadata_too_many_keys`).
         * @example {
         *       "order_id": "ord_1042"
         *     }
         */
        Metadata: {
            [key: string]: string;
        };
        /**
         * RefundMetadata
         * @description Up to 49 key/value pairs passed through to Stripe (keys up to 40 characters, values up to 500, counted
         *     in UTF-16 code units as for `Metadata`). The service adds its own `request_id` key to every refund it
         *     makes (Stripe allows 50 keys in all), by which it finds the refund at Stripe, so that key is reserved.
         *     The key `payment_service_lowered_from` is the service's own too (the ledger's mark of a refund of what is
         *     left that was lowered to what Stripe had left; never sent to Stripe): it is refused with 400
         *     `metadata_key_reserved`.
         * @example {
         *       "order_id": "ord_1042"
         *     }
         */
        RefundMetadata: {
            [key: string]: string;
        };
        /**
         * PaymentIntentId
         * @description A Stripe payment intent id.
         * @example pi_3PqRsT2eZvKYlo2C1a2b3c4d
         */
        PaymentIntentId: string;
        /**
         * CheckoutSessionId
         * @description A Stripe checkout session id.
         * @example cs_test_a1b2c3d4e5f6g7h8i9j0
         */
        CheckoutSessionId: string;
        /**
         * RequestId
         * @description Client-chosen id that makes a refund request idempotent (letters, digits, `-`, `_`, `.`, `:`). Ids starting
         *     with `stripe:` name refunds made in the Stripe dashboard: a refund request that sends one is
         *     `400 request_id_reserved`. `.` and `..` alone are refused (400): as a URL path segment they are
         *     dot-segments, which clients, proxies and servers remove, so `GET /refund-status/{request_id}` could never
         *     reach such a refund (ids that only hold dots, such as `...` or `.a`, are taken).
         * @example unique-id-123
         */
        RequestId: string;
        /**
         * RefundReason
         * @description Why the refund is made, as Stripe accepts it.
         * @enum {string}
         */
        RefundReason: "duplicate" | "fraudulent" | "requested_by_customer";
        /**
         * RefundState
         * @description Where a refund is. Moves only forward: `queued` → `processing` → `pending` or
         *     `requires_action` → `succeeded`, `failed` or `canceled`. Two moves back, both on Stripe's word: a
         *     `succeeded` refund becomes `failed` when the customer's bank returns the money, and a refund the
         *     service gave up on before Stripe answered (`failed`, no `refund_id`) takes Stripe's status when Stripe
         *     turns out to have made it. A refund stays `processing` (its amount reserved) while Stripe cannot be
         *     asked whether it made it, when its last call got no answer (Stripe may still be making it), and while
         *     Stripe refuses the service's key for it (it is made once the key is fixed); `failed` means
         *     Stripe refused the refund itself or, asked, has no such refund.
         * @enum {string}
         */
        RefundState: "queued" | "processing" | "pending" | "requires_action" | "succeeded" | "failed" | "canceled";
        /**
         * Url
         * @description An absolute http(s) URL with a host. The scheme is taken in any case (`HTTPS://`, as Stripe takes it: schemes
         *     are case-insensitive, RFC 3986 3.1) and passed on as written; any other scheme is refused.
         *     `{CHECKOUT_SESSION_ID}` may appear in it as a placeholder.
         */
        Url: string;
        /**
         * LineItem
         * @description One product line of a checkout session.
         */
        LineItem: {
            /**
             * PriceData
             * @description The price of one unit, defined inline.
             */
            price_data: {
                currency: components["schemas"]["Currency"];
                /**
                 * ProductData
                 * @description The product shown on the checkout page.
                 */
                product_data: {
                    /** @description Product name shown to the customer. */
                    name: string;
                    /** @description Longer product description. */
                    description?: string;
                };
                unit_amount: components["schemas"]["UnitAmount"];
            };
            /** @description How many units, up to 999,999 as Stripe takes them (the session's total still at most `Amount`'s maximum). */
            quantity: number;
        };
        /**
         * CreateCheckoutSessionRequest
         * @description What to sell and where to send the customer afterwards. All line items share one currency.
         */
        CreateCheckoutSessionRequest: {
            /** @description The products and quantities. */
            line_items: components["schemas"]["LineItem"][];
            success_url: components["schemas"]["Url"];
            cancel_url: components["schemas"]["Url"];
            /**
             * Format: email
             * @description Pre-fills the customer's e-mail on the checkout page. Its domain needs a dot: Stripe refuses an address
             *     such as `buyer@localhost` (`email_invalid`).
             * @example customer@example.com
             */
            customer_email?: string;
            metadata?: components["schemas"]["Metadata"];
        };
        /**
         * CheckoutSessionCreated
         * @description A new checkout session. `url` is the original service's only field; the others are additions.
         */
        CheckoutSessionCreated: {
            /** @description The Stripe-hosted page to redirect the customer to. */
            url: string;
            /** @description The checkout session id. */
            id?: string;
            /**
             * @description Stripe's session status (`open`, `complete` or `expired`).
             * @example open
             */
            status?: string;
            /**
             * @description Whether the session has been paid (`paid`, `unpaid` or `no_payment_required`).
             * @example unpaid
             */
            payment_status?: string;
            /**
             * Format: int64
             * @description Total in the currency's smallest unit.
             */
            amount_total?: number;
            /** @description Currency of the session. */
            currency?: string;
            /**
             * Format: int64
             * @description Unix time at which the session expires.
             */
            expires_at?: number;
        };
        /**
         * CheckoutSession
         * @description Payment details of a checkout session.
         */
        CheckoutSession: {
            /** @description The checkout session id. */
            id?: string;
            /** @description The payment intent, made by the customer's first attempt to pay and named from then on: after a declined attempt too (the session still `open`, `unpaid`), and after the session expires (the intent canceled); null before any attempt. The payment is made only when `payment_status` is `paid`. */
            payment_intent: string | null;
            /**
             * Format: int64
             * @description Total in the currency's smallest unit.
             */
            amount_total: number | null;
            /** @description Currency of the session. */
            currency: string | null;
            /** @description The customer's e-mail, once known. */
            customer_email: string | null;
            /**
             * @description Whether the session has been paid (`paid`, `unpaid` or `no_payment_required`).
             * @example paid
             */
            payment_status: string;
            /**
             * @description Stripe's session status (`open`, `complete` or `expired`).
             * @example complete
             */
            status?: string | null;
            /** @description The metadata given at creation (without the service's own `payment_service_owner`). */
            metadata: {
                [key: string]: string;
            };
        };
        /**
         * CreatePaymentIntentRequest
         * @description Amount and currency to collect, optionally with a payment method to confirm at once.
         */
        CreatePaymentIntentRequest: {
            amount: components["schemas"]["Amount"];
            currency: components["schemas"]["Currency"];
            metadata?: components["schemas"]["Metadata"];
            /** @description Shown in the Stripe dashboard. */
            description?: string;
            /**
             * Format: email
             * @description Where Stripe sends the receipt. Its domain needs a dot: Stripe refuses an address such as
             *     `buyer@localhost` (`email_invalid`).
             * @example customer@example.com
             */
            receipt_email?: string;
            /** @description A payment method to attach (for example a saved card or a test method such as `pm_card_visa`). */
            payment_method?: string;
            /**
             * @description Confirm the intent at once with `payment_method`, which is then required (400 without it).
             * @default false
             */
            confirm?: boolean;
        };
        /**
         * PaymentIntentCreated
         * @description A new payment intent and the client secret the front end needs.
         */
        PaymentIntentCreated: {
            /**
             * @description Always true on this answer.
             * @constant
             */
            success: true;
            /** @description Pass to Stripe.js to collect the payment. Treat as a secret. */
            clientSecret: string;
            /** @description The payment intent id. */
            paymentIntentId: string;
            /**
             * @description Stripe's status of the intent: `requires_payment_method` unconfirmed, `succeeded` once paid,
             *     `requires_action` while the customer has to authenticate (3D Secure).
             */
            status?: string;
        };
        /**
         * PaymentIntent
         * @description Payment details of a payment intent.
         */
        PaymentIntent: {
            /** @description The payment intent id. */
            id: string;
            /**
             * Format: int64
             * @description Amount in the currency's smallest unit.
             */
            amount: number;
            /** @description Currency. */
            currency: string;
            /**
             * @description Stripe's status of the intent: `requires_payment_method`, `requires_confirmation`,
             *     `requires_action`, `processing`, `requires_capture`, `canceled` or `succeeded`.
             * @example succeeded
             */
            status: string;
            /** @description The metadata given at creation (without the service's own `payment_service_owner`). */
            metadata: {
                [key: string]: string;
            };
            /**
             * Format: int64
             * @description Amount collected.
             */
            amount_received?: number;
            /**
             * Format: int64
             * @description Amount refunded or being refunded, as known to this service.
             */
            amount_refunded?: number;
            /**
             * Format: int64
             * @description Unix time of creation.
             */
            created?: number;
        };
        /**
         * CreateRefundRequest
         * @description What to refund. Without `amount`, everything not yet refunded is refunded.
         */
        CreateRefundRequest: {
            payment_intent_id: components["schemas"]["PaymentIntentId"];
            amount?: components["schemas"]["Amount"];
            reason?: components["schemas"]["RefundReason"];
            request_id?: components["schemas"]["RequestId"];
            metadata?: components["schemas"]["RefundMetadata"];
        };
        /**
         * CreateRefundAsyncRequest
         * @description What to refund in the background. `request_id` makes the request idempotent; one is generated if absent.
         */
        CreateRefundAsyncRequest: {
            payment_intent_id: components["schemas"]["PaymentIntentId"];
            amount?: components["schemas"]["Amount"];
            reason?: components["schemas"]["RefundReason"];
            request_id?: components["schemas"]["RequestId"];
            metadata?: components["schemas"]["RefundMetadata"];
        };
        /**
         * Refund
         * @description A refund as Stripe reported it.
         */
        Refund: {
            /** @description Stripe's refund id (`re_...`). */
            id: string;
            /**
             * Format: int64
             * @description Amount refunded in the currency's smallest unit.
             */
            amount: number;
            status: components["schemas"]["RefundState"];
            /** @description Currency. */
            currency?: string;
            /** @description The refunded payment intent. */
            payment_intent?: string;
            /** @description The reason given. */
            reason?: string | null;
            /**
             * @description Why the refund failed or was canceled, when it did: Stripe's `failure_reason` (`merchant_request` for a
             *     refund canceled at Stripe), or the service's own reason for a refund Stripe refused or never made.
             */
            failure_reason?: string | null;
        };
        /**
         * RefundCreated
         * @description The outcome of a synchronous refund.
         */
        RefundCreated: {
            /**
             * @description Always true on this answer.
             * @constant
             */
            success: true;
            refund: components["schemas"]["Refund"];
            /** @description The service's id for this refund, usable with `GET /refund-status/{request_id}`. */
            request_id?: string;
        };
        /**
         * RefundQueued
         * @description Acknowledgement that a refund is stored and queued.
         */
        RefundQueued: {
            /**
             * @description Always true on this answer.
             * @constant
             */
            success: true;
            /** @description Human-readable confirmation. */
            message: string;
            /** @description The request id to follow the refund with. */
            request_id: string;
            status?: components["schemas"]["RefundState"];
        };
        /**
         * RefundStatus
         * @description The ledger's view of a refund.
         */
        RefundStatus: {
            /**
             * @description Always true on this answer.
             * @constant
             */
            success: true;
            /** @description Stripe's refund id, once Stripe has created the refund. */
            refund_id: string | null;
            status: components["schemas"]["RefundState"];
            /**
             * Format: int64
             * @description Amount refunded or to be refunded, in the currency's smallest unit. Fixed when the request is
             *     accepted (for a refund of what is left: what was left then), and lowered only when Stripe had
             *     less left to refund than the ledger knew (a refund made elsewhere meanwhile).
             */
            amount: number;
            /** @description Currency of the amount (the payment's, lower case), as `POST /refund` and the outcome message name it. */
            currency?: string | null;
            /** @description The request id. */
            request_id: string;
            /** @description The refunded payment intent. */
            payment_intent_id?: string;
            /**
             * @description Why the refund failed or was canceled, when it did: Stripe's `failure_reason` (`merchant_request` for a
             *     refund canceled at Stripe), or the service's own reason for a refund Stripe refused or never made.
             */
            failure_reason?: string | null;
            /**
             * Format: date-time
             * @description When the request was accepted.
             */
            created_at?: string;
            /**
             * Format: date-time
             * @description When the refund last changed: its status, or the service's work on it (an attempt at Stripe begun, a
             *     refund in flight queued again), so it can move while `status` stays `processing`.
             */
            updated_at?: string;
        };
        /**
         * StripeEvent
         * @description A Stripe event as Stripe sends it to webhooks (only the fields this service relies on are listed).
         */
        StripeEvent: {
            /** @description Event id (`evt_...`). */
            id: string;
            /**
             * @description Always `event`.
             * @constant
             */
            object: "event";
            /** @description Event type, such as `refund.updated`. */
            type: string;
            /** @description Stripe API version the event was rendered with. */
            api_version?: string | null;
            /**
             * Format: int64
             * @description Unix time of the event.
             */
            created?: number;
            /** @description Whether the event happened in live mode. */
            livemode?: boolean;
            /** @description The object the event is about. */
            data: {
                /** @description Snapshot of the object at the time of the event. */
                object: Record<string, never>;
                /** @description Changed fields' previous values, on `*.updated` events. */
                previous_attributes?: Record<string, never>;
            };
        };
        /**
         * Health
         * @description Liveness answer.
         */
        Health: {
            /**
             * @description Always `ok` when the process answers.
             * @constant
             */
            status: "ok";
        };
        /**
         * Readiness
         * @description Readiness answer with the state of each dependency.
         */
        Readiness: {
            /**
             * @description `ok` when every check this process cannot work without passed.
             * @enum {string}
             */
            status: "ok" | "unavailable";
            /** @description Names of the checks that failed and that this process cannot work without. */
            failing?: string[];
            /**
             * @description Names of the checks that failed but that this process works without for now, in a process that
             *     serves the API: `broker` (queued refunds wait in its database until RabbitMQ is back) and `stripe`
             *     (unreachable or failing; calls that need it answer their own problem meanwhile).
             */
            degraded?: string[];
            /**
             * @description Each dependency: `ok`, `down`, or `not_configured`. `broker` is `not_configured` in a process with no
             *     RabbitMQ (embedded mode): its refunds go through the in-process queue, which has no check of its own.
             */
            checks: {
                [key: string]: "ok" | "down" | "not_configured";
            };
            /**
             * @description Why each check that is `down` is down (those in `failing` and in `degraded`), by check name; absent when
             *     none is. A short fixed phrase per known cause, for an operator reading the probe, e.g. `the database
             *     did not answer in time`, `the database refuses writes (read-only)` (also `(a standby in recovery, not
             *     the primary)` or `(default_transaction_read_only is on)`), `the database cannot be reached or refuses
             *     connections`, `RabbitMQ is not connected`, `the worker is not subscribed to the refund queue`,
             *     `Stripe refuses this process's key (STRIPE_SECRET_KEY)`, `Stripe did not answer in time`, `Stripe
             *     answers with server errors`, `Stripe cannot be reached`. The phrases may change; the log has the
             *     error itself.
             */
            reasons?: {
                [key: string]: string;
            };
        };
        /**
         * RefundOutcomeMessage
         * @description Message published (persistent, JSON) to the RabbitMQ queue `stripe_refund_responses` whenever
         *     Stripe's answer moves a refund's status (the answer to `POST /refund` or to the worker, or a
         *     webhook) and when the worker gives a refund up. Request ids are chosen per owner (two API keys'
         *     owners may both use `order-1`), so a consumer tells refunds apart by `owner` and `request_id`
         *     together. The AMQP `message_id` is `<owner>/<request_id>#<status>#<time of the change>`
         *     (`<request_id>#<status>#<time of the change>` when `owner` is null), so a consumer can drop a repeat:
         *     delivery is at least once. Order is not guaranteed, even between one refund's outcomes. A status
         *     moves forward (`RefundState`), so a consumer keeps the furthest one it has seen, with two moves back:
         *     `succeeded` to `failed` (the customer's bank returned the money), and a `failed` outcome with
         *     `refund_id: null` (given up before Stripe answered) to any outcome with a `refund_id` (Stripe had made
         *     the refund after all; announced only if Stripe's refund did not fail or get canceled too, since then no
         *     money moved either way: `GET /refund-status` shows Stripe's status). The AMQP header `x-request-id`,
         *     when present, is the `X-Request-Id` of the HTTP request that asked for the refund (absent for refunds
         *     made elsewhere, such as in Stripe's dashboard).
         * @example {
         *       "success": true,
         *       "owner": "shop",
         *       "request_id": "unique-id-123",
         *       "refund_id": "re_3PqRsT2eZvKYlo2C0x9y8z7w",
         *       "status": "succeeded",
         *       "amount": 5000,
         *       "currency": "sgd",
         *       "payment_intent_id": "pi_3PqRsT2eZvKYlo2C1a2b3c4d",
         *       "failure_reason": null
         *     }
         */
        RefundOutcomeMessage: {
            /** @description True while the refund is succeeding (pending, requires_action or succeeded). */
            success: boolean;
            /**
             * @description The owner of the API key the refund (or, for a refund made in the Stripe dashboard, the payment)
             *     was made with; null when it has none (the service runs without API keys).
             */
            owner: string | null;
            /**
             * @description The request id the client gave or received, unique per owner; `stripe:<refund id>` for a refund
             *     made outside the service (in the Stripe dashboard), which `GET /refund-status/{request_id}` answers
             *     for the payment's owner.
             */
            request_id: string;
            /** @description Stripe's refund id, once known. */
            refund_id: string | null;
            status: components["schemas"]["RefundState"];
            /**
             * Format: int64
             * @description Amount in the currency's smallest unit.
             */
            amount: number;
            /** @description Currency of the refund. */
            currency?: string | null;
            /** @description The refunded payment intent. */
            payment_intent_id: string;
            /**
             * @description Why the refund failed or was canceled, when it did: Stripe's `failure_reason` (`merchant_request` for a
             *     refund canceled at Stripe), or the service's own reason for a refund Stripe refused or never made.
             */
            failure_reason: string | null;
        };
        /**
         * RefundRequestMessage
         * @description Message (persistent, JSON) the service publishes to its own work queue `stripe_refund_requests` for a
         *     refund its worker is to make, and that an operator finds in `stripe_refund_requests.dlq` when the worker
         *     gave the refund up (the `x-dead-letter-reason` header says why, or, for one RabbitMQ moved there itself at
         *     its delivery limit, the `reason` of its `x-death` header, `delivery_limit`; `GET /refund-status` says how
         *     the refund ended). It names the refund in the ledger and nothing else: the worker reads amount and payment from the
         *     ledger, so a message another producer publishes to the queue refunds nothing and is dead-lettered. The
         *     AMQP `message_id` is `<request_key>#<why it was queued>`; the same refund may be queued more than once
         *     (a sweep, a relay's retry), and the worker makes it once. The header `x-request-id`, when present, is the
         *     `X-Request-Id` of the HTTP request that asked for the refund, which the service's log lines about the refund
         *     carry as `reqId`; absent from a message an earlier version queued.
         * @example {
         *       "request_key": "shop/unique-id-123"
         *     }
         */
        RefundRequestMessage: {
            /** @description The refund's ledger key, `<owner>/<request_id>` (`<request_id>` alone without API keys). */
            request_key: string;
        };
        /**
         * StripeEventMessage
         * @description Every verified Stripe event is published to the durable topic exchange `stripe.events` with the event
         *     type as routing key (bind `refund.*`, `payment_intent.succeeded`, `#` ...), at least once: a delivery
         *     Stripe repeats is published again only once the stored copy is gone (30 days after it was applied),
         *     under the same `message_id`. The body is the Stripe event as Stripe sent it, less every client secret:
         *     each `client_secret` field (Stripe puts the payment intent's in `payment_intent.*` events) and each
         *     one inside a string (the 3D Secure URL of `next_action`); it is for the customer's browser alone. It keeps
         *     the customer's personal data Stripe puts in events (a checkout session's `customer_details` e-mail,
         *     name and address, `receipt_email`, a charge's `billing_details` and card brand, last four digits and
         *     expiry): bind only services allowed to read it. The AMQP `message_id` is the event id.
         */
        StripeEventMessage: components["schemas"]["StripeEvent"];
        /**
         * WebhookAck
         * @description Acknowledgement of a webhook delivery.
         */
        WebhookAck: {
            /**
             * @description Always true on this answer.
             * @constant
             */
            success: true;
            /** @description True when this event id had been received before and nothing was done. */
            duplicate?: boolean;
        };
    };
    responses: {
        /** @description No API key, or an unknown or revoked one. */
        Unauthorized: {
            headers: {
                /**
                 * @description The authentication scheme to use.
                 * @example Bearer
                 */
                "WWW-Authenticate"?: string;
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The API key lacks the scope this operation needs (`insufficient_scope`), or is a publishable key used for
         *     anything but creating a checkout session or an unconfirmed payment intent.
         */
        Forbidden: {
            headers: {
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The API key lacks the scope this operation needs (`insufficient_scope`), or is a publishable key. As Forbidden, for a GET, whose answers are never replayed. */
        ForbiddenNoReplay: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The service listens on a loopback address only (no API keys, and `HOST` unset or a loopback address) and
         *     the request's `Host` names another host (`host_not_allowed`). There it answers only `localhost`,
         *     `*.localhost`, `127.x.x.x`, `[::1]` (any port), the name `HOST` gives and those `ALLOWED_HOSTS` lists (and
         *     `POST /webhook` under any name: it answers only what Stripe signed): a web page that makes its own
         *     name resolve to 127.0.0.1 (DNS rebinding) must not be able to call it. Call it by one of those names, list
         *     a tunnel's or proxy's name in `ALLOWED_HOSTS`, or listen on another address with `HOST`.
         */
        MisdirectedRequest: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The Idempotency-Key was already used with a different request body. */
        IdempotencyMismatch: {
            headers: {
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description Too many requests for this caller (see the `RateLimit` header), or too many failed authentications (401)
         *     from this client address, whose requests then need a key already seen to work; retry after the given
         *     delay.
         */
        TooManyRequests: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The request body did not all arrive within the service's request timeout (`REQUEST_TIMEOUT_MS`). The
         *     connection is closed; send the request again.
         */
        RequestTimeout: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The request body is larger than the operation accepts (16 kB of JSON; 512 kB for `/webhook`). */
        PayloadTooLarge: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The request body is not `application/json` (no `code`), or its charset is not supported (no `code`; UTF-8
         *     is, named `utf-8` or `utf8` in any letter case, or not named at all), or `content_encoding_unsupported`:
         *     its `Content-Encoding` is not one the service decodes, and `Accept-Encoding` lists those it does.
         */
        UnsupportedMediaType: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                "Accept-Encoding": components["headers"]["AcceptEncoding"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description An error, described as RFC 9457 problem details. */
        Problem: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The request is malformed or a field is invalid. */
        BadRequest: {
            headers: {
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The object does not exist (or is not yours). */
        NotFound: {
            headers: {
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description A query or path parameter is invalid. As BadRequest, for an operation that takes no Idempotency-Key (a GET, the webhook), whose answers are never replayed. */
        BadRequestNoReplay: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The object does not exist (or is not yours). As NotFound, for a GET, whose answers are never replayed. */
        NotFoundNoReplay: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The card was declined or the payment failed. */
        PaymentFailed: {
            headers: {
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The request conflicts with the current state (for example more than is left to refund). When the
         *     conflict is a request still running (`idempotency_key_in_use`, `refund_in_progress`), it carries
         *     `Retry-After` (and `retry_after`): retry the same request after that delay. For `refund_in_progress` on
         *     `POST /refund` it grows with the age of the refund's current attempt: about the seconds since it began, at
         *     least 1, and never past the moment a retry can take the refund over (1 for a refund queued by
         *     `POST /refund-async`). `idempotency_conflict`: Stripe already holds the refund's
         *     idempotency key (`refund:<request_id>`) with other parameters, from another deployment on the same
         *     Stripe account or from before a ledger restore; nothing moved, and the refund is failed. Ledgers
         *     sharing a Stripe account each need their own `STRIPE_IDEMPOTENCY_PREFIX`.
         */
        Conflict: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description Stripe refused the service's own credentials (`upstream_authentication`; a refund is not failed for it: it is kept, its amount reserved, and made in the background once the key is fixed) or answered unexpectedly (`upstream_error`). `upstream_error_saved`: creating a payment intent or checkout session, Stripe failed with an error it saved under the idempotency key derived from this Idempotency-Key (from the first try on), and answers every retry with that key the same way; only a new Idempotency-Key makes a new request (check first, through webhooks or your metadata, that Stripe did not make the object all the same). */
        BadGateway: {
            headers: {
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description Stripe is rate limiting or unavailable (`upstream_rate_limited`: Stripe's 429, its rate limit or a `lock_timeout` on an object another request holds, which the SDK has retried already; `upstream_unavailable`), the service's database did not answer in time (`store_unavailable`), the request took longer than the service's request timeout (`timeout`), or the service already has as many requests in progress as it takes (`overloaded`, `MAX_CONCURRENT_REQUESTS`; answered at once, before the request is read); retry after the given delay, with the same Idempotency-Key or request_id. A POST that hit the `timeout`, or whose Stripe call got no answer (`upstream_unavailable`), may have been done all the same, and a confirmed payment intent or a refund that Stripe made but the database could not record (`store_unavailable`) was, and a refund request (`POST /refund`, `POST /refund-async`) whose write the database did not confirm (`store_unavailable`) may have been recorded, and if it was, it will be made even if never sent again (`POST /refund`'s in the background within about ten minutes, unless sent again sooner with its request_id, which makes it once no attempt can still be at work on it): sent without an Idempotency-Key or request_id, a retry is a new request, so check the outcome first (the `detail` says so, naming the generated request_id to check with `GET /refund-status/{request_id}` or to send the request again with, and such an answer has no Retry-After). */
        Unavailable: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                "X-Request-Id": components["headers"]["RequestId"];
                RateLimit: components["headers"]["RateLimit"];
                "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
    };
    parameters: {
        /**
         * @description Makes a POST safe to retry. The same key with the same body returns the stored response with
         *     `Idempotent-Replayed: true`; with a different body it is refused (422). Bodies are compared as the
         *     service takes them: a currency's letter case, an empty `description` or `metadata`, and a metadata
         *     key of empty value (not set, as at Stripe) make no difference (so for a refund's `request_id`
         *     too). While the first request
         *     is still running, 409 (a request in progress for 10 minutes is taken to have died, and a retry
         *     runs it again). Keys are kept for 24 hours from the start of the request whose answer is
         *     kept; after that the same key runs the request again. An answer that leaves the request to be
         *     made again is not stored, so that a retry under the key runs again: a 5xx, one with
         *     `Retry-After`, the service's own 400 (its checks of the body, before anything is done: the
         *     corrected body may use the same key) and 422 `idempotency_key_reused`. After a 5xx or an answer
         *     with `Retry-After` the key stays bound to its body until it expires: the same body runs again, a
         *     different one gets 422 (a refund rebuilt with a new `request_id`, or none, would be a second
         *     refund); only after a 400 or 422 that says nothing was done may the key carry another body. A
         *     `POST /payment-intent` or `POST /create-checkout-session` retried within 24 hours of its first
         *     try gets the object the payment provider made for it, if it made one; a retry later than that
         *     makes a new one (and charges again). A refund request with a key but no
         *     `request_id` gets a `request_id` derived from the key (`idem:` and 40 hex digits), so a retry
         *     with the same key finds that refund even after the key itself is forgotten. Keys are the caller's
         *     owner's; those sent with a publishable key belong to that key and the client's address alone.
         * @example 5d2c0f8e-9a51-4b7e-8d61-2f0c3a9b7e14
         */
        IdempotencyKey: string;
        /**
         * @description The payment intent id (`pi_...`).
         * @example pi_3PqRsT2eZvKYlo2C1a2b3c4d
         */
        PaymentIntentIdPath: components["schemas"]["PaymentIntentId"];
    };
    requestBodies: never;
    headers: {
        /**
         * @description Present and `true` when this is a stored response replayed for a repeated Idempotency-Key: a success, or a
         *     definite refusal (402, 403, 404, a 409 without `Retry-After`, or a 400 Stripe gave), which is replayed like a
         *     success. A refusal that says nothing was done is not kept, as Stripe keeps none: the service's own 400 (its
         *     checks of the body before any money is reserved or Stripe called) and `422 idempotency_key_reused`.
         * @example true
         */
        IdempotentReplayed: "true";
        /**
         * @description Seconds to wait before trying again.
         * @example 2
         */
        RetryAfter: number;
        /**
         * @description This answer's request id, also in a problem's `request_id` and on the service's log lines: quote it to
         *     support. A request that sends an `X-Request-Id` of 1 to 128 characters from `A-Z a-z 0-9 . _ : -`, other
         *     than `.` and `..`, gets that one back; any other is replaced by a new UUID.
         * @example 7f3c2a10-5b8e-4f21-9d3a-0c6e2b1f4a77
         */
        RequestId: string;
        /**
         * @description The caller's per-minute request limit (per API key; per key and client address for a publishable key,
         *     whose clients together get five times the limit; per client address without a key), what is left of
         *     it and the seconds until it starts over (IETF draft RateLimit header fields). Sent on the answers of every
         *     operation but /healthz, /readyz and /webhook, once the request has got as far as the limit (an answer
         *     given before, such as `overloaded`, has none), and not while the limit is off (`RATE_LIMIT_PER_MINUTE=0`).
         * @example limit=600, remaining=598, reset=42
         */
        RateLimit: string;
        /**
         * @description Sent with `415` `content_encoding_unsupported`: the content codings the service decodes in a request body
         *     (`gzip`, `deflate`, `br`, and `zstd` where the service runs on Node 22.15 or later), besides none.
         * @example gzip, deflate, br
         */
        AcceptEncoding: string;
        /**
         * @description The limit and its window in seconds, sent with `RateLimit`.
         * @example 600;w=60
         */
        RateLimitPolicy: string;
    };
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The process is alive. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            421: components["responses"]["MisdirectedRequest"];
            default: components["responses"]["Problem"];
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ready; every dependency answered, or those that did not are listed in `degraded`. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            421: components["responses"]["MisdirectedRequest"];
            /** @description A dependency this process cannot work without failed (named in `failing`). */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            default: components["responses"]["Problem"];
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Current metrics. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            401: components["responses"]["Unauthorized"];
            421: components["responses"]["MisdirectedRequest"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    createCheckoutSession: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a POST safe to retry. The same key with the same body returns the stored response with
                 *     `Idempotent-Replayed: true`; with a different body it is refused (422). Bodies are compared as the
                 *     service takes them: a currency's letter case, an empty `description` or `metadata`, and a metadata
                 *     key of empty value (not set, as at Stripe) make no difference (so for a refund's `request_id`
                 *     too). While the first request
                 *     is still running, 409 (a request in progress for 10 minutes is taken to have died, and a retry
                 *     runs it again). Keys are kept for 24 hours from the start of the request whose answer is
                 *     kept; after that the same key runs the request again. An answer that leaves the request to be
                 *     made again is not stored, so that a retry under the key runs again: a 5xx, one with
                 *     `Retry-After`, the service's own 400 (its checks of the body, before anything is done: the
                 *     corrected body may use the same key) and 422 `idempotency_key_reused`. After a 5xx or an answer
                 *     with `Retry-After` the key stays bound to its body until it expires: the same body runs again, a
                 *     different one gets 422 (a refund rebuilt with a new `request_id`, or none, would be a second
                 *     refund); only after a 400 or 422 that says nothing was done may the key carry another body. A
                 *     `POST /payment-intent` or `POST /create-checkout-session` retried within 24 hours of its first
                 *     try gets the object the payment provider made for it, if it made one; a retry later than that
                 *     makes a new one (and charges again). A refund request with a key but no
                 *     `request_id` gets a `request_id` derived from the key (`idem:` and 40 hex digits), so a retry
                 *     with the same key finds that refund even after the key itself is forgotten. Keys are the caller's
                 *     owner's; those sent with a publishable key belong to that key and the client's address alone.
                 * @example 5d2c0f8e-9a51-4b7e-8d61-2f0c3a9b7e14
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateCheckoutSessionRequest"];
            };
        };
        responses: {
            /** @description The checkout session was created; send the customer to `url`. */
            200: {
                headers: {
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CheckoutSessionCreated"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            402: components["responses"]["PaymentFailed"];
            403: components["responses"]["Forbidden"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            421: components["responses"]["MisdirectedRequest"];
            422: components["responses"]["IdempotencyMismatch"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    getCheckoutSession: {
        parameters: {
            query: {
                /**
                 * @description The checkout session id (`cs_...`).
                 * @example cs_test_a1b2c3d4e5f6g7h8i9j0
                 */
                session_id: components["schemas"]["CheckoutSessionId"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The checkout session. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CheckoutSession"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["ForbiddenNoReplay"];
            404: components["responses"]["NotFoundNoReplay"];
            421: components["responses"]["MisdirectedRequest"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    createPaymentIntent: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a POST safe to retry. The same key with the same body returns the stored response with
                 *     `Idempotent-Replayed: true`; with a different body it is refused (422). Bodies are compared as the
                 *     service takes them: a currency's letter case, an empty `description` or `metadata`, and a metadata
                 *     key of empty value (not set, as at Stripe) make no difference (so for a refund's `request_id`
                 *     too). While the first request
                 *     is still running, 409 (a request in progress for 10 minutes is taken to have died, and a retry
                 *     runs it again). Keys are kept for 24 hours from the start of the request whose answer is
                 *     kept; after that the same key runs the request again. An answer that leaves the request to be
                 *     made again is not stored, so that a retry under the key runs again: a 5xx, one with
                 *     `Retry-After`, the service's own 400 (its checks of the body, before anything is done: the
                 *     corrected body may use the same key) and 422 `idempotency_key_reused`. After a 5xx or an answer
                 *     with `Retry-After` the key stays bound to its body until it expires: the same body runs again, a
                 *     different one gets 422 (a refund rebuilt with a new `request_id`, or none, would be a second
                 *     refund); only after a 400 or 422 that says nothing was done may the key carry another body. A
                 *     `POST /payment-intent` or `POST /create-checkout-session` retried within 24 hours of its first
                 *     try gets the object the payment provider made for it, if it made one; a retry later than that
                 *     makes a new one (and charges again). A refund request with a key but no
                 *     `request_id` gets a `request_id` derived from the key (`idem:` and 40 hex digits), so a retry
                 *     with the same key finds that refund even after the key itself is forgotten. Keys are the caller's
                 *     owner's; those sent with a publishable key belong to that key and the client's address alone.
                 * @example 5d2c0f8e-9a51-4b7e-8d61-2f0c3a9b7e14
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreatePaymentIntentRequest"];
            };
        };
        responses: {
            /** @description The payment intent was created. */
            200: {
                headers: {
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PaymentIntentCreated"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            402: components["responses"]["PaymentFailed"];
            403: components["responses"]["Forbidden"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            421: components["responses"]["MisdirectedRequest"];
            422: components["responses"]["IdempotencyMismatch"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    getPaymentIntent: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /**
                 * @description The payment intent id (`pi_...`).
                 * @example pi_3PqRsT2eZvKYlo2C1a2b3c4d
                 */
                payment_intent_id: components["parameters"]["PaymentIntentIdPath"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The payment intent. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PaymentIntent"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["ForbiddenNoReplay"];
            404: components["responses"]["NotFoundNoReplay"];
            421: components["responses"]["MisdirectedRequest"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    createRefund: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a POST safe to retry. The same key with the same body returns the stored response with
                 *     `Idempotent-Replayed: true`; with a different body it is refused (422). Bodies are compared as the
                 *     service takes them: a currency's letter case, an empty `description` or `metadata`, and a metadata
                 *     key of empty value (not set, as at Stripe) make no difference (so for a refund's `request_id`
                 *     too). While the first request
                 *     is still running, 409 (a request in progress for 10 minutes is taken to have died, and a retry
                 *     runs it again). Keys are kept for 24 hours from the start of the request whose answer is
                 *     kept; after that the same key runs the request again. An answer that leaves the request to be
                 *     made again is not stored, so that a retry under the key runs again: a 5xx, one with
                 *     `Retry-After`, the service's own 400 (its checks of the body, before anything is done: the
                 *     corrected body may use the same key) and 422 `idempotency_key_reused`. After a 5xx or an answer
                 *     with `Retry-After` the key stays bound to its body until it expires: the same body runs again, a
                 *     different one gets 422 (a refund rebuilt with a new `request_id`, or none, would be a second
                 *     refund); only after a 400 or 422 that says nothing was done may the key carry another body. A
                 *     `POST /payment-intent` or `POST /create-checkout-session` retried within 24 hours of its first
                 *     try gets the object the payment provider made for it, if it made one; a retry later than that
                 *     makes a new one (and charges again). A refund request with a key but no
                 *     `request_id` gets a `request_id` derived from the key (`idem:` and 40 hex digits), so a retry
                 *     with the same key finds that refund even after the key itself is forgotten. Keys are the caller's
                 *     owner's; those sent with a publishable key belong to that key and the client's address alone.
                 * @example 5d2c0f8e-9a51-4b7e-8d61-2f0c3a9b7e14
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateRefundRequest"];
            };
        };
        responses: {
            /** @description Stripe accepted the refund; `refund.status` says whether money has moved yet. */
            200: {
                headers: {
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RefundCreated"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            402: components["responses"]["PaymentFailed"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            421: components["responses"]["MisdirectedRequest"];
            422: components["responses"]["IdempotencyMismatch"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    createRefundAsync: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a POST safe to retry. The same key with the same body returns the stored response with
                 *     `Idempotent-Replayed: true`; with a different body it is refused (422). Bodies are compared as the
                 *     service takes them: a currency's letter case, an empty `description` or `metadata`, and a metadata
                 *     key of empty value (not set, as at Stripe) make no difference (so for a refund's `request_id`
                 *     too). While the first request
                 *     is still running, 409 (a request in progress for 10 minutes is taken to have died, and a retry
                 *     runs it again). Keys are kept for 24 hours from the start of the request whose answer is
                 *     kept; after that the same key runs the request again. An answer that leaves the request to be
                 *     made again is not stored, so that a retry under the key runs again: a 5xx, one with
                 *     `Retry-After`, the service's own 400 (its checks of the body, before anything is done: the
                 *     corrected body may use the same key) and 422 `idempotency_key_reused`. After a 5xx or an answer
                 *     with `Retry-After` the key stays bound to its body until it expires: the same body runs again, a
                 *     different one gets 422 (a refund rebuilt with a new `request_id`, or none, would be a second
                 *     refund); only after a 400 or 422 that says nothing was done may the key carry another body. A
                 *     `POST /payment-intent` or `POST /create-checkout-session` retried within 24 hours of its first
                 *     try gets the object the payment provider made for it, if it made one; a retry later than that
                 *     makes a new one (and charges again). A refund request with a key but no
                 *     `request_id` gets a `request_id` derived from the key (`idem:` and 40 hex digits), so a retry
                 *     with the same key finds that refund even after the key itself is forgotten. Keys are the caller's
                 *     owner's; those sent with a publishable key belong to that key and the client's address alone.
                 * @example 5d2c0f8e-9a51-4b7e-8d61-2f0c3a9b7e14
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateRefundAsyncRequest"];
            };
        };
        responses: {
            /** @description The refund is stored and queued. */
            202: {
                headers: {
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RefundQueued"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            421: components["responses"]["MisdirectedRequest"];
            422: components["responses"]["IdempotencyMismatch"];
            429: components["responses"]["TooManyRequests"];
            502: components["responses"]["BadGateway"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    getRefundStatus: {
        parameters: {
            query?: {
                /**
                 * @description Accepted for compatibility with the original service; not needed.
                 * @example pi_3PqRsT2eZvKYlo2C1a2b3c4d
                 */
                payment_intent_id?: components["schemas"]["PaymentIntentId"];
            };
            header?: never;
            path: {
                /**
                 * @description The request id given to or returned by `POST /refund-async` (or `POST /refund`), or `stripe:<refund id>`
                 *     for a refund made in the Stripe dashboard.
                 * @example unique-id-123
                 */
                request_id: components["schemas"]["RequestId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The refund's current state. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RefundStatus"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["ForbiddenNoReplay"];
            404: components["responses"]["NotFoundNoReplay"];
            421: components["responses"]["MisdirectedRequest"];
            429: components["responses"]["TooManyRequests"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
    handleStripeWebhook: {
        parameters: {
            query?: never;
            header: {
                /**
                 * @description Signature header computed by Stripe over the raw request body.
                 * @example t=1767139200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
                 */
                "Stripe-Signature": string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["StripeEvent"];
            };
        };
        responses: {
            /** @description The event was verified and recorded (or had been already). A verified thin event (`object: v2.core.event`, from an event destination with the thin payload) is answered 200 too, and neither recorded nor applied: the service uses snapshot events only. */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookAck"];
                };
            };
            400: components["responses"]["BadRequestNoReplay"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            /** @description `content_encoding_unsupported`: the body's `Content-Encoding` is not one the service decodes (`gzip`, `deflate`, `br`, `zstd` on Node 22.15 or later, or none; Stripe sends its events uncompressed), and `Accept-Encoding` lists those it does. Any `Content-Type` is taken: the signature covers the bytes as sent. */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Accept-Encoding": components["headers"]["AcceptEncoding"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Problem"];
        };
    };
}
