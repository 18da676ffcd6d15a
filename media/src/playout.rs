//! Outbound playout queue: PCM items (8 kHz, 16-bit) the bot wants to say, pulled one 20 ms
//! frame per tick by the paced sender. Items play back to back without gaps (a frame may span
//! the end of one item and the start of the next); silence when the queue is empty.

use std::collections::VecDeque;
use std::sync::Arc;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Progress reports of the playout queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// The first sample of the item went out.
    Started {
        /// Item id given at enqueue.
        id: u64,
    },
    /// The last sample of the item went out.
    Finished {
        /// Item id given at enqueue.
        id: u64,
    },
    /// The item was removed before it finished (flush or barge-in); `played_ms` of it went out
    /// (0 if it never started).
    Stopped {
        /// Item id given at enqueue.
        id: u64,
        /// Audio of the item already sent, in milliseconds.
        played_ms: u32,
    },
}

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    pcm: Arc<[i16]>,
    interruptible: bool,
    position: usize,
}

/// What is playing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NowPlaying {
    /// Item id.
    pub id: u64,
    /// Whether caller speech may cut it off.
    pub interruptible: bool,
    /// Audio of it sent so far, in milliseconds.
    pub played_ms: u32,
}

/// FIFO of items to play, with flush and progress events.
#[derive(Debug, Default)]
pub struct PlayoutQueue {
    items: VecDeque<Item>,
    events: VecDeque<PlayoutEvent>,
    /// Interruptible audio is held (silence goes out, nothing advances) while possible caller
    /// speech is being confirmed.
    held: bool,
    /// Frames the hold may still last before it ends by itself.
    hold_frames_left: u32,
}

fn samples_to_ms(samples: usize) -> u32 {
    (samples / 8).min(u32::MAX as usize) as u32
}

impl PlayoutQueue {
    /// Creates an empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an item. Empty items start and finish at the next frame.
    pub fn enqueue(&mut self, id: u64, pcm: Arc<[i16]>, interruptible: bool) {
        self.items.push_back(Item {
            id,
            pcm,
            interruptible,
            position: 0,
        });
    }

    /// Whether anything is queued or playing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of items queued, including the one playing.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The item at the head of the queue once it has started playing.
    pub fn now_playing(&self) -> Option<NowPlaying> {
        self.items
            .front()
            .filter(|item| item.position > 0)
            .map(|item| NowPlaying {
                id: item.id,
                interruptible: item.interruptible,
                played_ms: samples_to_ms(item.position),
            })
    }

    /// Holds interruptible audio for at most `max_frames` frames: until then or
    /// [`release`](Self::release), frames are silence and an interruptible item at the head
    /// does not advance (a non-interruptible one plays on).
    pub fn hold(&mut self, max_frames: u32) {
        self.held = true;
        self.hold_frames_left = max_frames;
    }

    /// Ends a [`hold`](Self::hold): playback continues where it stopped.
    pub fn release(&mut self) {
        self.held = false;
    }

    /// Whether interruptible audio is held.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Fills `out` (one frame) from the queue, silence-padding when it runs dry. Returns true if
    /// any queued audio went into the frame.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        if self.held && self.hold_frames_left == 0 {
            self.held = false;
        }
        if self.held && self.items.front().is_some_and(|item| item.interruptible) {
            self.hold_frames_left -= 1;
            out.fill(0);
            return false;
        }
        let mut filled = 0;
        while filled < out.len() {
            let Some(item) = self.items.front_mut() else {
                break;
            };
            if item.position == 0 {
                self.events.push_back(PlayoutEvent::Started { id: item.id });
            }
            let take = (item.pcm.len() - item.position).min(out.len() - filled);
            out[filled..filled + take]
                .copy_from_slice(&item.pcm[item.position..item.position + take]);
            filled += take;
            item.position += take;
            if item.position >= item.pcm.len() {
                let id = item.id;
                self.items.pop_front();
                self.events.push_back(PlayoutEvent::Finished { id });
            }
        }
        let had_audio = filled > 0;
        out[filled..].fill(0);
        had_audio
    }

    /// Removes the item `id` (wherever it is in the queue), or everything when `id` is `None`,
    /// reporting `Stopped` for each removed item. Returns how many were removed.
    pub fn flush(&mut self, id: Option<u64>) -> usize {
        self.remove_where(|item| id.is_none_or(|id| item.id == id))
    }

    /// Removes every interruptible item (barge-in); non-interruptible ones stay queued.
    pub fn flush_interruptible(&mut self) -> usize {
        self.remove_where(|item| item.interruptible)
    }

    fn remove_where(&mut self, mut remove: impl FnMut(&Item) -> bool) -> usize {
        let mut removed = 0;
        let events = &mut self.events;
        self.items.retain(|item| {
            if remove(item) {
                events.push_back(PlayoutEvent::Stopped {
                    id: item.id,
                    played_ms: samples_to_ms(item.position),
                });
                removed += 1;
                false
            } else {
                true
            }
        });
        removed
    }

    /// Next progress event, oldest first.
    pub fn poll_event(&mut self) -> Option<PlayoutEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(value: i16, len: usize) -> Arc<[i16]> {
        vec![value; len].into()
    }

    fn events(q: &mut PlayoutQueue) -> Vec<PlayoutEvent> {
        std::iter::from_fn(|| q.poll_event()).collect()
    }

    #[test]
    fn plays_items_in_order_back_to_back() {
        let mut q = PlayoutQueue::new();
        q.enqueue(1, pcm(100, 200), true);
        q.enqueue(2, pcm(200, 100), false);
        let mut frame = [7i16; FRAME_SAMPLES];
        assert!(q.next_frame(&mut frame));
        assert!(frame.iter().all(|&s| s == 100));
        assert_eq!(events(&mut q), vec![PlayoutEvent::Started { id: 1 }]);
        assert_eq!(
            q.now_playing(),
            Some(NowPlaying {
                id: 1,
                interruptible: true,
                played_ms: 20
            })
        );
        // Second frame: 40 samples of item 1, then 100 of item 2, then 20 of silence.
        assert!(q.next_frame(&mut frame));
        assert!(frame[..40].iter().all(|&s| s == 100));
        assert!(frame[40..140].iter().all(|&s| s == 200));
        assert!(frame[140..].iter().all(|&s| s == 0));
        assert_eq!(
            events(&mut q),
            vec![
                PlayoutEvent::Finished { id: 1 },
                PlayoutEvent::Started { id: 2 },
                PlayoutEvent::Finished { id: 2 }
            ]
        );
        assert!(!q.next_frame(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
        assert!(q.is_empty());
        assert_eq!(q.now_playing(), None);
    }

    #[test]
    fn flush_one_or_all_reports_stopped() {
        let mut q = PlayoutQueue::new();
        q.enqueue(1, pcm(1, 800), true);
        q.enqueue(2, pcm(2, 800), true);
        q.enqueue(3, pcm(3, 800), false);
        let mut frame = [0i16; FRAME_SAMPLES];
        q.next_frame(&mut frame);
        q.next_frame(&mut frame);
        events(&mut q);
        assert_eq!(q.flush(Some(2)), 1);
        assert_eq!(
            events(&mut q),
            vec![PlayoutEvent::Stopped {
                id: 2,
                played_ms: 0
            }]
        );
        assert_eq!(q.flush(Some(42)), 0);
        assert_eq!(q.flush(None), 2);
        assert_eq!(
            events(&mut q),
            vec![
                PlayoutEvent::Stopped {
                    id: 1,
                    played_ms: 40
                },
                PlayoutEvent::Stopped {
                    id: 3,
                    played_ms: 0
                }
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn barge_in_flush_keeps_non_interruptible_items() {
        let mut q = PlayoutQueue::new();
        q.enqueue(1, pcm(1, 800), true);
        q.enqueue(2, pcm(2, 800), false);
        q.enqueue(3, pcm(3, 800), true);
        let mut frame = [0i16; FRAME_SAMPLES];
        q.next_frame(&mut frame);
        events(&mut q);
        assert_eq!(q.flush_interruptible(), 2);
        assert_eq!(
            events(&mut q),
            vec![
                PlayoutEvent::Stopped {
                    id: 1,
                    played_ms: 20
                },
                PlayoutEvent::Stopped {
                    id: 3,
                    played_ms: 0
                }
            ]
        );
        q.next_frame(&mut frame);
        assert!(frame.iter().all(|&s| s == 2));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn empty_item_starts_and_finishes() {
        let mut q = PlayoutQueue::new();
        q.enqueue(9, pcm(0, 0), true);
        let mut frame = [0i16; FRAME_SAMPLES];
        assert!(!q.next_frame(&mut frame));
        assert_eq!(
            events(&mut q),
            vec![
                PlayoutEvent::Started { id: 9 },
                PlayoutEvent::Finished { id: 9 }
            ]
        );
    }
}
