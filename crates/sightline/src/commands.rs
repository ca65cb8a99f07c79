//! What each subcommand does.

mod alerting;
mod import;
mod inspect;
mod logs;
mod metrics;
mod traces;

use anyhow::Result;

use crate::cli::{
    CheckCommand, Cli, Command, ImportCommand, InspectCommand, LogsCommand, MetricsCommand,
    SilenceCommand, SloCommand, TracesCommand,
};

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args).await,
        Command::Logs(LogsCommand::Query(args)) => logs::query(args).await,
        Command::Logs(LogsCommand::Tail(args)) => logs::tail(args).await,
        Command::Metrics(MetricsCommand::Query(args)) => metrics::query(args).await,
        Command::Traces(TracesCommand::Get(args)) => traces::get(args).await,
        Command::Traces(TracesCommand::Search(args)) => traces::search(args).await,
        Command::Debug(args) => traces::debug(args).await,
        Command::Slo(SloCommand::Status(args)) => alerting::slo_status(args).await,
        Command::Silence(SilenceCommand::Add(args)) => alerting::silence_add(args).await,
        Command::Silence(SilenceCommand::List(args)) => alerting::silence_list(args).await,
        Command::Silence(SilenceCommand::Expire(args)) => alerting::silence_expire(args).await,
        Command::Import(ImportCommand::Logs(args)) => import::logs(args).await,
        Command::Import(ImportCommand::Prometheus(args)) => import::prometheus(args).await,
        Command::Inspect(InspectCommand::Segment { file }) => inspect::segment(&file),
        Command::Check(CheckCommand::Config { file }) => {
            crate::config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}
