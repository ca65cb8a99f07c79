//! The `_bulk` response body, in Elasticsearch's shape, so clients' retry and error
//! handling (which reads `errors` and each item's `status`) works unchanged.

use serde_json::{Map, Value, json};

use super::BulkItem;

/// Elasticsearch's bulk answer for `items`:
/// `{"took":N,"errors":bool,"items":[{"<action>":{"_index":…,"_id":…,"status":…,…}}]}`.
/// Successful items carry `"result":"created"`, failed ones `"error":{"type","reason"}`.
pub fn bulk_response(items: &[BulkItem], took_ms: u64) -> Value {
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut inner = Map::new();
            if let Some(index) = &item.index {
                inner.insert("_index".into(), json!(index));
            }
            if let Some(id) = &item.id {
                inner.insert("_id".into(), json!(id));
            }
            inner.insert("status".into(), json!(item.status));
            match &item.error {
                None => {
                    inner.insert("result".into(), json!("created"));
                    inner.insert("_version".into(), json!(1));
                }
                Some(error) => {
                    inner.insert(
                        "error".into(),
                        json!({ "type": error.error_type, "reason": error.reason }),
                    );
                }
            }
            let mut outer = Map::new();
            outer.insert(item.action.as_str().into(), Value::Object(inner));
            Value::Object(outer)
        })
        .collect();
    json!({
        "took": took_ms,
        "errors": items.iter().any(|i| i.error.is_some()),
        "items": results,
    })
}
