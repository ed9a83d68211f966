//! The root: fans a plan out over the topology and gathers the answers.

use std::time::Duration;

use tokio::sync::Semaphore;
use weft_core::{Combine, Health};

use crate::budget::Budget;
use crate::call::{Call, Prepared};
use crate::hedging::Hedger;
use crate::replicas::Replicas;
use crate::{CallOptions, Gathered, Leaf, Plan, ScatterConfig, ScatterError, Topology};

/// A scatter/gather root over a topology of shards × replicas.
///
/// Holds what outlives a call: replica health and load, the latency window
/// that sets the hedge delay, and the extra-load budget. Share it (`&self`
/// or `Arc`) between concurrent calls.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft_core::Count;
/// use weft_scatter::{LeafContext, Plan, Scatter, ScatterConfig, Topology};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let leaf = |query: &'static str, cx: LeafContext| async move {
///     Ok::<_, std::io::Error>(format!("{query} from shard {}", cx.shard.get()))
/// };
/// let root = Scatter::new(Topology::sharded(4, 2)?, leaf, ScatterConfig::new(Duration::from_millis(100)))?;
/// let gathered = root.gather(Plan::broadcast(4, "q"), &Count::new()).await?;
/// assert_eq!(gathered.require_complete()?, 4);
/// # Ok::<(), weft_scatter::ScatterError>(())
/// # }).unwrap();
/// ```
pub struct Scatter<L> {
    pub(crate) leaf: L,
    pub(crate) topology: Topology,
    pub(crate) config: ScatterConfig,
    pub(crate) replicas: Replicas,
    pub(crate) hedger: Hedger,
    pub(crate) budget: Budget,
    pub(crate) retry_budget: Budget,
    pub(crate) slots: Option<Semaphore>,
}

impl<L> std::fmt::Debug for Scatter<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scatter")
            .field("topology", &self.topology)
            .field("config", &self.config)
            .field("replicas", &self.replicas)
            .field("hedger", &self.hedger)
            .finish_non_exhaustive()
    }
}

impl<L> Scatter<L> {
    /// A root over `topology` calling `leaf`.
    ///
    /// # Errors
    ///
    /// A [`ScatterError`] naming the first invalid setting of `config`.
    pub fn new(topology: Topology, leaf: L, config: ScatterConfig) -> Result<Self, ScatterError> {
        config.validate(&topology)?;
        Ok(Scatter {
            replicas: Replicas::new(
                topology.replica_count(),
                config.health,
                config.probation,
                config.seed,
            ),
            hedger: Hedger::new(
                config.hedging,
                config.budget_percentile(),
                config.early_percentile(),
                config.last_percentile(),
            ),
            budget: Budget::new(config.max_extra_load, config.budget_window),
            retry_budget: config
                .retry_budget
                .tokens(topology.replica_count(), config.health.down_after()),
            slots: config.max_in_flight.map(Semaphore::new),
            leaf,
            topology,
            config,
        })
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// A replica's current health.
    pub fn replica_health(&self, replica: usize) -> Health {
        self.replicas.health(replica)
    }

    /// The hedge delay a call starting now would use.
    ///
    /// Recomputed from the latency window after every `window / 16` new
    /// samples (a percentile reads the whole histogram), cached in between.
    pub fn hedge_delay(&self) -> Duration {
        self.hedger.delay()
    }

    /// Sends `plan` to its shards and combines the answers with `combine`,
    /// under the root's policy and deadline.
    ///
    /// # Errors
    ///
    /// Only for a plan that names a shard outside the topology or one shard
    /// twice. Shards that fail or time out are in the report, not errors:
    /// see [`Gathered::require_complete`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels (drops) every leaf call in flight.
    pub async fn gather<Req, C>(
        &self,
        plan: Plan<Req>,
        combine: &C,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
    {
        self.gather_resolved(plan, combine, CallOptions::default(), first)
            .await
    }

    /// [`gather`](Scatter::gather) with per-call options.
    ///
    /// # Errors
    ///
    /// As [`gather`](Scatter::gather), and [`ScatterError::ZeroDuration`] for
    /// a zero deadline.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every leaf call in flight.
    pub async fn gather_with<Req, C>(
        &self,
        plan: Plan<Req>,
        combine: &C,
        options: CallOptions,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
    {
        self.gather_resolved(plan, combine, options, first).await
    }

    /// [`gather_with`](Scatter::gather_with) with a resolver for
    /// [`Gather::Quorum`](crate::Gather::Quorum): it receives the `q` answers of a shard (in arrival
    /// order) and returns the one to combine, e.g. the highest version when
    /// replicas disagree. Other policies never call it.
    ///
    /// # Errors
    ///
    /// As [`gather_with`](Scatter::gather_with).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels every leaf call in flight.
    pub async fn gather_resolved<Req, C, R>(
        &self,
        plan: Plan<Req>,
        combine: &C,
        options: CallOptions,
        resolve: R,
    ) -> Result<Gathered<C::Output>, ScatterError>
    where
        L: Leaf<Req, Response = C::Input>,
        Req: Clone,
        C: Combine,
        R: Fn(Vec<C::Input>) -> C::Input,
    {
        let prepared = Prepared::new(self, plan, &options)?;
        let slots = prepared.slots();
        let call = Call::new(self, prepared, &slots, combine, &options, resolve);
        Ok(call.run().await)
    }
}

/// The quorum resolver used when none is given: the first answer.
fn first<T>(answers: Vec<T>) -> T {
    // invariant: a quorum is at least 1, so `answers` is never empty.
    answers
        .into_iter()
        .next()
        .expect("quorum answers are never empty")
}
