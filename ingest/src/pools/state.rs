//! One pool's holds: which live session holds which number. Pure state (no
//! IO, time passed in), model- and property-tested; the in-process store
//! keeps one per pool. The handler publishes every assignment and renewal,
//! and `restore` replays them after a restart so no held number is handed to
//! someone else.
//!
//! Rules: the same live session always gets the same number; a number is
//! held `hold` after the session's last activity; no number is live in two
//! sessions unless the pool is exhausted — then the least recently used
//! number is reused and the assignment is marked shared.

use std::collections::HashMap;

use super::Assignment;

#[derive(Debug, Default)]
struct Holder {
    session: String,
    expires_at: i64,
}

#[derive(Debug)]
struct NumberState {
    number: String,
    holders: Vec<Holder>,
    /// When any session was last given or renewed this number: (time, use
    /// sequence), so uses within one millisecond still have an order.
    last_used: (i64, u64),
}

#[derive(Debug)]
pub struct PoolState {
    numbers: Vec<NumberState>,
    by_session: HashMap<String, usize>,
    /// Counts uses, to order them within a millisecond.
    uses: u64,
    /// Latest use time seen: request times are taken before the pool lock,
    /// so a later use may carry an earlier time; stamps never go back.
    latest: i64,
    pub exhausted_total: u64,
}

impl PoolState {
    pub fn new(numbers: &[String]) -> PoolState {
        PoolState {
            numbers: numbers.iter().map(|n| NumberState { number: n.clone(), holders: Vec::new(), last_used: (i64::MIN, 0) }).collect(),
            by_session: HashMap::new(),
            uses: 0,
            latest: i64::MIN,
            exhausted_total: 0,
        }
    }

    /// Keeps holds on numbers still in the (reloaded) pool and adds new numbers.
    pub fn reconfigure(&mut self, numbers: &[String]) {
        let mut old: HashMap<String, NumberState> = self.numbers.drain(..).map(|n| (n.number.clone(), n)).collect();
        self.numbers = numbers
            .iter()
            .map(|n| old.remove(n).unwrap_or(NumberState { number: n.clone(), holders: Vec::new(), last_used: (i64::MIN, 0) }))
            .collect();
        self.reindex();
    }

    fn reindex(&mut self) {
        self.by_session.clear();
        for (i, n) in self.numbers.iter().enumerate() {
            for h in &n.holders {
                self.by_session.insert(h.session.clone(), i);
            }
        }
    }

    fn expire(&mut self, now: i64) {
        let mut dropped = Vec::new();
        for n in &mut self.numbers {
            n.holders.retain(|h| {
                let live = h.expires_at > now;
                if !live {
                    dropped.push(h.session.clone());
                }
                live
            });
        }
        for s in dropped {
            self.by_session.remove(&s);
        }
    }

    fn stamp(&mut self, now: i64) -> (i64, u64) {
        self.latest = self.latest.max(now);
        self.uses += 1;
        (self.latest, self.uses)
    }

    /// Gives `session` its number (renewing an existing hold).
    pub fn assign(&mut self, session: &str, now: i64, hold_ms: i64) -> Assignment {
        self.expire(now);
        let expires_at = now + hold_ms;
        let stamp = self.stamp(now);
        if let Some(&i) = self.by_session.get(session) {
            let n = &mut self.numbers[i];
            if let Some(h) = n.holders.iter_mut().find(|h| h.session == session) {
                h.expires_at = expires_at;
            }
            n.last_used = stamp;
            return Assignment { number: n.number.clone(), expires_at, shared: n.holders.len() > 1, renewed: true };
        }
        // A free number, least recently used first, so a just-released number
        // is not immediately given to a new visitor (late calls still reach the old one).
        let free = self.numbers.iter().enumerate().filter(|(_, n)| n.holders.is_empty()).min_by_key(|(_, n)| n.last_used).map(|(i, _)| i);
        let (i, shared) = match free {
            Some(i) => (i, false),
            None => {
                self.exhausted_total += 1;
                let lru = self.numbers.iter().enumerate().min_by_key(|(_, n)| n.last_used).map(|(i, _)| i).unwrap_or(0);
                (lru, true)
            }
        };
        let n = &mut self.numbers[i];
        n.holders.push(Holder { session: session.to_owned(), expires_at });
        n.last_used = stamp;
        self.by_session.insert(session.to_owned(), i);
        Assignment { number: n.number.clone(), expires_at, shared, renewed: false }
    }

    /// Extends an existing hold (the session sent an event); `None` if it holds nothing.
    pub fn touch(&mut self, session: &str, now: i64, hold_ms: i64) -> Option<Assignment> {
        self.expire(now);
        self.by_session.contains_key(session).then(|| self.assign(session, now, hold_ms))
    }

    /// Whether `session` holds a live number in this pool at `now`.
    pub fn holds(&self, session: &str, now: i64) -> bool {
        self.by_session.get(session).is_some_and(|&i| self.numbers[i].holders.iter().any(|h| h.session == session && h.expires_at > now))
    }

    /// Replays a published assignment (restart recovery).
    pub fn restore(&mut self, session: &str, number: &str, assigned_at: i64, expires_at: i64, now: i64) {
        if expires_at <= now {
            return;
        }
        let Some(i) = self.numbers.iter().position(|n| n.number == number) else { return };
        if let Some(&prev) = self.by_session.get(session) {
            self.numbers[prev].holders.retain(|h| h.session != session);
        }
        // Replayed uses keep their own times (messages arrive in no global order).
        self.uses += 1;
        self.latest = self.latest.max(assigned_at);
        let stamp = (assigned_at, self.uses);
        let n = &mut self.numbers[i];
        n.holders.push(Holder { session: session.to_owned(), expires_at });
        n.last_used = n.last_used.max(stamp);
        self.by_session.insert(session.to_owned(), i);
    }

    /// (live holds, numbers in the pool), for the utilisation metric.
    pub fn utilisation(&mut self, now: i64) -> (usize, usize) {
        self.expire(now);
        (self.numbers.iter().filter(|n| !n.holders.is_empty()).count(), self.numbers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: i64 = 30 * 60_000;

    fn pool(n: usize) -> PoolState {
        PoolState::new(&(0..n).map(|i| format!("+1555010900{i}")).collect::<Vec<_>>())
    }

    #[test]
    fn a_live_session_keeps_its_number() {
        let mut p = pool(2);
        let a = p.assign("s1", 0, HOLD);
        let b = p.assign("s1", 60_000, HOLD);
        assert_eq!(a.number, b.number);
        assert!(b.renewed && !b.shared);
        assert_eq!(b.expires_at, 60_000 + HOLD);
    }

    #[test]
    fn no_number_is_live_in_two_sessions_until_exhaustion() {
        let mut p = pool(3);
        let numbers: Vec<_> = (0..3).map(|i| p.assign(&format!("s{i}"), i, HOLD).number).collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3);
        let fourth = p.assign("s3", 10, HOLD);
        assert!(fourth.shared);
        assert_eq!(fourth.number, numbers[0], "least recently used number is reused");
        assert_eq!(p.exhausted_total, 1);
    }

    #[test]
    fn reuse_within_one_millisecond_still_rotates() {
        let mut p = pool(3);
        let got: Vec<_> = (0..9).map(|i| p.assign(&format!("s{i}"), 5, HOLD).number).collect();
        for n in ["+15550109000", "+15550109001", "+15550109002"] {
            assert_eq!(got.iter().filter(|g| *g == n).count(), 3, "{got:?}");
        }
    }

    #[test]
    fn reuse_follows_the_order_of_use_even_when_request_times_arrive_out_of_order() {
        let mut p = pool(3);
        // Request times taken before the lock: 10, 9, 8, … in lock order.
        let got: Vec<_> = (0..9).map(|i| p.assign(&format!("s{i}"), 10 - i, HOLD).number).collect();
        assert_eq!(&got[3..6], &got[0..3], "shared reuse starts from the first number used: {got:?}");
        assert_eq!(&got[6..9], &got[0..3]);
    }

    #[test]
    fn holds_expire_after_the_last_activity() {
        let mut p = pool(1);
        p.assign("s1", 0, HOLD);
        assert!(p.touch("s1", HOLD - 1, HOLD).is_some());
        // Renewed at HOLD-1, so still held just before 2*HOLD-1.
        assert!(p.assign("s2", 2 * HOLD - 2, HOLD).shared);
        let mut p = pool(1);
        p.assign("s1", 0, HOLD);
        let s2 = p.assign("s2", HOLD, HOLD);
        assert!(!s2.shared, "expired hold frees the number");
        assert!(p.touch("s1", HOLD + 1, HOLD).is_none());
    }

    #[test]
    fn holds_reports_live_sessions_only() {
        let mut p = pool(1);
        p.assign("s1", 0, HOLD);
        assert!(p.holds("s1", HOLD - 1));
        assert!(!p.holds("s1", HOLD));
        assert!(!p.holds("s2", 0));
    }

    #[test]
    fn restored_holds_block_reassignment() {
        let mut p = pool(2);
        p.restore("old", "+15550109000", 0, HOLD, 10);
        let a = p.assign("new", 20, HOLD);
        assert_eq!(a.number, "+15550109001");
        p.restore("gone", "+15550109001", 0, 5, 10);
        assert_eq!(p.utilisation(20), (2, 2));
    }

    #[test]
    fn reconfigure_keeps_holds_on_surviving_numbers() {
        let mut p = pool(2);
        let a = p.assign("s1", 0, HOLD);
        p.reconfigure(&[a.number.clone(), "+15550109999".into()]);
        assert_eq!(p.assign("s1", 1, HOLD).number, a.number);
        assert_eq!(p.assign("s2", 2, HOLD).number, "+15550109999");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Assign(u8),
            Touch(u8),
            Wait(i64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..12).prop_map(Op::Assign),
                2 => (0u8..12).prop_map(Op::Touch),
                1 => (0i64..HOLD * 2).prop_map(Op::Wait),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

            /// Against a model of live holds: a live session always gets its
            /// number back; a new session gets a number nobody live holds, and
            /// shares one only when every number of the pool is live.
            #[test]
            fn pool_rules_hold_for_any_sequence(size in 1usize..6, ops in proptest::collection::vec(op(), 1..200)) {
                let mut p = pool(size);
                let mut model: HashMap<String, (String, i64)> = HashMap::new();
                let mut now = 0i64;
                for op in ops {
                    now += 1;
                    model.retain(|_, (_, exp)| *exp > now);
                    match op {
                        Op::Wait(ms) => now += ms,
                        Op::Touch(s) => {
                            let session = format!("s{s}");
                            let got = p.touch(&session, now, HOLD);
                            prop_assert_eq!(got.is_some(), model.contains_key(&session));
                            if let Some(a) = got {
                                prop_assert_eq!(&a.number, &model[&session].0);
                                model.insert(session, (a.number, a.expires_at));
                            }
                        }
                        Op::Assign(s) => {
                            let session = format!("s{s}");
                            let live_numbers: std::collections::HashSet<String> = model.values().map(|(n, _)| n.clone()).collect();
                            let a = p.assign(&session, now, HOLD);
                            prop_assert_eq!(a.expires_at, now + HOLD);
                            match model.get(&session) {
                                Some((n, _)) => {
                                    prop_assert!(a.renewed);
                                    prop_assert_eq!(&a.number, n);
                                }
                                None => {
                                    prop_assert!(!a.renewed);
                                    if a.shared {
                                        prop_assert_eq!(live_numbers.len(), size, "shared although a number was free");
                                    } else {
                                        prop_assert!(!live_numbers.contains(&a.number), "{} handed to a second live session", a.number);
                                    }
                                }
                            }
                            model.insert(session, (a.number, a.expires_at));
                        }
                    }
                    model.retain(|_, (_, exp)| *exp > now);
                    let live: std::collections::HashSet<&String> = model.values().map(|(n, _)| n).collect();
                    prop_assert_eq!(p.utilisation(now), (live.len(), size));
                }
            }
        }
    }
}
