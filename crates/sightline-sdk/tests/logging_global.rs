//! Request context reaches tasks spawned on other worker threads of a multi-thread runtime.
//! Its own test binary, since it installs the global subscriber.

mod common;

use tracing::Instrument;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_reaches_tasks_on_other_workers() {
    let (subscriber, capture) = common::subscriber("svc");
    tracing::subscriber::set_global_default(subscriber).expect("global subscriber");
    let span = tracing::info_span!("http_request", request_id = "req-mt", user_id = "u-1");
    async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(
                    async move {
                        tokio::task::yield_now().await;
                        tracing::info!(task = i, "worker");
                    }
                    .instrument(tracing::Span::current()),
                )
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    }
    .instrument(span)
    .await;
    let lines = capture.lines();
    assert_eq!(lines.len(), 8);
    for line in lines {
        assert_eq!(line["request_id"], "req-mt");
        assert_eq!(line["user_id"], "u-1");
    }
}
