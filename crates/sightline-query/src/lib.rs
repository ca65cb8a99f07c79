//! Query engines over the store: LogQL and PromQL today; trace search builds here too.

pub mod logql;
pub mod promql;
