//! Background tasks under supervision: the default-account feeds, the PostgreSQL
//! listener, the token refresher, the database health monitor and the TLS reloader each
//! run as a child that the supervisor restarts with backoff when it ends or panics,
//! logged at ERROR. While a child is down, its health service (`patchbay.<name>`)
//! reports NOT_SERVING; the overall `""` status stays tied to the database. A task
//! that must tell others it went away (the feeds: their watchers would wait silently)
//! gets an `on_down` hook.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::{AbortHandle, JoinHandle};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::locks;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before it ended starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The running children, by name: what a test (or an operator tool) may stop to see
/// the supervisor at work.
#[derive(Clone, Default)]
pub struct Supervisor {
    children: Arc<Mutex<HashMap<&'static str, AbortHandle>>>,
    supervisors: Arc<Mutex<Vec<JoinHandle<()>>>>,
    health: Arc<Mutex<Option<HealthReporter>>>,
}

impl Supervisor {
    pub fn new(health: Option<HealthReporter>) -> Self {
        Self {
            health: Arc::new(Mutex::new(health)),
            ..Self::default()
        }
    }

    /// Where the children's health is reported from now on.
    pub fn set_health(&self, health: HealthReporter) {
        *locks::lock(&self.health) = Some(health);
    }

    /// Runs `make()` as the child `name` (health service `patchbay.<name>`), again
    /// whenever it ends; `on_down` runs each time it went away.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F, on_down: impl Fn() + Send + 'static)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let this = self.clone();
        let supervisor = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                // A panic in making the task is a task that ended: restarted like one.
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&make));
                let Ok(task) = made else {
                    tracing::error!(task = name, "background task could not start; retrying");
                    this.report(name, ServingStatus::NotServing).await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                };
                let child = AbortOnDrop(tokio::spawn(task));
                locks::lock(&this.children).insert(name, child.0.abort_handle());
                this.report(name, ServingStatus::Serving).await;
                let started = Instant::now();
                let ended = child.wait().await;
                this.report(name, ServingStatus::NotServing).await;
                on_down();
                match ended {
                    Ok(()) => tracing::error!(task = name, "background task ended; restarting it"),
                    Err(err) if err.is_panic() => {
                        tracing::error!(task = name, "background task panicked; restarting it")
                    }
                    Err(_) => {
                        tracing::error!(task = name, "background task was stopped; restarting it")
                    }
                }
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
        locks::lock(&self.supervisors).push(supervisor);
    }

    /// Stops the running child `name` (its supervisor restarts it). For tests.
    pub fn stop_child(&self, name: &str) -> bool {
        match locks::lock(&self.children).get(name) {
            Some(child) => {
                child.abort();
                true
            }
            None => false,
        }
    }

    /// Stops every supervisor and its child (shutdown), waits until they are gone, and
    /// reports each task NOT_SERVING.
    pub async fn stop_all(&self) {
        let supervisors: Vec<_> = locks::lock(&self.supervisors).drain(..).collect();
        for supervisor in &supervisors {
            supervisor.abort();
        }
        for supervisor in supervisors {
            let _ = supervisor.await;
        }
        let names: Vec<&'static str> = locks::lock(&self.children).keys().copied().collect();
        for name in names {
            self.report(name, ServingStatus::NotServing).await;
        }
    }

    async fn report(&self, name: &str, status: ServingStatus) {
        let health = locks::lock(&self.health).clone();
        if let Some(health) = health {
            health
                .set_service_status(format!("patchbay.{name}"), status)
                .await;
        }
    }
}

/// A child task that is aborted when its supervisor is (the handle dropped with it).
struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    async fn wait(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
