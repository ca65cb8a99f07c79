//! The message templates: per service, generic, warnings, and errors with their exceptions.
//!
//! A template's text has `{name}` placeholders that [`fill`] replaces with values drawn from
//! the line's PRNG; its module, function and line number are fixed, as they are in real code.
//! The word [`PAYMENTS_TERM`](super::PAYMENTS_TERM) appears in a `payments` template only.

use super::SERVICES;
use crate::rng::Rng;

pub struct Template {
    pub text: &'static str,
    pub module: &'static str,
    pub function: &'static str,
    pub line: u32,
}

/// A frame of a traceback below the template's own function.
pub struct Frame {
    pub file: &'static str,
    pub line: u32,
    pub function: &'static str,
    pub code: &'static str,
}

pub struct ErrorTemplate {
    pub template: Template,
    /// The line of the template's function that called into the failing frames.
    pub call: &'static str,
    pub exception_type: &'static str,
    pub exception_message: &'static str,
    pub frames: &'static [Frame],
}

const fn t(
    text: &'static str,
    module: &'static str,
    function: &'static str,
    line: u32,
) -> Template {
    Template {
        text,
        module,
        function,
        line,
    }
}

const fn f(file: &'static str, line: u32, function: &'static str, code: &'static str) -> Frame {
    Frame {
        file,
        line,
        function,
        code,
    }
}

/// INFO and DEBUG templates of each service, in the order of [`SERVICES`].
pub const SERVICE_TEMPLATES: [[Template; 3]; SERVICES.len()] = [
    // gateway
    [
        t(
            "Proxied {method} {path} to upstream {upstream} in {ms}ms",
            "proxy",
            "forward",
            214,
        ),
        t(
            "TLS handshake completed with client {ip}",
            "tls",
            "accept",
            88,
        ),
        t("Route table reloaded ({n} routes)", "routes", "reload", 51),
    ],
    // api-service
    [
        t("User login successful", "auth", "login", 42),
        t(
            "API key validated for client {id}",
            "auth",
            "check_api_key",
            97,
        ),
        t(
            "Pagination cursor decoded for {path}",
            "pagination",
            "decode_cursor",
            33,
        ),
    ],
    // orders
    [
        t(
            "Order {order} created with {n} items",
            "orders",
            "create_order",
            118,
        ),
        t(
            "Order {order} status changed to {ostatus}",
            "orders",
            "update_status",
            176,
        ),
        t(
            "Order {order} total computed: {amount} USD",
            "pricing",
            "compute_total",
            64,
        ),
    ],
    // search
    [
        t(
            "Search query \"{query}\" returned {n} results in {ms}ms",
            "search",
            "run_query",
            142,
        ),
        t("Index shard {n} refreshed", "indexer", "refresh_shard", 77),
        t(
            "Autocomplete for \"{query}\" served from cache",
            "autocomplete",
            "suggest",
            39,
        ),
    ],
    // auth
    [
        t(
            "Password verified for user {user}",
            "passwords",
            "verify",
            58,
        ),
        t(
            "JWT signed for user {user}, expires in 3600s",
            "tokens",
            "sign_jwt",
            121,
        ),
        t(
            "MFA challenge sent to user {user}",
            "mfa",
            "send_challenge",
            46,
        ),
    ],
    // cart
    [
        t("Added {sku} x{n} to cart {id}", "cart", "add_item", 73),
        t("Removed {sku} from cart {id}", "cart", "remove_item", 99),
        t("Cart {id} merged after login", "cart", "merge_carts", 152),
    ],
    // payments
    [
        t(
            "Payment authorized for order {order}: {amount} USD",
            "charges",
            "authorize",
            131,
        ),
        t(
            "Issued refund {id} for order {order}: {amount} USD",
            "refunds",
            "issue_refund",
            87,
        ),
        t(
            "Card tokenized for user {user}",
            "vault",
            "tokenize_card",
            45,
        ),
    ],
    // inventory
    [
        t("Reserved {n} units of {sku}", "reservations", "reserve", 66),
        t("Stock level for {sku} is {n}", "stock", "get_level", 29),
        t(
            "Released reservation {id} for {sku}",
            "reservations",
            "release",
            103,
        ),
    ],
    // shipping
    [
        t(
            "Shipment {id} created with carrier {carrier}",
            "shipments",
            "create_shipment",
            84,
        ),
        t(
            "Tracking update for shipment {id}: in transit",
            "tracking",
            "on_update",
            57,
        ),
        t(
            "Shipping rate quoted: {amount} USD via {carrier}",
            "rates",
            "quote",
            112,
        ),
    ],
    // notifications
    [
        t(
            "Email sent to {email} (template order_confirmation)",
            "email",
            "send_email",
            95,
        ),
        t(
            "Push notification delivered to device {id}",
            "push",
            "deliver",
            61,
        ),
        t("SMS queued for user {user}", "sms", "enqueue", 38),
    ],
];

/// INFO and DEBUG templates any service prints.
pub const GENERIC_TEMPLATES: [Template; 10] = [
    t(
        "Request completed {method} {path} {status} in {ms}ms",
        "middleware",
        "log_request",
        27,
    ),
    t("Cache hit for key {key}", "cache", "get", 44),
    t("Health check passed", "health", "check", 12),
    t(
        "Database connection acquired from pool ({n} idle)",
        "db",
        "acquire",
        81,
    ),
    t(
        "Feature flag {flag} evaluated to {bool}",
        "flags",
        "evaluate",
        35,
    ),
    t(
        "Published event {event} to queue {queue}",
        "events",
        "publish",
        62,
    ),
    t(
        "Config reloaded from /etc/app/config.yaml",
        "config",
        "reload",
        19,
    ),
    t(
        "Background job {job} finished in {ms}ms",
        "jobs",
        "run",
        140,
    ),
    t(
        "Outgoing request to {host} returned {status}",
        "http_client",
        "request",
        203,
    ),
    t(
        "Session refreshed for user {user}",
        "sessions",
        "refresh",
        71,
    ),
];

pub const WARNING_TEMPLATES: [Template; 6] = [
    t(
        "Slow query detected: {ms}ms on table {table}",
        "db",
        "execute",
        156,
    ),
    t(
        "Retrying request to {host} (attempt {attempt}/3)",
        "http_client",
        "request",
        231,
    ),
    t("Cache miss rate high: {pct}%", "cache", "report_stats", 118),
    t(
        "Deprecated API version v1 used by client {id}",
        "middleware",
        "check_version",
        49,
    ),
    t(
        "Response time above threshold: {ms}ms for {path}",
        "middleware",
        "log_request",
        34,
    ),
    t(
        "Connection pool nearly exhausted: {n}/100 in use",
        "db",
        "acquire",
        92,
    ),
];

pub const ERROR_TEMPLATES: [ErrorTemplate; 8] = [
    ErrorTemplate {
        template: t("Database query failed", "db", "execute", 161),
        call: "cursor.execute(sql, params)",
        exception_type: "psycopg2.OperationalError",
        exception_message: "connection to server at \"{host}\" (10.0.3.12), port 5432 failed: Connection refused",
        frames: &[
            f(
                "/usr/local/lib/python3.11/site-packages/psycopg2/extras.py",
                146,
                "execute",
                "return super().execute(query, vars)",
            ),
            f(
                "/usr/local/lib/python3.11/site-packages/psycopg2/__init__.py",
                122,
                "connect",
                "conn = _connect(dsn, connection_factory=connection_factory, **kwasync)",
            ),
        ],
    },
    ErrorTemplate {
        template: t(
            "Payment provider request failed for order {order}",
            "charges",
            "authorize",
            139,
        ),
        call: "response = self.client.post(url, json=payload, timeout=10)",
        exception_type: "requests.exceptions.ReadTimeout",
        exception_message: "HTTPSConnectionPool(host='api.payments.example', port=443): Read timed out. (read timeout=10)",
        frames: &[
            f(
                "/usr/local/lib/python3.11/site-packages/requests/sessions.py",
                589,
                "request",
                "resp = self.send(prep, **send_kwargs)",
            ),
            f(
                "/usr/local/lib/python3.11/site-packages/requests/adapters.py",
                532,
                "send",
                "raise ReadTimeout(e, request=request)",
            ),
        ],
    },
    ErrorTemplate {
        template: t(
            "Unhandled exception while processing {method} {path}",
            "middleware",
            "dispatch",
            58,
        ),
        call: "response = await call_next(request)",
        exception_type: "KeyError",
        exception_message: "'user_id'",
        frames: &[
            f(
                "/app/common/handlers.py",
                211,
                "handle",
                "return await self.endpoint(request)",
            ),
            f(
                "/app/common/context.py",
                47,
                "current_user",
                "return request.state.claims[\"user_id\"]",
            ),
        ],
    },
    ErrorTemplate {
        template: t(
            "Failed to publish event {event} to queue {queue}",
            "events",
            "publish",
            70,
        ),
        call: "self.channel.basic_publish(exchange, routing_key, body)",
        exception_type: "kombu.exceptions.OperationalError",
        exception_message: "[Errno 111] Connection refused",
        frames: &[f(
            "/usr/local/lib/python3.11/site-packages/kombu/connection.py",
            448,
            "_reraise_as_library_errors",
            "raise ConnectionError(str(exc)) from exc",
        )],
    },
    ErrorTemplate {
        template: t("Cache read failed for key {key}", "cache", "get", 52),
        call: "value = self.redis.get(key)",
        exception_type: "redis.exceptions.ConnectionError",
        exception_message: "Error 110 connecting to {host}:6379. Connection timed out.",
        frames: &[
            f(
                "/usr/local/lib/python3.11/site-packages/redis/commands/core.py",
                1829,
                "get",
                "return self.execute_command(\"GET\", name)",
            ),
            f(
                "/usr/local/lib/python3.11/site-packages/redis/connection.py",
                707,
                "connect",
                "raise ConnectionError(self._error_message(e))",
            ),
        ],
    },
    ErrorTemplate {
        template: t(
            "Invalid payload received from upstream {upstream}",
            "http_client",
            "parse_response",
            248,
        ),
        call: "quantity = int(body[\"quantity\"])",
        exception_type: "ValueError",
        exception_message: "invalid literal for int() with base 10: '{word}'",
        frames: &[],
    },
    ErrorTemplate {
        template: t(
            "Inventory reservation failed for {sku}",
            "reservations",
            "reserve",
            71,
        ),
        call: "self.stock.take(sku, quantity)",
        exception_type: "InsufficientStockError",
        exception_message: "requested {n} units of {sku}, {small} available",
        frames: &[f(
            "/app/inventory/stock.py",
            88,
            "take",
            "raise InsufficientStockError(sku, quantity, available)",
        )],
    },
    ErrorTemplate {
        template: t(
            "Template rendering failed for notification {id}",
            "email",
            "render",
            132,
        ),
        call: "html = template.render(**context)",
        exception_type: "jinja2.exceptions.UndefinedError",
        exception_message: "'dict object' has no attribute 'first_name'",
        frames: &[
            f(
                "/usr/local/lib/python3.11/site-packages/jinja2/environment.py",
                1301,
                "render",
                "self.environment.handle_exception()",
            ),
            f(
                "/app/templates/order_confirmation.html",
                4,
                "top-level template code",
                "<p>Hello {{ user.first_name }},</p>",
            ),
        ],
    },
];

const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "PUT"];
const PATHS: [&str; 8] = [
    "/api/v1/orders/",
    "/api/v1/users/",
    "/api/v1/products/",
    "/api/v1/cart/",
    "/api/v1/payments/",
    "/api/v1/search?page=",
    "/api/v2/shipments/",
    "/api/v1/inventory/",
];
const STATUSES: [&str; 8] = ["200", "200", "200", "200", "201", "204", "404", "500"];
const UPSTREAMS: [&str; 6] = [
    "orders:8080",
    "payments:8080",
    "search:9200",
    "cart:8080",
    "auth:8081",
    "inventory:8080",
];
const HOSTS: [&str; 6] = [
    "db-primary.internal",
    "db-replica-2.internal",
    "redis-1.internal",
    "rabbitmq.internal",
    "api.payments.example",
    "search-3.internal",
];
const ORDER_STATUSES: [&str; 5] = ["paid", "packed", "shipped", "delivered", "cancelled"];
const QUERIES: [&str; 8] = [
    "running shoes",
    "usb-c cable",
    "coffee beans",
    "wireless mouse",
    "desk lamp",
    "rain jacket",
    "yoga mat",
    "phone case",
];
const CARRIERS: [&str; 4] = ["UPS", "FedEx", "DHL", "USPS"];
const FLAGS: [&str; 5] = [
    "new_checkout",
    "dark_mode",
    "fast_search",
    "one_click_buy",
    "beta_recommendations",
];
const EVENTS: [&str; 5] = [
    "order.created",
    "payment.captured",
    "cart.updated",
    "user.signed_up",
    "shipment.dispatched",
];
const QUEUES: [&str; 3] = ["events", "notifications", "audit"];
const JOBS: [&str; 4] = [
    "cleanup_sessions",
    "sync_inventory",
    "send_digest",
    "rebuild_index",
];
const TABLES: [&str; 5] = ["orders", "order_items", "users", "payments", "inventory"];
const KEY_KINDS: [&str; 4] = ["user", "product", "cart", "session"];
const WORDS: [&str; 4] = ["abc", "N/A", "twelve", "1.5"];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

/// Replaces each `{name}` of `text` with a value from `rng`.
pub fn fill(text: &str, rng: &mut Rng, user_id: u64, ip: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        match name {
            "method" => out.push_str(pick(rng, &METHODS)),
            "path" => {
                out.push_str(pick(rng, &PATHS));
                out.push_str(&(1 + rng.below(99_999)).to_string());
            }
            "status" => out.push_str(pick(rng, &STATUSES)),
            "upstream" => out.push_str(pick(rng, &UPSTREAMS)),
            "host" => out.push_str(pick(rng, &HOSTS)),
            "ms" => out.push_str(&(1 + rng.skewed(3_000)).to_string()),
            "n" => out.push_str(&(1 + rng.below(200)).to_string()),
            "small" => out.push_str(&rng.below(5).to_string()),
            "attempt" => out.push_str(&(1 + rng.below(3)).to_string()),
            "pct" => out.push_str(&(40 + rng.below(55)).to_string()),
            "id" => out.push_str(&(100_000 + rng.below(9_900_000)).to_string()),
            "order" => out.push_str(&format!("ORD-{:08}", rng.below(100_000_000))),
            "sku" => out.push_str(&format!("SKU-{:05}", rng.below(20_000))),
            "amount" => {
                let dollars = 1 + rng.skewed(2_000);
                out.push_str(&format!("{dollars}.{:02}", rng.below(100)));
            }
            "user" => out.push_str(&user_id.to_string()),
            "email" => out.push_str(&format!("user{user_id}@example.com")),
            "ip" => out.push_str(ip),
            "ostatus" => out.push_str(pick(rng, &ORDER_STATUSES)),
            "query" => out.push_str(pick(rng, &QUERIES)),
            "carrier" => out.push_str(pick(rng, &CARRIERS)),
            "flag" => out.push_str(pick(rng, &FLAGS)),
            "bool" => out.push_str(if rng.below(2) == 0 { "true" } else { "false" }),
            "event" => out.push_str(pick(rng, &EVENTS)),
            "queue" => out.push_str(pick(rng, &QUEUES)),
            "job" => out.push_str(pick(rng, &JOBS)),
            "table" => out.push_str(pick(rng, &TABLES)),
            "key" => out.push_str(&format!(
                "{}:{}",
                pick(rng, &KEY_KINDS),
                rng.below(1_000_000)
            )),
            "word" => out.push_str(pick(rng, &WORDS)),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
    }
    out.push_str(rest);
    out
}

/// A Python traceback ending in the exception, starting in the template's own function.
pub fn traceback(t: &ErrorTemplate, service: &str, message: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("Traceback (most recent call last):\n");
    out.push_str(&format!(
        "  File \"/app/{}/{}.py\", line {}, in {}\n    {}\n",
        service.replace('-', "_"),
        t.template.module,
        t.template.line,
        t.template.function,
        t.call
    ));
    for fr in t.frames {
        out.push_str(&format!(
            "  File \"{}\", line {}, in {}\n    {}\n",
            fr.file, fr.line, fr.function, fr.code
        ));
    }
    out.push_str(t.exception_type);
    out.push_str(": ");
    out.push_str(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::generate::PAYMENTS_TERM;

    #[test]
    fn every_placeholder_is_known() {
        let all = SERVICE_TEMPLATES
            .iter()
            .flatten()
            .chain(GENERIC_TEMPLATES.iter())
            .chain(WARNING_TEMPLATES.iter())
            .map(|t| t.text)
            .chain(
                ERROR_TEMPLATES
                    .iter()
                    .flat_map(|e| [e.template.text, e.exception_message]),
            );
        for text in all {
            let filled = fill(text, &mut Rng::new(1), 42, "10.0.0.1");
            assert!(!filled.contains('{'), "{text} -> {filled}");
        }
    }

    #[test]
    fn the_term_is_only_in_payments() {
        for (i, templates) in SERVICE_TEMPLATES.iter().enumerate() {
            let has = templates.iter().any(|t| t.text.contains(PAYMENTS_TERM));
            assert_eq!(has, SERVICES[i].0 == "payments");
        }
        let others = GENERIC_TEMPLATES
            .iter()
            .chain(WARNING_TEMPLATES.iter())
            .chain(ERROR_TEMPLATES.iter().map(|e| &e.template));
        assert!(others.into_iter().all(|t| !t.text.contains(PAYMENTS_TERM)));
    }
}
