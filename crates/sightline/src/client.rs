//! A small HTTP client for the CLI: the server's URL, the tenant header, and errors that
//! carry the server's own message.

use anyhow::{Context, Result, bail};
use reqwest::{Client, RequestBuilder, Response};

use crate::cli::ServerArgs;

pub struct Api {
    pub base: String,
    tenant: Option<String>,
    http: Client,
}

impl Api {
    pub fn new(args: &ServerArgs) -> Result<Self> {
        let http = Client::builder().build().context("build http client")?;
        Ok(Self {
            base: args.server.trim_end_matches('/').to_string(),
            tenant: args.tenant.clone(),
            http,
        })
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.with_tenant(self.http.get(format!("{}{path}", self.base)))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.with_tenant(self.http.post(format!("{}{path}", self.base)))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.with_tenant(self.http.delete(format!("{}{path}", self.base)))
    }

    fn with_tenant(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.tenant {
            Some(t) => rb.header("X-Scope-OrgID", t),
            None => rb,
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Sends, and turns a non-2xx answer into an error with the server's message.
    pub async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = rb
            .send()
            .await
            .with_context(|| format!("connect to {}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(text);
        bail!("server answered {status}: {msg}")
    }
}
