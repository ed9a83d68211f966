//! `CasStore` over etcd.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use weft_lease::{CasStore, Entry, Limits, PrefixEvent, StoreError, Swap, Version, WatchEvent};

use crate::EtcdStore;
use crate::ops::{entry, prefix_end, revision};
use crate::proto::compare::TargetUnion;
use crate::proto::range_request::{SortOrder, SortTarget};
use crate::proto::*;

#[async_trait::async_trait]
impl CasStore for EtcdStore {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.limits.check(key, None, None)?;
        Ok(self.get_raw(&self.full(key)).await?.0.map(entry))
    }

    async fn create(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<Swap, StoreError> {
        self.put_if(key, value, ttl, TargetUnion::CreateRevision(0))
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Version,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.put_if(
            key,
            value,
            ttl,
            TargetUnion::ModRevision(revision(expected)),
        )
        .await
    }

    async fn delete(&self, key: &str, expected: Version) -> Result<Swap, StoreError> {
        self.limits.check(key, None, None)?;
        let delete = request_op::Request::RequestDeleteRange(DeleteRangeRequest {
            key: self.full(key).into_bytes(),
            range_end: Vec::new(),
        });
        self.txn(key, TargetUnion::ModRevision(revision(expected)), delete)
            .await
    }

    async fn refresh(
        &self,
        key: &str,
        expected: Version,
        ttl: Duration,
    ) -> Result<Swap, StoreError> {
        self.limits.check(key, None, Some(ttl))?;
        let full = self.full(key);
        let (kv, _) = self.get_raw(&full).await?;
        let Some(kv) = kv else {
            return Ok(Swap::Conflict { current: None });
        };
        if kv.mod_revision.unsigned_abs() != expected.0 {
            return Ok(Swap::Conflict {
                current: Some(entry(kv)),
            });
        }
        let lease = kv.lease;
        // One keep-alive resets the lease to its granted TTL (the TTL the
        // key was written with). The request stream ends after it: etcd
        // answers the keep-alive, then sees the end and closes the call.
        let alive = self
            .on_members(false, |mut m| async move {
                let once = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
                let mut answers = m.lease.lease_keep_alive(once).await?.into_inner();
                answers.message().await
            })
            .await
            .map_err(|e| self.write_error(key, &e))?;
        if alive.is_none_or(|r| r.ttl <= 0) {
            return Ok(Swap::Conflict { current: None });
        }
        // The keep-alive counts only if the key still has that lease and
        // version now: then it expires no earlier than a TTL after the
        // keep-alive was sent.
        let (now, _) = self.get_raw(&full).await?;
        match now {
            Some(kv) if kv.mod_revision.unsigned_abs() == expected.0 && kv.lease == lease => {
                Ok(Swap::Done { version: expected })
            }
            other => Ok(Swap::Conflict {
                current: other.map(entry),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Entry)>, StoreError> {
        let full = self.full(prefix).into_bytes();
        let strip = self.full("");
        let request = RangeRequest {
            range_end: prefix_end(&full),
            // An empty key cannot start a range; "\0" is the lowest key.
            key: if full.is_empty() { vec![0] } else { full },
            sort_order: SortOrder::Ascend as i32,
            sort_target: SortTarget::Create as i32,
            ..RangeRequest::default()
        };
        let resp = self.range(request).await?;
        Ok(resp
            .kvs
            .into_iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(&kv.key)
                    .ok()?
                    .strip_prefix(&strip)?
                    .to_string();
                Some((key, entry(kv)))
            })
            .collect())
    }

    fn watch(&self, key: &str) -> Option<BoxStream<'static, WatchEvent>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let store = self.clone();
        let full = self.full(key);
        // Read the key and watch from the revision read, so no change after
        // this call is missed; a key already gone reads as a deletion.
        let task = tokio::spawn(async move {
            let Ok((kv, revision)) = store.get_raw(&full).await else {
                return;
            };
            if kv.is_none()
                && tx
                    .send(WatchEvent::Deleted {
                        version: Version(revision.unsigned_abs()),
                    })
                    .is_err()
            {
                return;
            }
            let create = WatchCreateRequest {
                key: full.into_bytes(),
                range_end: Vec::new(),
                start_revision: revision + 1,
            };
            store
                .run_watch(create, |seen| match seen {
                    Seen::Created => true,
                    Seen::Event(_, event) => tx.send(event).is_ok(),
                })
                .await;
        });
        Some(stream_of(rx, task))
    }

    fn watch_prefix(&self, prefix: &str) -> Option<BoxStream<'static, PrefixEvent>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let store = self.clone();
        let full = self.full(prefix).into_bytes();
        let strip = self.full("");
        // From "now" as etcd creates the watch: its answer that the watch
        // is created comes before any change after that moment.
        let create = WatchCreateRequest {
            range_end: prefix_end(&full),
            key: if full.is_empty() { vec![0] } else { full },
            start_revision: 0,
        };
        let task = tokio::spawn(async move {
            store
                .run_watch(create, |seen| match seen {
                    Seen::Created => tx.send(PrefixEvent::Watching).is_ok(),
                    Seen::Event(key, event) => {
                        let Some(key) = std::str::from_utf8(&key)
                            .ok()
                            .and_then(|k| k.strip_prefix(&strip))
                        else {
                            return true;
                        };
                        tx.send(PrefixEvent::Changed {
                            key: key.to_string(),
                            event,
                        })
                        .is_ok()
                    }
                })
                .await;
        });
        Some(stream_of(rx, task))
    }
}

/// What one etcd watch saw.
enum Seen {
    /// etcd created the watch.
    Created,
    /// A change of a key (its full name).
    Event(Vec<u8>, WatchEvent),
}

impl EtcdStore {
    /// Runs one etcd watch, handing what it sees to `on` until `on` says
    /// stop (`false`), etcd cancels it or the connection ends.
    async fn run_watch(&self, create: WatchCreateRequest, mut on: impl FnMut(Seen) -> bool) {
        let request = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
        };
        // The request side stays open: etcd ends a watch whose client
        // half-closes.
        let requests = futures::stream::iter([request]).chain(futures::stream::pending());
        let mut m = self.member();
        let Ok(answers) = m.watch.watch(requests).await else {
            return;
        };
        let mut answers = answers.into_inner();
        while let Ok(Some(resp)) = answers.message().await {
            if resp.canceled {
                return;
            }
            if resp.created && !on(Seen::Created) {
                return;
            }
            for e in resp.events {
                let Some(kv) = e.kv else { continue };
                let key = kv.key.clone();
                let event = match event::EventType::try_from(e.r#type) {
                    Ok(event::EventType::Put) => WatchEvent::Put(entry(kv)),
                    Ok(event::EventType::Delete) => WatchEvent::Deleted {
                        version: Version(kv.mod_revision.unsigned_abs()),
                    },
                    Err(_) => continue,
                };
                if !on(Seen::Event(key, event)) {
                    return;
                }
            }
        }
    }
}

/// The receiving end of a watch's task, which stops with the stream.
fn stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    task: tokio::task::JoinHandle<()>,
) -> BoxStream<'static, T> {
    let guard = AbortOnDrop(task);
    Box::pin(futures::stream::unfold(
        (rx, guard),
        |(mut rx, guard)| async move { rx.recv().await.map(|e| (e, (rx, guard))) },
    ))
}

/// Stops the watch's task when the stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
