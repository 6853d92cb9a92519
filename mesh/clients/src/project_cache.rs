//! Remembered answers of the projects service: which role a user has in a project, and what a
//! board's column is, so that a service asks once per member and column and not once per call. Every event the projects service
//! publishes names its resource (`Taskmesh-Subject`, `projects/{project}/...`); the cache listens to
//! them on core NATS and forgets a project's answers when one arrives, so a role change or a removal
//! (or a column change) takes effect as soon as its event is out (the outbox relay's lag, milliseconds). Answers also
//! expire after a time to live, which bounds the staleness should an event be missed; while the
//! broker is unreachable nothing is answered from memory, and everything is forgotten when the
//! connection comes back, because events of the gap are gone.
//!
//! A lookup that races with an event must not store the answer it fetched before the event: every
//! forgetting moves an epoch, and an answer is kept only when the epoch has not moved since its
//! fetch began.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use futures::StreamExt;
use taskmesh_contracts::projects_v1::{Column, Role};
use tokio::sync::watch;

/// The subjects the cache listens to: everything the projects service publishes.
pub const SUBJECTS: &str = "taskmesh.projects.v1.>";
/// The header naming the resource an event is about.
const SUBJECT_HEADER: &str = "Taskmesh-Subject";
/// Past this many remembered answers everything is forgotten (a bound, not an eviction policy:
/// the working set of a service instance is far smaller).
const CAPACITY: usize = 100_000;

/// A shared cache of project facts; clones share it.
#[derive(Debug, Clone)]
pub struct ProjectCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ttl: Duration,
    nats: async_nats::Client,
    /// Set once the subscription is known to the broker: before that events could be missed.
    live: AtomicBool,
    /// How many times the client had connected when the cache last checked.
    connects: AtomicU64,
    epoch: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    projects: HashMap<String, Facts>,
    /// Remembered answers over all projects.
    len: usize,
}

/// What is remembered about one project.
#[derive(Debug, Default)]
struct Facts {
    /// user -> (role or not a member, when fetched).
    roles: HashMap<String, (Option<Role>, Instant)>,
    /// column resource name -> (the column, when fetched).
    columns: HashMap<String, (Column, Instant)>,
}

impl Facts {
    fn len(&self) -> usize {
        self.roles.len() + self.columns.len()
    }
}

/// An answer fetched from the projects service, to be remembered unless an event came meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl ProjectCache {
    /// A cache whose answers live at most `ttl`, fed by the events `nats` receives once
    /// [`watch`](Self::watch) runs.
    pub fn new(nats: async_nats::Client, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                ttl,
                connects: AtomicU64::new(nats.statistics().connects.load(Ordering::Relaxed)),
                nats,
                live: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// The remembered role of `user` in `project` (`None`: not a member), or the ticket to
    /// [`remember_role`](Self::remember_role) the answer of the projects service by.
    pub fn role(&self, project: &str, user: &str) -> Result<Option<Role>, Ticket> {
        self.find(project, |facts| {
            facts.roles.get(user).map(|(r, at)| (*r, *at))
        })
    }

    /// Keeps a role fetched after `ticket` was issued, unless something was forgotten since.
    pub fn remember_role(&self, ticket: Ticket, project: &str, user: &str, role: Option<Role>) {
        self.keep(ticket, project, |facts| {
            facts
                .roles
                .insert(user.to_owned(), (role, Instant::now()))
                .is_none()
        });
    }

    /// The remembered column `name` (`projects/{project}/boards/{board}/columns/{column}`), or
    /// the ticket to [`remember_column`](Self::remember_column) it by.
    pub fn column(&self, project: &str, name: &str) -> Result<Column, Ticket> {
        self.find(project, |facts| {
            facts.columns.get(name).map(|(c, at)| (c.clone(), *at))
        })
    }

    /// Keeps a column fetched after `ticket` was issued, unless something was forgotten since.
    pub fn remember_column(&self, ticket: Ticket, project: &str, column: &Column) {
        self.keep(ticket, project, |facts| {
            facts
                .columns
                .insert(column.name.clone(), (column.clone(), Instant::now()))
                .is_none()
        });
    }

    fn find<T>(
        &self,
        project: &str,
        get: impl FnOnce(&Facts) -> Option<(T, Instant)>,
    ) -> Result<T, Ticket> {
        let ticket = Ticket(self.inner.epoch.load(Ordering::Acquire));
        if !self.usable() {
            return Err(ticket);
        }
        let Ok(table) = self.inner.table.lock() else {
            return Err(ticket);
        };
        match table.projects.get(project).and_then(get) {
            Some((found, at)) if at.elapsed() < self.inner.ttl => Ok(found),
            _ => Err(ticket),
        }
    }

    /// Runs `insert` (which says whether it added an answer) unless the epoch moved since
    /// `ticket`.
    fn keep(&self, ticket: Ticket, project: &str, insert: impl FnOnce(&mut Facts) -> bool) {
        if !self.usable() {
            return;
        }
        let Ok(mut table) = self.inner.table.lock() else {
            return;
        };
        // Checked under the lock that forgetting takes too, so no event slips in between.
        if self.inner.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if table.len >= CAPACITY {
            table.projects.clear();
            table.len = 0;
        }
        if insert(table.projects.entry(project.to_owned()).or_default()) {
            table.len += 1;
        }
    }

    /// Forgets the answers about `project`.
    pub fn forget_project(&self, project: &str) {
        if let Ok(mut table) = self.inner.table.lock() {
            self.inner.epoch.fetch_add(1, Ordering::AcqRel);
            if let Some(facts) = table.projects.remove(project) {
                table.len -= facts.len();
            }
        }
    }

    /// Forgets every answer.
    pub fn forget_all(&self) {
        if let Ok(mut table) = self.inner.table.lock() {
            self.inner.epoch.fetch_add(1, Ordering::AcqRel);
            table.projects.clear();
            table.len = 0;
        }
    }

    /// How many answers are remembered.
    pub fn len(&self) -> usize {
        self.inner.table.lock().map_or(0, |table| table.len)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether answers may be served from memory now: the subscription is in place, the broker is
    /// connected, and no reconnection happened unnoticed (which forgets everything).
    fn usable(&self) -> bool {
        if !self.inner.live.load(Ordering::Acquire)
            || self.inner.nats.connection_state() != State::Connected
        {
            return false;
        }
        let connects = self
            .inner
            .nats
            .statistics()
            .connects
            .load(Ordering::Relaxed);
        if self.inner.connects.swap(connects, Ordering::AcqRel) != connects {
            self.forget_all();
        }
        true
    }

    /// Listens to the projects service's events until `stop` turns true, forgetting the project
    /// each names. Fails when the subscription cannot be made or ends, so that the service (run by
    /// a supervisor) never keeps serving from a cache nobody invalidates.
    pub async fn watch(self, mut stop: watch::Receiver<bool>) -> Result<(), WatchError> {
        let mut events = self
            .inner
            .nats
            .subscribe(SUBJECTS)
            .await
            .map_err(|e| WatchError(e.to_string()))?;
        // The broker knows the subscription once a flush came back.
        self.inner
            .nats
            .flush()
            .await
            .map_err(|e| WatchError(e.to_string()))?;
        self.forget_all();
        self.inner.live.store(true, Ordering::Release);
        let result = loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break Ok(()),
                event = events.next() => match event {
                    Some(event) => self.forget_about(&event),
                    None => break Err(WatchError("the subscription ended".to_owned())),
                },
            }
        };
        self.inner.live.store(false, Ordering::Release);
        result
    }

    fn forget_about(&self, event: &async_nats::Message) {
        let subject = event
            .headers
            .as_ref()
            .and_then(|headers| headers.get(SUBJECT_HEADER))
            .map(|value| value.as_str());
        match subject.and_then(project_of) {
            Some(project) => self.forget_project(project),
            // Organization and saga events are rare, and one naming nothing is not understood:
            // forgetting everything is the safe answer to both.
            None => self.forget_all(),
        }
    }
}

/// `projects/{project}/...` -> `{project}`.
fn project_of(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("projects/")?;
    let project = rest.split('/').next().unwrap_or_default();
    (!project.is_empty()).then_some(project)
}

/// The event subscription could not be made or ended.
#[derive(Debug, thiserror::Error)]
#[error("project events: {0}")]
pub struct WatchError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_is_the_first_segment_after_projects() {
        assert_eq!(project_of("projects/p1"), Some("p1"));
        assert_eq!(project_of("projects/p1/members/u1"), Some("p1"));
        assert_eq!(project_of("projects/p1/boards/b/columns/c"), Some("p1"));
        assert_eq!(project_of("projects/"), None);
        assert_eq!(project_of("organizations/o1"), None);
    }
}
