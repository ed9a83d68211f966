//! The task behind every fan-out stage.

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::batch::Batch;
use crate::edge::{EdgeTx, Msg, edge, unbox};
use crate::{Flow, FlowConfig, FlowError};

/// The most outputs a fan-out stage (copier, splitter, sharder, parallel
/// reduce) may have: each is an edge and a task's buffer (for the copier,
/// a place in its line of batches).
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

/// Spawns a task that routes each input batch into `n` output edges:
/// `route` fills one buffer per output from a batch; the buffers are sent
/// in output order (so the slowest output paces the stage). A failure, of
/// the input or of `route`, goes to every output. Outputs whose reader is
/// gone are skipped; the task stops when all are gone.
pub(crate) fn fan_out<T, R>(
    input: BoxStream<'static, Msg<T>>,
    config: FlowConfig,
    n: usize,
    mut route: R,
) -> Vec<Flow<T>>
where
    T: Send + 'static,
    R: FnMut(Batch<T>, &mut [Vec<T>]) -> Result<(), FlowError> + Send + 'static,
{
    let (txs, rxs): (Vec<EdgeTx<T>>, Vec<_>) = (0..n).map(|_| edge(config)).unzip();
    tokio::spawn(async move {
        let mut input = input;
        let mut buffers: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
        while let Some(m) = input.next().await {
            let open = match unbox(m).and_then(|batch| route(batch, &mut buffers)) {
                Ok(()) => send_buffers(&txs, &mut buffers).await,
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
