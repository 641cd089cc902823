//! The daemon behind `xmatch serve`.
//!
//! One event loop owns all state. tokio-cron-scheduler holds a one-shot job per pipeline at
//! the next fire instant that [`CronSchedule`] computed (it cannot be trusted with the time
//! zone itself, see `cron`); a firing sends an event here, which records the schedule mark,
//! re-arms the next firing and starts the run on its own task. Whether the run may start
//! at all is decided by the store's lease, so two daemons on one PostgreSQL store, or a
//! daemon and someone's `xmatch run`, never overlap: the loser is recorded as `skipped`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};
use uuid::Uuid;

use super::http::{self, Gauges};
use super::webhook::Target;
use crate::pipeline::config::{CatchUp, Pipeline, load_dir};
use crate::pipeline::lease;
use crate::pipeline::{RunError, RunOptions, execute};
use crate::schema::Catalog;
use crate::store::Store;
use crate::workspace::Workspace;

/// How the daemon behaves; the defaults suit production.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where `/healthz` and `/metrics` answer (none: no HTTP listener).
    pub listen: Option<SocketAddr>,
    /// How long SIGTERM waits for a running run before abandoning it.
    pub grace: Duration,
    /// Lease time to live of the runs it starts.
    pub lease_ttl: Duration,
    /// How often it looks for runs whose process died (lease lapsed).
    pub sweep_every: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: None,
            grace: Duration::from_secs(300),
            lease_ttl: lease::DEFAULT_TTL,
            sweep_every: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("the scheduler failed: {0}")]
    Scheduler(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

fn sched_err(e: impl std::fmt::Display) -> ServeError {
    ServeError::Scheduler(e.to_string())
}

/// How the daemon ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeExit {
    /// Runs still working when the grace period ran out, now marked abandoned.
    pub abandoned: Vec<i64>,
}

enum Event {
    Fire {
        pipeline: String,
        generation: u64,
        scheduled_for: DateTime<Utc>,
    },
    Retry {
        pipeline: String,
        attempt: u32,
        scheduled_for: Option<DateTime<Utc>>,
    },
    Finished {
        /// The key of the run's task in `Daemon::running`.
        task: u64,
        pipeline: String,
        attempt: u32,
        scheduled_for: Option<DateTime<Utc>>,
        run_id: Option<i64>,
        result: Result<(), RunError>,
    },
}

struct Armed {
    pipeline: Pipeline,
    job: Option<Uuid>,
    generation: u64,
}

/// A run task of this daemon. Keyed by task, not pipeline: a second firing of a pipeline
/// still working ends `skipped`, and its end must not forget the first.
struct Running {
    pipeline: String,
    run_id: Arc<OnceLock<i64>>,
    task: tokio::task::JoinHandle<()>,
}

struct Daemon {
    ws: Workspace,
    store: Store,
    catalog: Catalog,
    opts: ServeOptions,
    sched: JobScheduler,
    armed: BTreeMap<String, Armed>,
    generation: u64,
    running: HashMap<u64, Running>,
    next_task: u64,
    events: mpsc::UnboundedSender<Event>,
    gauges: Arc<Mutex<Gauges>>,
    stopping: bool,
}

/// Runs the daemon until SIGTERM or SIGINT. Returns once no run of its own is left working
/// (or the grace period ran out and the leftovers were marked abandoned).
pub async fn serve(ws: Workspace, opts: ServeOptions) -> Result<ServeExit, ServeError> {
    let (store, _key) = ws.open_keyed().await?;
    let catalog = Catalog::builtin()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sched = JobScheduler::new().await.map_err(sched_err)?;
    let gauges = Arc::new(Mutex::new(Gauges::default()));
    if let Some(addr) = opts.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        info!(%addr, "health and metrics listening");
        tokio::spawn(http::serve(listener, store.clone(), gauges.clone()));
    }
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;

    let mut d = Daemon {
        ws,
        store,
        catalog,
        opts,
        sched,
        armed: BTreeMap::new(),
        generation: 0,
        running: HashMap::new(),
        next_task: 0,
        events: tx,
        gauges,
        stopping: false,
    };
    d.reload(true).await?;
    d.sweep().await;
    d.sched.start().await.map_err(sched_err)?;
    info!(pipelines = d.armed.len(), "xmatch serve started");

    let mut sweep = tokio::time::interval(d.opts.sweep_every);
    sweep.tick().await;
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => d.handle(ev).await,
            _ = hup.recv() => {
                info!("SIGHUP: reloading pipeline files");
                if let Err(e) = d.reload(false).await {
                    error!(error = %e, "reload failed; the old definitions stay");
                }
            }
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
            _ = sweep.tick() => d.sweep().await,
        }
    }
    d.shutdown(&mut rx).await
}

impl Daemon {
    /// Loads `pipelines/*.toml` and (re)arms every schedule. A broken file is reported
    /// and, on reload, the definition it replaced keeps running.
    async fn reload(&mut self, first: bool) -> Result<(), ServeError> {
        let dir = self.ws.root().join("pipelines");
        let (good, bad) = load_dir(&dir, &self.catalog);
        let mut broken_files = Vec::new();
        for e in &bad {
            error!(error = %e, "pipeline file refused");
            if let crate::pipeline::config::ConfigError::Parse { path, .. }
            | crate::pipeline::config::ConfigError::Field { path, .. }
            | crate::pipeline::config::ConfigError::Read { path, .. } = e
            {
                broken_files.push(path.clone());
            }
        }
        let mut next: BTreeMap<String, Pipeline> =
            good.into_iter().map(|p| (p.name.clone(), p)).collect();
        // Keep what a broken file defined before.
        for (name, armed) in &self.armed {
            if broken_files.contains(&armed.pipeline.file) && !next.contains_key(name) {
                warn!(pipeline = %name, "keeping the previous definition of a broken file");
                next.insert(name.clone(), armed.pipeline.clone());
            }
        }
        // Unschedule what is gone or changed.
        let names: Vec<String> = self.armed.keys().cloned().collect();
        for name in names {
            let unchanged = next.get(&name).is_some_and(|p| {
                self.armed[&name].pipeline.file == p.file
                    && same_definition(&self.armed[&name].pipeline, p)
            });
            if !unchanged {
                let old = self.armed.remove(&name).expect("listed");
                if let Some(job) = old.job {
                    let _ = self.sched.remove(&job).await;
                }
                if !next.contains_key(&name) {
                    info!(pipeline = %name, "pipeline removed");
                }
            }
        }
        for (name, p) in next {
            if self.armed.contains_key(&name) {
                continue;
            }
            self.generation += 1;
            let generation = self.generation;
            self.armed.insert(
                name.clone(),
                Armed {
                    pipeline: p,
                    job: None,
                    generation,
                },
            );
            self.catch_up_and_arm(&name, first).await?;
        }
        let mut g = self.gauges.lock().expect("gauges");
        g.pipelines = self.armed.len();
        g.config_errors = bad.len();
        Ok(())
    }

    /// At start (or when a pipeline appears): applies the catch-up policy to schedule
    /// times missed since the pipeline's mark, then arms the next firing.
    async fn catch_up_and_arm(&mut self, name: &str, at_start: bool) -> Result<(), ServeError> {
        let p = self.armed[name].pipeline.clone();
        let Some(cron) = p.cron.clone() else {
            return Ok(());
        };
        let now = Utc::now();
        match self.store.schedule_mark(name).await? {
            None => self.store.set_schedule_mark(name, now).await?,
            Some(mark) if at_start => {
                let (mut missed, mut last) = (0u64, None);
                let mut t = mark;
                while let Some(n) = cron.next_after(t).filter(|n| *n <= now) {
                    missed += 1;
                    last = Some(n);
                    t = n;
                    if missed > 100_000 {
                        break;
                    }
                }
                if let Some(last) = last {
                    self.store.set_schedule_mark(name, last).await?;
                    match p.catch_up {
                        CatchUp::Once => {
                            info!(
                                pipeline = name,
                                missed, "catching up once on missed schedule times"
                            );
                            self.start_run(name, "catch-up", 1, Some(last));
                        }
                        CatchUp::Skip => {
                            let id = self
                                .store
                                .start_run_with(&crate::store::NewRun {
                                    pipeline: name,
                                    trigger: "catch-up",
                                    attempt: 1,
                                    scheduled_for: Some(last),
                                    holder: lease::this_holder(),
                                    provisional_expiry_ms: 0,
                                })
                                .await?;
                            let why = format!(
                                "{missed} schedule time(s) missed while no daemon was running; catch_up = \"skip\""
                            );
                            self.store
                                .finish_run(id, "skipped", None, Some(&why))
                                .await?;
                            info!(pipeline = name, missed, "missed schedule times skipped");
                        }
                    }
                }
            }
            Some(_) => {}
        }
        self.arm(name, now).await
    }

    /// Arms the first firing strictly after `after`.
    async fn arm(&mut self, name: &str, after: DateTime<Utc>) -> Result<(), ServeError> {
        let Some(armed) = self.armed.get_mut(name) else {
            return Ok(());
        };
        let Some(cron) = armed.pipeline.cron.clone() else {
            return Ok(());
        };
        let Some(fire_at) = cron.next_after(after) else {
            warn!(pipeline = name, "the schedule never fires again");
            return Ok(());
        };
        // tokio-cron-scheduler counts whole seconds from now: hand it the distance between
        // the two whole-second clocks, so it fires in the second the schedule names.
        let secs = (fire_at.timestamp() - Utc::now().timestamp()).max(0) as u64;
        let tx = self.events.clone();
        let (pipeline, generation) = (name.to_string(), armed.generation);
        let job = Job::new_one_shot_async(Duration::from_secs(secs), move |_, _| {
            let (tx, pipeline) = (tx.clone(), pipeline.clone());
            Box::pin(async move {
                let _ = tx.send(Event::Fire {
                    pipeline,
                    generation,
                    scheduled_for: fire_at,
                });
            })
        })
        .map_err(sched_err)?;
        armed.job = Some(self.sched.add(job).await.map_err(sched_err)?);
        let mut g = self.gauges.lock().expect("gauges");
        g.next_fire.insert(name.to_string(), fire_at);
        Ok(())
    }

    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Fire {
                pipeline,
                generation,
                scheduled_for,
            } => {
                // A firing armed before a reload changed the pipeline is stale.
                if self.stopping
                    || self.armed.get(&pipeline).map(|a| a.generation) != Some(generation)
                {
                    return;
                }
                if let Err(e) = self.store.set_schedule_mark(&pipeline, scheduled_for).await {
                    warn!(pipeline = %pipeline, error = %e, "could not record the schedule mark");
                }
                if let Err(e) = self.arm(&pipeline, scheduled_for).await {
                    error!(pipeline = %pipeline, error = %e, "could not arm the next firing");
                }
                self.start_run(&pipeline, "schedule", 1, Some(scheduled_for));
            }
            Event::Retry {
                pipeline,
                attempt,
                scheduled_for,
            } => {
                if !self.stopping && self.armed.contains_key(&pipeline) {
                    self.start_run(&pipeline, "retry", attempt, scheduled_for);
                }
            }
            Event::Finished {
                task,
                pipeline,
                attempt,
                scheduled_for,
                run_id,
                result,
            } => {
                self.running.remove(&task);
                self.gauges.lock().expect("gauges").running = self.running.len();
                let err = match result {
                    Ok(()) => return,
                    Err(RunError::LeaseHeld { .. } | RunError::NotReady(_)) => return,
                    Err(e) => e,
                };
                let Some(p) = self.armed.get(&pipeline).map(|a| a.pipeline.clone()) else {
                    return;
                };
                let retry = attempt <= p.retries && !self.stopping;
                error!(pipeline = %pipeline, attempt, run_id, error = %err, retry, "run failed");
                notify(&p, run_id, "failed", attempt, Some(&err.to_string()), retry).await;
                if retry {
                    let delay = Duration::from_secs(
                        p.retry_backoff_seconds
                            .saturating_mul(1u64 << (attempt - 1).min(20)),
                    );
                    let tx = self.events.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Event::Retry {
                            pipeline,
                            attempt: attempt + 1,
                            scheduled_for,
                        });
                    });
                }
            }
        }
    }

    /// Starts a run on its own task. A run of the same pipeline still working in this
    /// daemon is not waited for: the lease turns the newcomer into a `skipped` row.
    fn start_run(
        &mut self,
        name: &str,
        trigger: &str,
        attempt: u32,
        scheduled_for: Option<DateTime<Utc>>,
    ) {
        let Some(p) = self.armed.get(name).map(|a| a.pipeline.clone()) else {
            return;
        };
        let slot = Arc::new(OnceLock::new());
        let opts = RunOptions {
            trigger: trigger.to_string(),
            attempt,
            scheduled_for,
            lease_ttl: self.opts.lease_ttl,
            run_id_slot: Some(slot.clone()),
            ..RunOptions::default()
        };
        let (ws, tx, pipeline) = (self.ws.clone(), self.events.clone(), name.to_string());
        let slot_in = slot.clone();
        self.next_task += 1;
        let key = self.next_task;
        info!(pipeline = name, trigger, attempt, "starting a run");
        let task = tokio::spawn(async move {
            let result = execute(&ws, &p, &opts).await.map(|_| ());
            let _ = tx.send(Event::Finished {
                task: key,
                pipeline,
                attempt,
                scheduled_for,
                run_id: slot_in.get().copied(),
                result,
            });
        });
        self.running.insert(
            key,
            Running {
                pipeline: name.to_string(),
                run_id: slot,
                task,
            },
        );
        self.gauges.lock().expect("gauges").running = self.running.len();
    }

    /// Marks runs whose process died abandoned, and tells their webhooks.
    async fn sweep(&mut self) {
        match crate::pipeline::run::recover(&self.ws, &self.store).await {
            Ok(abandoned) => {
                for id in abandoned {
                    warn!(run_id = id, "a run's process died: marked abandoned");
                    if let Ok(Some(row)) = self.store.run(id).await
                        && let Some(p) = self.armed.get(&row.pipeline)
                    {
                        notify(
                            &p.pipeline,
                            Some(id),
                            "abandoned",
                            row.attempt as u32,
                            row.error.as_deref(),
                            false,
                        )
                        .await;
                    }
                }
            }
            Err(e) => warn!(error = %e, "looking for abandoned runs failed"),
        }
    }

    /// Stops taking runs, waits up to the grace period for its own, then abandons the rest
    /// (their fence moves on, so they cannot publish; staging is cleaned at the next start).
    async fn shutdown(
        mut self,
        rx: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Result<ServeExit, ServeError> {
        self.stopping = true;
        let _ = self.sched.shutdown().await;
        let deadline = tokio::time::Instant::now() + self.opts.grace;
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev @ Event::Finished { .. })) => self.handle(ev).await,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut abandoned = Vec::new();
        for (_, r) in self.running.drain() {
            let name = r.pipeline;
            r.task.abort();
            if let Some(&id) = r.run_id.get() {
                let why = format!(
                    "the daemon was stopped and the run did not finish within the {} s grace period",
                    self.opts.grace.as_secs()
                );
                if self.store.abandon_run(id, &why).await.unwrap_or(false) {
                    warn!(pipeline = %name, run_id = id, "abandoned at shutdown");
                    if let Some(p) = self.armed.get(&name) {
                        notify(&p.pipeline, Some(id), "abandoned", 0, Some(&why), false).await;
                    }
                    abandoned.push(id);
                }
            }
        }
        info!("xmatch serve stopped");
        Ok(ServeExit { abandoned })
    }
}

/// Whether two loads of a pipeline would schedule and run the same way.
fn same_definition(a: &Pipeline, b: &Pipeline) -> bool {
    // Every field is plain configuration; comparing the debug forms compares them all.
    format!("{a:?}") == format!("{b:?}")
}

/// POSTs a failed or abandoned run to the pipeline's webhook, if it has one. Failures to
/// deliver are logged, never fatal.
async fn notify(
    p: &Pipeline,
    run_id: Option<i64>,
    status: &str,
    attempt: u32,
    error: Option<&str>,
    will_retry: bool,
) {
    let Some(url) = &p.notify.webhook else {
        return;
    };
    let Ok(target) = Target::parse(url) else {
        return;
    };
    let body = serde_json::json!({
        "pipeline": p.name,
        "run_id": run_id,
        "status": status,
        "attempt": attempt,
        "error": error,
        "will_retry": will_retry,
        "at": Utc::now().to_rfc3339(),
    });
    match target.post(&body).await {
        Ok(code) => info!(pipeline = %p.name, code, "webhook notified"),
        Err(e) => warn!(pipeline = %p.name, error = %e, "webhook not delivered"),
    }
}
