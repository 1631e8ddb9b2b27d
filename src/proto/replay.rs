//! Sliding anti-replay window over packet numbers (RFC 6479 style bitmap).
//!
//! `check` is a cheap pre-filter run before the AEAD; `mark` records a packet number only
//! after its datagram authenticated, so forged packets cannot advance or poison the window.
//! Packet numbers more than about [`WINDOW`] behind the highest seen are rejected as too old
//! (the edge is word-aligned: between `WINDOW - 63` and `WINDOW` behind).

/// Packet numbers remembered behind the highest one seen.
pub const WINDOW: u64 = 8192;
const WORDS: usize = (WINDOW / 64) as usize;

/// Verdict of [`ReplayWindow::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Never seen and inside or ahead of the window.
    Fresh,
    /// Already seen.
    Replayed,
    /// Too far behind the newest packet to tell.
    TooOld,
}

/// The replay state of one session.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    highest: Option<u64>,
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            highest: None,
            bits: [0; WORDS],
        }
    }
}

fn slot(pn: u64) -> (usize, u64) {
    let word = usize::try_from((pn / 64) % WORDS as u64).unwrap_or(0);
    (word, 1u64 << (pn % 64))
}

impl ReplayWindow {
    /// Whether `pn` may be accepted; changes nothing.
    pub fn check(&self, pn: u64) -> Freshness {
        let Some(highest) = self.highest else {
            return Freshness::Fresh;
        };
        if pn > highest {
            return Freshness::Fresh;
        }
        // Whole words: the bitmap holds WORDS words and the newest one is partly filled, so a
        // word WORDS behind the newest shares its slot and must count as too old.
        if highest / 64 - pn / 64 >= WORDS as u64 {
            return Freshness::TooOld;
        }
        let (word, bit) = slot(pn);
        match self.bits.get(word) {
            Some(w) if w & bit != 0 => Freshness::Replayed,
            _ => Freshness::Fresh,
        }
    }

    /// Records `pn` as seen. Call only after the datagram authenticated and `check` was Fresh.
    pub fn mark(&mut self, pn: u64) {
        match self.highest {
            Some(highest) if pn <= highest => {}
            Some(highest) => {
                // Clear the words the window slides over.
                let old_word = highest / 64;
                let new_word = pn / 64;
                let steps = (new_word - old_word).min(WORDS as u64);
                for i in 1..=steps {
                    let (w, _) = slot((old_word + i) * 64);
                    if let Some(word) = self.bits.get_mut(w) {
                        *word = 0;
                    }
                }
                self.highest = Some(pn);
            }
            None => self.highest = Some(pn),
        }
        let (word, bit) = slot(pn);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_replays_in_and_out_of_order() {
        let mut w = ReplayWindow::default();
        for pn in [5, 3, 9, 4, 100] {
            assert_eq!(w.check(pn), Freshness::Fresh, "{pn}");
            w.mark(pn);
            assert_eq!(w.check(pn), Freshness::Replayed, "{pn}");
        }
        assert_eq!(w.check(6), Freshness::Fresh);
        assert_eq!(w.check(3), Freshness::Replayed);
    }

    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::default();
        w.mark(0);
        w.mark(WINDOW);
        assert_eq!(w.check(0), Freshness::TooOld);
        assert_eq!(w.check(63), Freshness::TooOld);
        assert_eq!(w.check(64), Freshness::Fresh);
        w.mark(64);
        assert_eq!(w.check(64), Freshness::Replayed);
        // A jump far ahead forgets everything behind the window.
        w.mark(10 * WINDOW + 5);
        assert_eq!(w.check(10 * WINDOW + 5 - 64), Freshness::Fresh);
        assert_eq!(w.check(WINDOW), Freshness::TooOld);
    }

    #[test]
    fn sliding_clears_reused_words() {
        let mut w = ReplayWindow::default();
        for pn in 0..WINDOW {
            w.mark(pn);
        }
        // pn WINDOW + 64 reuses the word that held 64..128; those are now too old, and the
        // new ones in that word are fresh.
        w.mark(WINDOW + 64);
        assert_eq!(w.check(WINDOW + 65), Freshness::Fresh);
        assert_eq!(w.check(WINDOW + 64), Freshness::Replayed);
        assert_eq!(w.check(WINDOW - 1), Freshness::Replayed);
    }
}
