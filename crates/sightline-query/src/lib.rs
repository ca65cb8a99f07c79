//! Query engines over the store: LogQL today; PromQL and trace search build here too.

pub mod logql;
