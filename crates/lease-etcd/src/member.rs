//! The cluster's members and failover between them: a request goes to the
//! member that answered last and moves on when it cannot reach it.

use std::sync::atomic::Ordering;

use tonic::Status;
use tonic::transport::Channel;

use crate::proto::kv_client::KvClient;
use crate::proto::lease_client::LeaseClient;
use crate::proto::watch_client::WatchClient;
use crate::{CONNECT_ATTEMPTS, EtcdStore, REQUEST_TIMEOUT};

/// The gRPC clients of one member, over one HTTP/2 channel.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) kv: KvClient<Channel>,
    pub(crate) lease: LeaseClient<Channel>,
    pub(crate) watch: WatchClient<Channel>,
}

impl Member {
    pub(crate) fn new(channel: Channel) -> Self {
        Member {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
        }
    }
}

impl EtcdStore {
    /// The member that answered last.
    pub(crate) fn member(&self) -> Member {
        self.members[self.current.load(Ordering::Relaxed) % self.members.len()].clone()
    }

    /// Runs `op` on the member that answered last and, while a request
    /// fails without reaching its member (or, for a read, fails at all),
    /// on the next ones. Each attempt is bounded by the request timeout,
    /// streams included.
    pub(crate) async fn on_members<T, F, Fut>(&self, read: bool, mut op: F) -> Result<T, Status>
    where
        F: FnMut(Member) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let tries = self.members.len().max(CONNECT_ATTEMPTS);
        let mut last = None;
        for i in 0..tries {
            let idx = (start + i) % self.members.len();
            let attempt = tokio::time::timeout(REQUEST_TIMEOUT, op(self.members[idx].clone()));
            let result = attempt.await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer within {REQUEST_TIMEOUT:?}"
                )))
            });
            match result {
                Ok(v) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if read || EtcdStore::not_sent(&e) => last = Some(e),
                Err(e) => {
                    // Next time, start with another member.
                    self.current.store(idx + 1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.current.store(start + 1, Ordering::Relaxed);
        // invariant: the loop ran at least once and only continues on error.
        Err(last.unwrap_or_else(|| Status::internal("no attempt")))
    }
}
