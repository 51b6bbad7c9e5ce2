//! Per-conversation lanes for one socket's frames: the frames of one conversation are handled one
//! after another, in the order they were read; frames of different conversations at the same
//! time. An agent talking in 50 chats thus has up to 50 appends waiting for the store's next group
//! commit instead of one, and a slow conversation holds up only its own frames.
//!
//! A lane is the task of its newest frame, which waits for the one before it: nothing runs when a
//! conversation is quiet, and a finished lane is forgotten. The work in flight on a socket is
//! bounded (`limits.agent_frames_in_flight`, 64 by default: why, there): beyond it, handing a
//! frame over waits, the socket reads no further, and the client is slowed by TCP's own flow
//! control — nothing is dropped or refused. A bound of 1 handles one frame at a time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// One socket's lanes; owned by its frame handler.
pub(super) struct Lanes {
    room: Arc<Semaphore>,
    /// The room's permits when nothing is in flight.
    bound: usize,
    /// The newest frame's task of each conversation with frames in flight (and of some that
    /// finished since the last look).
    tails: HashMap<String, JoinHandle<()>>,
}

impl Lanes {
    /// Lanes with at most `bound` frames in flight (at least 1).
    pub(super) fn new(bound: usize) -> Self {
        let bound = bound.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            room: Arc::new(Semaphore::new(bound)),
            bound,
            tails: HashMap::new(),
        }
    }

    /// Hands `work` to `lane`: it runs once the lane's earlier work is done. Returns as soon as
    /// it is handed over, or waits while the bound's worth of frames are in flight.
    pub(super) async fn run(
        &mut self,
        lane: &str,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        let permit = self
            .room
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // Finished lanes go: at most `bound` are unfinished, so this stays small.
        self.tails.retain(|_, task| !task.is_finished());
        let before = self.tails.remove(lane);
        let task = tokio::spawn(async move {
            if let Some(before) = before {
                if let Err(e) = before.await {
                    tracing::error!("handling a frame failed: {e}");
                }
            }
            work.await;
            drop(permit);
        });
        self.tails.insert(lane.to_owned(), task);
    }

    /// Waits until every frame handed over so far is handled: for frames whose effect reaches
    /// beyond one conversation (a claim that counts the agent's chats, a ping that promises
    /// everything before it is done).
    pub(super) async fn settle(&mut self) {
        if self.room.available_permits() == self.bound {
            self.tails.clear();
            return;
        }
        let all = self
            .room
            .acquire_many(self.bound as u32)
            .await
            .expect("the semaphore is never closed");
        drop(all);
        self.tails.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    const IN_FLIGHT: usize = 64;

    #[tokio::test]
    async fn one_lane_keeps_its_order_while_another_goes_ahead() {
        let mut lanes = Lanes::new(IN_FLIGHT);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let s = seen.clone();
        lanes
            .run("a", async move {
                let _ = gate.await;
                s.lock().unwrap().push("a1");
            })
            .await;
        let s = seen.clone();
        lanes
            .run("a", async move { s.lock().unwrap().push("a2") })
            .await;
        let s = seen.clone();
        lanes
            .run("b", async move { s.lock().unwrap().push("b1") })
            .await;
        // b is not held up by a's first frame.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !seen.lock().unwrap().contains(&"b1") {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the other lane runs");
        assert_eq!(*seen.lock().unwrap(), vec!["b1"]);
        open.send(()).unwrap();
        lanes.settle().await;
        assert_eq!(*seen.lock().unwrap(), vec!["b1", "a1", "a2"]);
    }

    #[tokio::test]
    async fn beyond_the_bound_handing_over_waits() {
        let mut lanes = Lanes::new(IN_FLIGHT);
        let gate = Arc::new(Semaphore::new(0));
        for i in 0..IN_FLIGHT {
            let g = gate.clone();
            lanes
                .run(&format!("c{i}"), async move {
                    let _ = g.acquire().await;
                })
                .await;
        }
        let one_more = lanes.run("c0", async {});
        tokio::pin!(one_more);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut one_more)
                .await
                .is_err(),
            "a frame beyond the bound waits"
        );
        gate.add_permits(IN_FLIGHT);
        tokio::time::timeout(Duration::from_secs(5), one_more)
            .await
            .expect("it is handed over once there is room");
    }
}
