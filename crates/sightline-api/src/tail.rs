//! Live tail: every durable log batch is offered to the websocket tails that are open.
//!
//! The hub is a broadcast channel; ingest publishes a batch only when someone listens, so
//! an idle server pays nothing. A slow tail that falls behind the channel loses entries and
//! is told how many in `dropped_entries`, as Loki does.

use std::sync::Arc;

use tokio::sync::broadcast;

use sightline_model::LogBatch;

/// Batches a lagging tail may fall behind before it drops entries.
const TAIL_CHANNEL_BATCHES: usize = 1024;

pub struct TailHub {
    tx: broadcast::Sender<Arc<LogBatch>>,
}

impl Default for TailHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(TAIL_CHANNEL_BATCHES).0,
        }
    }
}

impl TailHub {
    /// Whether any tail is open.
    pub fn wants(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, batch: Arc<LogBatch>) {
        let _ = self.tx.send(batch);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogBatch>> {
        self.tx.subscribe()
    }
}

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use sightline_model::log::LogEntryRef;
use sightline_model::matcher::matches_all;
use sightline_model::{LabelMatcher, Labels, NANOS_PER_SECOND, TenantId, now_ns};
use sightline_query::logql::{self, Direction, Pipeline, QueryParams, QueryValue};

use crate::params::Params;
use crate::{ApiError, SharedState, tenant_of};

/// Most entries sent in one live frame.
const TAIL_FRAME_ENTRIES_MAX: usize = 1000;

/// `GET /loki/api/v1/tail` (websocket): the recent entries since `start`, then new ones as
/// they are stored.
pub async fn tail(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let setup = async {
        let tenant = tenant_of(&headers)?;
        let p = Params::read(&state, raw, &headers, axum::body::Body::empty()).await?;
        let query = p.required("query")?.to_string();
        let (matchers, pipeline) =
            logql::compile_log_query(&query).map_err(|e| ApiError::bad_data(e.to_string()))?;
        let start = p.time_or("start", now_ns() - 3600 * NANOS_PER_SECOND)?;
        let limit = p.limit(state.limits.query_entries_max)?;
        state.store()?;
        Ok::<_, ApiError>((tenant, query, matchers, pipeline, start, limit))
    };
    match setup.await {
        Err(e) => e.into_response(),
        Ok((tenant, query, matchers, pipeline, start, limit)) => ws.on_upgrade(move |socket| {
            run_tail(
                state,
                socket,
                TailSpec {
                    tenant,
                    query,
                    matchers,
                    pipeline,
                    start,
                    limit,
                },
            )
        }),
    }
}

struct TailSpec {
    tenant: TenantId,
    query: String,
    matchers: Vec<LabelMatcher>,
    pipeline: Pipeline,
    start: i64,
    limit: u32,
}

fn frame(entries: Vec<(Labels, i64, String)>, dropped: u64) -> Value {
    let mut by_stream: Vec<(Labels, Vec<Value>)> = Vec::new();
    for (labels, ts, line) in entries {
        let v = json!([ts.to_string(), line]);
        match by_stream.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, vals)) => vals.push(v),
            None => by_stream.push((labels, vec![v])),
        }
    }
    let streams: Vec<Value> = by_stream
        .into_iter()
        .map(|(l, values)| {
            let stream: serde_json::Map<String, Value> = l
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            json!({"stream": stream, "values": values})
        })
        .collect();
    let dropped = if dropped == 0 {
        Value::Null
    } else {
        json!([{"labels": {}, "timestamp": now_ns().to_string(), "count": dropped}])
    };
    json!({"streams": streams, "dropped_entries": dropped})
}

async fn send(socket: &mut WebSocket, v: Value) -> bool {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .is_ok()
}

async fn run_tail(state: SharedState, mut socket: WebSocket, spec: TailSpec) {
    // Subscribe before reading history so nothing stored meanwhile is missed.
    let mut live = state.tail.subscribe();
    let history_end = now_ns();
    let params = QueryParams::range(
        spec.tenant.clone(),
        spec.start,
        history_end,
        NANOS_PER_SECOND,
    )
    .with_limit(spec.limit)
    .with_direction(Direction::Forward);
    let history = match state.store() {
        Ok(store) => {
            let source = crate::source::StoreLogs::new(store.clone());
            let q = spec.query.clone();
            let limits = crate::loki::query_limits(&state);
            tokio::task::spawn_blocking(move || {
                logql::Evaluator::new(&source)
                    .with_limits(limits)
                    .query(&q, &params)
            })
            .await
            .map_err(|e| format!("query task: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()))
        }
        Err(e) => Err(e.to_string()),
    };
    let streams = match history {
        Ok(result) => match result.value {
            QueryValue::Streams(streams) => streams,
            _ => Vec::new(),
        },
        Err(reason) => {
            // The client is told why its tail ends, in the close frame (as Loki does).
            tracing::warn!(query = %spec.query, error = %reason, "tail: reading recent entries failed");
            let frame = axum::extract::ws::CloseFrame {
                code: 1011,
                reason: reason.into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            return;
        }
    };
    let mut entries: Vec<(Labels, i64, String)> = streams
        .into_iter()
        .flat_map(|s| {
            let labels = s.labels;
            s.entries
                .into_iter()
                .map(move |e| (labels.clone(), e.timestamp_ns, e.line))
        })
        .collect();
    entries.sort_by_key(|e| e.1);
    if !entries.is_empty() && !send(&mut socket, frame(entries, 0)).await {
        return;
    }
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
            batch = live.recv() => {
                let (batch, dropped) = match batch {
                    Ok(b) => (b, 0),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        if !send(&mut socket, frame(Vec::new(), n)).await { return; }
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if batch.tenant != spec.tenant {
                    continue;
                }
                let mut entries = Vec::new();
                for r in &batch.records {
                    if !matches_all(&spec.matchers, &r.labels) {
                        continue;
                    }
                    let metadata = r.metadata.to_vec();
                    let entry = LogEntryRef { timestamp_ns: r.timestamp_ns, line: &r.line, metadata: &metadata };
                    if let Some(out) = spec.pipeline.process(&r.labels, &entry) {
                        entries.push((out.labels, r.timestamp_ns, out.line));
                    }
                }
                for chunk in entries.chunks(TAIL_FRAME_ENTRIES_MAX) {
                    if !send(&mut socket, frame(chunk.to_vec(), dropped)).await {
                        return;
                    }
                }
            }
        }
    }
}
