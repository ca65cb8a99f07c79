//! End-to-end tests of PromQL: the `testdata/*.test` scripts (our own cases in Prometheus'
//! `promqltest` format) and table tests of the API around evaluation.

mod api;
mod rollup;
mod scripts;
