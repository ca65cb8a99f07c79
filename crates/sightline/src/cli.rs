//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "sightline",
    version,
    about = "Logs, metrics and traces in one server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (zero configuration: data in ./sightline-data, HTTP on 127.0.0.1:4318,
    /// OTLP gRPC on 127.0.0.1:4317).
    Serve(ServeArgs),
    /// Query and tail logs with LogQL.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Query metrics with PromQL.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Get a trace as a waterfall, or search traces.
    #[command(subcommand)]
    Traces(TracesCommand),
    /// Everything about one request: its trace, its log lines across services, the errors
    /// first, and the span metrics of the endpoints it touched.
    Debug(DebugArgs),
    /// SLOs: status, error budgets and burn rates.
    #[command(subcommand)]
    Slo(SloCommand),
    /// Silence alerts (no notifications while a silence is active).
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Bulk-load data into a running server.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Validate configuration.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Look inside on-disk files.
    #[command(subcommand)]
    Inspect(InspectCommand),
}

#[derive(Subcommand, Debug)]
pub enum SloCommand {
    /// Every SLO (or one) as a table: SLI, budget left, burn rates, firing alerts.
    Status(SloStatusArgs),
}

#[derive(Args, Debug)]
pub struct SloStatusArgs {
    /// Only this SLO.
    pub name: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Silence alerts matching every matcher, e.g. `alertname=SLOBurnRateHigh slo=~"orders.*"`.
    Add(SilenceAddArgs),
    /// List silences.
    List(SilenceListArgs),
    /// End a silence now.
    Expire(SilenceExpireArgs),
}

#[derive(Args, Debug)]
pub struct SilenceAddArgs {
    /// Matchers: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
    #[arg(required = true)]
    pub matchers: Vec<String>,
    /// How long, e.g. `2h`.
    #[arg(long, default_value = "1h")]
    pub duration: String,
    #[arg(long, default_value = "")]
    pub comment: String,
    #[arg(long, env = "USER", default_value = "sightline-cli")]
    pub author: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct SilenceListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct SilenceExpireArgs {
    pub id: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum InspectCommand {
    /// Where a logs segment's bytes go: rows, blocks, columns, and each metadata field.
    Segment { file: PathBuf },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// HTTP listen address (every HTTP route, OTLP/HTTP included).
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// OTLP gRPC listen address.
    #[arg(long, env = "SIGHTLINE_GRPC_ADDR")]
    pub grpc_addr: Option<String>,
    /// Where the WAL, checkpoint and (by default) segments live.
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A YAML configuration file.
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server to talk to.
    #[arg(
        long,
        env = "SIGHTLINE_SERVER",
        default_value = "http://127.0.0.1:4318"
    )]
    pub server: String,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long, env = "SIGHTLINE_TENANT")]
    pub tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Run a LogQL query: log lines, or a table of series for a metric query.
    Query(LogsQueryArgs),
    /// Follow new log lines matching a LogQL log query.
    Tail(LogsTailArgs),
}

#[derive(Args, Debug)]
pub struct LogsQueryArgs {
    /// The LogQL query, e.g. '{service="api"} |= "error"'.
    pub query: String,
    /// How far back to look (ignored when --start is given).
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Start of the range (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub start: Option<String>,
    /// End of the range (default now).
    #[arg(long)]
    pub end: Option<String>,
    /// Most lines to return.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub forward: bool,
    /// Step of a metric range query (e.g. 1m).
    #[arg(long)]
    pub step: Option<String>,
    /// Print the raw JSON response.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct LogsTailArgs {
    /// The LogQL log query to follow.
    pub query: String,
    /// Also print the lines of this recent span first.
    #[arg(long, default_value = "0s")]
    pub since: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// Run a PromQL query: a table for an instant query, a chart per series for a range.
    Query(MetricsQueryArgs),
}

#[derive(Args, Debug)]
pub struct MetricsQueryArgs {
    /// The PromQL expression, e.g. 'sum by (job) (rate(http_requests_total[5m]))'.
    pub query: String,
    /// Evaluate over a range ending now (or at --end) this long, instead of at one instant.
    #[arg(long)]
    pub since: Option<String>,
    /// Start of a range query (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub start: Option<String>,
    /// End of a range query, or the time of an instant query (default now).
    #[arg(long)]
    pub end: Option<String>,
    /// Step of a range query (default: the range / 60).
    #[arg(long)]
    pub step: Option<String>,
    /// Print the raw JSON response.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum TracesCommand {
    /// Print a trace as a waterfall: spans as an indented tree with durations.
    Get(TracesGetArgs),
    /// Find traces by service, operation, tags and duration.
    Search(TracesSearchArgs),
}

#[derive(Args, Debug)]
pub struct TracesGetArgs {
    /// The trace id (hex).
    pub id: String,
    /// Print the raw JSON response.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct TracesSearchArgs {
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub operation: Option<String>,
    /// A span tag, key=value; repeat for more.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// e.g. 100ms.
    #[arg(long)]
    pub min_duration: Option<String>,
    #[arg(long)]
    pub max_duration: Option<String>,
    /// How far back to look.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Most traces.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the raw JSON response.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct DebugArgs {
    /// A trace id or a request id.
    pub id: String,
    /// Print the raw JSON response.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Send an NDJSON file of log objects (one per line) to the server.
    Logs(ImportArgs),
    /// Backfill a file in the Prometheus text exposition format (timestamps optional).
    Prometheus(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file ('-' for standard input).
    pub file: PathBuf,
    /// Lines per request.
    #[arg(long, default_value_t = 10_000)]
    pub batch_lines: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Validate a configuration file; errors give line and column.
    Config { file: PathBuf },
}
