//! The scrape manager: runs every job's targets, follows file_sd changes and configuration
//! reloads, and reports target health.
//!
//! Per job it keeps the discovered groups (static and file_sd), builds the targets from them
//! ([`crate::target`]) and runs one [`crate::scrape`] loop per distinct target (targets are
//! the same when their final labels and URL are, as in Prometheus; duplicates scrape once).
//! On every change of the groups or of the job's configuration it reconciles:
//! - a target still there, under an unchanged configuration, keeps its loop untouched;
//! - a new target whose public labels (those its series get) equal those of a target going
//!   away takes over that loop's state ([`LoopSignal::Handover`]): after a reload that
//!   changed the job, or a discovery change of only reserved labels, staleness tracking goes
//!   on and no marker is written for series that are still there;
//! - a target going away for good is signalled [`LoopSignal::Removed`] and writes its
//!   staleness markers once it is sure the target did not come straight back (see
//!   [`crate::scrape`]); until then it is kept as draining, and a target reappearing with
//!   the same public labels takes its state back.
//!
//! [`ScrapeManager::stop`] signals every loop (draining ones included) to write its markers
//! now, and returns when they are written. Dropping every handle without `stop` ends the
//! loops without markers (Prometheus' behaviour at shutdown).
//!
//! The state sits behind one async mutex held across a reconcile (which may wait for a loop
//! to hand its state over); [`ScrapeManager::targets`] reads a separate status registry and
//! never waits for it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use sightline_model::{Labels, TenantId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, GlobalConfig, ScrapeConfig, validate_scrape_configs};
use crate::discovery::{FILE_SD_POLL_INTERVAL_DEFAULT, FileDiscovery, static_groups};
use crate::scrape::append::SeriesState;
use crate::scrape::{Health, HealthState, LoopContext, LoopSignal, jitter_seed, run_loop};
use crate::sink::ScrapeSink;
use crate::target::{Target, TargetBuild, TargetGroup, targets_from_group};

/// How the manager runs, beyond the configuration.
#[derive(Clone, Debug)]
pub struct ScrapeOptions {
    /// The tenant every scraped batch belongs to (Prometheus' format has no tenant).
    pub tenant: TenantId,
    /// How often file_sd files are looked at for changes.
    pub file_sd_poll_interval: Duration,
    /// The seed of scrape offsets; `None` derives it from the external labels and the host
    /// name, as Prometheus does.
    pub jitter_seed: Option<u64>,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        Self {
            tenant: TenantId::default(),
            file_sd_poll_interval: FILE_SD_POLL_INTERVAL_DEFAULT,
            jitter_seed: None,
        }
    }
}

/// Why the manager refused to start or to apply a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("build the HTTP client of job {job:?}: {reason}")]
    Client { job: String, reason: String },
    #[error("the scrape manager is stopped")]
    Stopped,
}

/// One active target, for `/api/v1/targets`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStatus {
    /// The job (Prometheus' `scrapePool`).
    pub job: String,
    /// The labels its series get.
    pub labels: Labels,
    /// Its labels before relabeling.
    pub discovered_labels: Labels,
    pub scrape_url: String,
    pub health: Health,
    /// Empty when the last scrape succeeded.
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Option<Duration>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
}

/// A target that relabeling dropped, for `/api/v1/targets?state=dropped`.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered_labels: Labels,
}

/// Runs scraping; cheap to clone (all clones drive the same manager).
#[derive(Clone)]
pub struct ScrapeManager {
    inner: Arc<Inner>,
}

struct Inner {
    sink: Arc<dyn ScrapeSink>,
    options: ScrapeOptions,
    state: tokio::sync::Mutex<State>,
    status: Mutex<BTreeMap<String, JobStatus>>,
}

#[derive(Default)]
struct State {
    global: GlobalConfig,
    jitter_seed: u64,
    jobs: BTreeMap<String, Job>,
    draining: Vec<Draining>,
    next_generation: u64,
    stopped: bool,
}

/// A target's identity: its final labels and its URL.
type TargetKey = (Labels, String);

struct Job {
    config: Arc<ScrapeConfig>,
    global: GlobalConfig,
    client: reqwest::Client,
    generation: u64,
    static_groups: Vec<TargetGroup>,
    file_groups: Vec<TargetGroup>,
    targets: HashMap<TargetKey, Running>,
    forced_error: Arc<Mutex<Option<String>>>,
    watcher: Option<JoinHandle<()>>,
}

struct Running {
    target: Arc<Target>,
    health: Arc<Mutex<HealthState>>,
    signal: watch::Sender<LoopSignal>,
    handle: JoinHandle<SeriesState>,
}

/// A removed target's loop, waiting to write its markers.
struct Draining {
    job: String,
    labels: Labels,
    signal: watch::Sender<LoopSignal>,
    handle: JoinHandle<SeriesState>,
}

#[derive(Default)]
struct JobStatus {
    active: Vec<(Arc<Target>, Arc<Mutex<HealthState>>)>,
    dropped: Vec<Labels>,
}

impl ScrapeManager {
    /// Validates the configuration and starts scraping every job, with default options.
    pub async fn start(
        global: GlobalConfig,
        configs: Vec<ScrapeConfig>,
        sink: impl ScrapeSink,
    ) -> Result<Self, ManagerError> {
        Self::start_with_options(global, configs, sink, ScrapeOptions::default()).await
    }

    /// [`ScrapeManager::start`] with options.
    pub async fn start_with_options(
        global: GlobalConfig,
        configs: Vec<ScrapeConfig>,
        sink: impl ScrapeSink,
        options: ScrapeOptions,
    ) -> Result<Self, ManagerError> {
        validate_scrape_configs(&global, &configs)?;
        let manager = Self {
            inner: Arc::new(Inner {
                sink: Arc::new(sink),
                options,
                state: tokio::sync::Mutex::new(State::default()),
                status: Mutex::new(BTreeMap::new()),
            }),
        };
        manager.apply(global, configs).await?;
        Ok(manager)
    }

    /// Applies a new configuration (a reload): unchanged jobs go on untouched, changed jobs
    /// reconcile their targets, removed jobs' targets are marked stale. On error nothing
    /// changes.
    pub async fn apply(
        &self,
        global: GlobalConfig,
        configs: Vec<ScrapeConfig>,
    ) -> Result<(), ManagerError> {
        validate_scrape_configs(&global, &configs)?;
        let mut clients = Vec::with_capacity(configs.len());
        for config in &configs {
            clients.push(build_client(config)?);
        }
        let inner = &self.inner;
        let mut state = inner.state.lock().await;
        if state.stopped {
            return Err(ManagerError::Stopped);
        }
        state.jitter_seed = inner
            .options
            .jitter_seed
            .unwrap_or_else(|| jitter_seed(&global.external_labels, &hostname()));
        state.global = global.clone();
        let wanted: BTreeSet<&str> = configs.iter().map(|c| c.job_name.as_str()).collect();
        let gone: Vec<String> = state
            .jobs
            .keys()
            .filter(|name| !wanted.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(job) = state.jobs.remove(&name) {
                retire_job(&mut state, &name, job);
            }
            lock_status(&inner.status).remove(&name);
        }
        for (config, client) in configs.into_iter().zip(clients) {
            let name = config.job_name.clone();
            if let Some(job) = state.jobs.get(&name)
                && *job.config == config
                && job.global == global
            {
                continue;
            }
            let mut old_targets = HashMap::new();
            if let Some(mut old) = state.jobs.remove(&name) {
                if let Some(watcher) = old.watcher.take() {
                    watcher.abort();
                }
                old_targets = std::mem::take(&mut old.targets);
            }
            state.next_generation += 1;
            let generation = state.next_generation;
            let mut discovery = FileDiscovery::new(config.file_sd_configs.clone());
            let file_groups = if discovery.is_empty() {
                Vec::new()
            } else {
                let (read, groups) = tokio::task::spawn_blocking(move || {
                    let (_, errors) = discovery.refresh(Instant::now());
                    log_file_errors(&errors);
                    let groups = discovery.groups();
                    (discovery, groups)
                })
                .await
                .unwrap_or_else(|_| (FileDiscovery::new(Vec::new()), Vec::new()));
                discovery = read;
                groups
            };
            let config = Arc::new(config);
            let job = Job {
                static_groups: static_groups(&config),
                file_groups,
                config,
                global: global.clone(),
                client,
                generation,
                targets: HashMap::new(),
                forced_error: Arc::new(Mutex::new(None)),
                watcher: None,
            };
            state.jobs.insert(name.clone(), job);
            reconcile(inner, &mut state, &name, old_targets, false).await;
            if !discovery.is_empty()
                && let Some(job) = state.jobs.get_mut(&name)
            {
                let weak = Arc::downgrade(inner);
                let poll = inner.options.file_sd_poll_interval;
                job.watcher = Some(tokio::spawn(watch_files(
                    weak, name, generation, discovery, poll,
                )));
            }
        }
        Ok(())
    }

    /// Stops scraping: every target writes its staleness markers now (those already
    /// removed included), and this returns once they are written.
    pub async fn stop(&self) {
        let mut state = self.inner.state.lock().await;
        if state.stopped {
            return;
        }
        state.stopped = true;
        let mut handles = Vec::new();
        for (_, mut job) in std::mem::take(&mut state.jobs) {
            if let Some(watcher) = job.watcher.take() {
                watcher.abort();
            }
            for (_, running) in job.targets.drain() {
                running.signal.send_replace(LoopSignal::Shutdown);
                handles.push(running.handle);
            }
        }
        for draining in state.draining.drain(..) {
            draining.signal.send_replace(LoopSignal::Shutdown);
            handles.push(draining.handle);
        }
        for handle in handles {
            let _ = handle.await;
        }
        lock_status(&self.inner.status).clear();
    }

    /// The active targets, by job and labels.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let status = lock_status(&self.inner.status);
        let mut out = Vec::new();
        for (job, job_status) in status.iter() {
            for (target, health) in &job_status.active {
                let health = health.lock().map(|h| h.clone()).unwrap_or_default();
                out.push(TargetStatus {
                    job: job.clone(),
                    labels: target.labels(),
                    discovered_labels: target.discovered_labels().clone(),
                    scrape_url: target.url().to_string(),
                    health: health.health,
                    last_error: health.last_error,
                    last_scrape: health.last_scrape,
                    last_scrape_duration: health.last_scrape_duration,
                    scrape_interval: target.interval(),
                    scrape_timeout: target.timeout(),
                });
            }
        }
        out.sort_by(|a, b| (&a.job, &a.labels).cmp(&(&b.job, &b.labels)));
        out
    }

    /// The targets relabeling dropped, by job.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        let status = lock_status(&self.inner.status);
        status
            .iter()
            .flat_map(|(job, s)| {
                s.dropped.iter().map(|labels| DroppedTarget {
                    job: job.clone(),
                    discovered_labels: labels.clone(),
                })
            })
            .collect()
    }
}

fn lock_status(
    status: &Mutex<BTreeMap<String, JobStatus>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, JobStatus>> {
    status
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The HTTP client of a job.
fn build_client(config: &ScrapeConfig) -> Result<reqwest::Client, ManagerError> {
    let redirect = if config.follow_redirects {
        reqwest::redirect::Policy::default()
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(redirect)
        .build()
        .map_err(|e| ManagerError::Client {
            job: config.job_name.clone(),
            reason: e.to_string(),
        })
}

/// The host name, for the offset seed.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

fn log_file_errors(errors: &[crate::discovery::FileSdError]) {
    for error in errors {
        tracing::error!(%error, "file_sd: keeping the file's previous targets");
    }
}

/// Marks every target of a job that left the configuration as removed.
fn retire_job(state: &mut State, name: &str, mut job: Job) {
    if let Some(watcher) = job.watcher.take() {
        watcher.abort();
    }
    for (_, running) in job.targets.drain() {
        remove_target(state, name, running);
    }
}

fn remove_target(state: &mut State, job: &str, running: Running) {
    running.signal.send_replace(LoopSignal::Removed);
    state.draining.retain(|d| !d.handle.is_finished());
    state.draining.push(Draining {
        job: job.to_string(),
        labels: running.target.labels(),
        signal: running.signal,
        handle: running.handle,
    });
}

/// Takes the state of a loop going away: it stops at once and hands its state over.
async fn take_over(
    signal: watch::Sender<LoopSignal>,
    handle: JoinHandle<SeriesState>,
) -> SeriesState {
    signal.send_replace(LoopSignal::Handover);
    handle.await.unwrap_or_default()
}

/// Rebuilds a job's targets from its groups and reconciles the running loops with them
/// (see the module documentation). `old` are the loops to reconcile with; with
/// `keep_same`, a loop whose target is unchanged keeps running.
async fn reconcile(
    inner: &Arc<Inner>,
    state: &mut State,
    name: &str,
    mut old: HashMap<TargetKey, Running>,
    keep_same: bool,
) {
    let State {
        jobs,
        draining,
        jitter_seed,
        ..
    } = state;
    let Some(job) = jobs.get_mut(name) else {
        return;
    };
    let mut active: Vec<Target> = Vec::new();
    let mut dropped = Vec::new();
    let mut seen = HashSet::new();
    for group in job.static_groups.iter().chain(&job.file_groups) {
        let (built, errors) = targets_from_group(group, &job.config, &job.global);
        for error in errors {
            tracing::warn!(job = name, %error, "target refused");
        }
        for build in built {
            match build {
                TargetBuild::Active(target) => {
                    let key = (target.all_labels().clone(), target.url().to_string());
                    if seen.insert(key) {
                        active.push(target);
                    }
                }
                TargetBuild::Dropped(labels) => dropped.push(labels),
            }
        }
    }
    let limit = job.config.target_limit;
    let forced = (limit > 0 && active.len() as u64 > limit).then(|| {
        format!(
            "target_limit exceeded (number of targets: {}, limit: {limit})",
            active.len()
        )
    });
    if let Ok(mut slot) = job.forced_error.lock() {
        *slot = forced;
    }
    let mut running = HashMap::new();
    let mut to_start = Vec::new();
    for target in active {
        let key = (target.all_labels().clone(), target.url().to_string());
        match old.remove(&key).filter(|_| keep_same) {
            Some(kept) => {
                running.insert(key, kept);
            }
            None => to_start.push((key, target)),
        }
    }
    let mut leaving: HashMap<Labels, Running> = HashMap::new();
    let mut removed = Vec::new();
    for (_, loop_) in old {
        let labels = loop_.target.labels();
        if let Some(duplicate) = leaving.insert(labels, loop_) {
            removed.push(duplicate);
        }
    }
    for (key, target) in to_start {
        let labels = target.labels();
        let series_state = if let Some(previous) = leaving.remove(&labels) {
            take_over(previous.signal, previous.handle).await
        } else if let Some(i) = draining
            .iter()
            .position(|d| d.job == name && d.labels == labels)
        {
            let previous = draining.swap_remove(i);
            take_over(previous.signal, previous.handle).await
        } else {
            SeriesState::default()
        };
        let target = Arc::new(target);
        let health = Arc::new(Mutex::new(HealthState::default()));
        let (signal, receiver) = watch::channel(LoopSignal::Run);
        let ctx = LoopContext {
            target: target.clone(),
            config: job.config.clone(),
            client: job.client.clone(),
            sink: inner.sink.clone(),
            tenant: inner.options.tenant.clone(),
            health: health.clone(),
            forced_error: job.forced_error.clone(),
            jitter_seed: *jitter_seed,
        };
        let handle = tokio::spawn(run_loop(ctx, series_state, receiver));
        running.insert(
            key,
            Running {
                target,
                health,
                signal,
                handle,
            },
        );
    }
    job.targets = running;
    let status = JobStatus {
        active: job
            .targets
            .values()
            .map(|r| (r.target.clone(), r.health.clone()))
            .collect(),
        dropped,
    };
    lock_status(&inner.status).insert(name.to_string(), status);
    for loop_ in leaving.into_values().chain(removed) {
        remove_target(state, name, loop_);
    }
}

/// Follows a job's file_sd files, reconciling the job when its groups change. Ends when the
/// job is replaced (another generation), the manager stops, or every handle is dropped.
async fn watch_files(
    inner: Weak<Inner>,
    name: String,
    generation: u64,
    mut discovery: FileDiscovery,
    poll: Duration,
) {
    loop {
        tokio::time::sleep(poll).await;
        let Ok((returned, changed)) = tokio::task::spawn_blocking(move || {
            let (changed, errors) = discovery.refresh(Instant::now());
            log_file_errors(&errors);
            (discovery, changed)
        })
        .await
        else {
            return;
        };
        discovery = returned;
        if !changed {
            continue;
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut state = inner.state.lock().await;
        if state.stopped {
            return;
        }
        let Some(job) = state
            .jobs
            .get_mut(&name)
            .filter(|j| j.generation == generation)
        else {
            return;
        };
        job.file_groups = discovery.groups();
        let old = std::mem::take(&mut job.targets);
        reconcile(&inner, &mut state, &name, old, true).await;
    }
}
