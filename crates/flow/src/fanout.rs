//! The task behind every fan-out stage.

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::batch::{Batch, Shared};
use std::sync::Arc;

use crate::edge::{EdgeTx, Msg, edge, unbox};
use crate::{Flow, FlowConfig, FlowError};

/// The most outputs a fan-out stage (copier, splitter, sharder, parallel
/// reduce) may have: each is an edge and a task's buffer.
pub const MAX_OUTPUTS: usize = 1 << 16;

/// Checks a stage's output count before anything is allocated for it.
pub(crate) fn check_outputs(what: &'static str, n: usize) -> Result<(), FlowError> {
    if n == 0 || n > MAX_OUTPUTS {
        return Err(FlowError::invalid(
            what,
            n,
            format!("1 to {MAX_OUTPUTS} outputs"),
        ));
    }
    Ok(())
}

/// Where a fan-out stage's routing put a batch.
pub(crate) enum Routed<T> {
    /// Into the buffers, one per output.
    Buffers,
    /// The whole batch to every output, shared: each output's reader takes
    /// the items apart (the last one without a copy).
    Shared(Arc<dyn Shared<T>>),
}

/// Spawns a task that routes each input batch into `n` output edges:
/// `route` fills one buffer per output from a batch, or hands the batch
/// back to go to every output; the buffers are sent in output order (so
/// the slowest output paces the stage). A failure, of the input or of
/// `route`, goes to every output. Outputs whose reader is gone are
/// skipped; the task stops when all are gone.
pub(crate) fn fan_out<T, R>(
    input: BoxStream<'static, Msg<T>>,
    config: FlowConfig,
    n: usize,
    mut route: R,
) -> Vec<Flow<T>>
where
    T: Send + 'static,
    R: FnMut(Batch<T>, &mut [Vec<T>]) -> Result<Routed<T>, FlowError> + Send + 'static,
{
    let (txs, rxs): (Vec<EdgeTx<T>>, Vec<_>) = (0..n).map(|_| edge(config)).unzip();
    tokio::spawn(async move {
        let mut input = input;
        let mut buffers: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
        while let Some(m) = input.next().await {
            let open = match unbox(m).and_then(|batch| route(batch, &mut buffers)) {
                Ok(Routed::Buffers) => send_buffers(&txs, &mut buffers).await,
                Ok(Routed::Shared(batch)) => send_shared(&txs, batch).await,
                Err(e) => {
                    for tx in &txs {
                        tx.fail(Box::new(e.clone()));
                    }
                    return;
                }
            };
            if !open {
                return;
            }
        }
    });
    rxs.into_iter()
        .map(|rx| Flow::from_edge(rx, config))
        .collect()
}

/// Sends each output its buffer; `false` once every output is gone.
async fn send_buffers<T>(txs: &[EdgeTx<T>], buffers: &mut [Vec<T>]) -> bool {
    let mut open = false;
    for (tx, buf) in txs.iter().zip(buffers.iter_mut()) {
        if tx.is_closed() {
            buf.clear();
            continue;
        }
        open = true;
        if !buf.is_empty() {
            open |= tx.send(std::mem::take(buf)).await;
        }
    }
    open
}

/// Sends one batch to every open output, shared; `false` once every
/// output is gone.
async fn send_shared<T>(txs: &[EdgeTx<T>], batch: Arc<dyn Shared<T>>) -> bool {
    let mut open = false;
    let mut batch = Some(batch);
    for (i, tx) in txs.iter().enumerate() {
        if tx.is_closed() {
            continue;
        }
        // The last output gets the stage's own hold, so that the readers,
        // not the stage, let go of the batch last.
        let hold = if i + 1 == txs.len() {
            batch.take()
        } else {
            batch.clone()
        };
        if let Some(hold) = hold {
            open |= tx.send_batch(Batch::Shared(hold)).await;
        }
    }
    open
}
