//! One pool's holds: which live session holds which number. Pure state (no
//! IO, time passed in), model- and property-tested; the in-process store
//! keeps one per pool. The handler publishes every assignment and renewal,
//! and `restore` replays them after a restart so no held number is handed to
//! someone else.
//!
//! Rules: the same live session always gets the same number; a number is
//! held `hold` after the session's last activity; no number is live in two
//! sessions unless the pool is exhausted — then the least recently used
//! number is reused and the assignment is marked shared. A client (an IP, an
//! IPv6 /64) holds at most `client_cap` numbers at once: a script opening
//! thousands of sessions cannot drain the pool.
//!
//! Every step is O(log n): holds expire from an ordered set of leases, and
//! free and busy numbers sit in sets ordered by last use.

use std::collections::{BTreeSet, HashMap};

use super::{Assignment, Refusal};

/// A session's hold.
#[derive(Debug, Clone)]
struct Hold {
    number: String,
    expires_at: i64,
    client: String,
}

#[derive(Debug, Clone)]
struct NumberState {
    /// Position in the pool's configuration (ties of last use go by it).
    index: usize,
    holders: usize,
    /// The use counter when a session was last given or renewed this number (0: never).
    last_used: u64,
}

#[derive(Debug)]
pub struct PoolState {
    /// Number → its state; `order` lists them as configured.
    numbers: HashMap<String, NumberState>,
    order: Vec<String>,
    sessions: HashMap<String, Hold>,
    /// (expires_at, session) of every live hold.
    leases: BTreeSet<(i64, String)>,
    /// (last_used, index) of numbers nobody holds, and of numbers held by someone.
    free: BTreeSet<(u64, usize)>,
    busy: BTreeSet<(u64, usize)>,
    /// Live holds per client.
    clients: HashMap<String, usize>,
    /// Counts uses: the order of use is the order of this counter.
    uses: u64,
    pub exhausted_total: u64,
}

impl PoolState {
    pub fn new(numbers: &[String]) -> PoolState {
        let mut state = PoolState {
            numbers: HashMap::new(),
            order: Vec::new(),
            sessions: HashMap::new(),
            leases: BTreeSet::new(),
            free: BTreeSet::new(),
            busy: BTreeSet::new(),
            clients: HashMap::new(),
            uses: 0,
            exhausted_total: 0,
        };
        state.reconfigure(numbers);
        state
    }

    /// Keeps holds on numbers still in the (reloaded) pool, drops the holds
    /// on numbers removed, and adds new numbers (never used: given first).
    pub fn reconfigure(&mut self, numbers: &[String]) {
        let mut old = std::mem::take(&mut self.numbers);
        self.order = numbers.to_vec();
        for (index, n) in numbers.iter().enumerate() {
            let last_used = old.remove(n).map(|s| s.last_used).unwrap_or(0);
            self.numbers.insert(n.clone(), NumberState { index, holders: 0, last_used });
        }
        let gone: Vec<String> = self.sessions.iter().filter(|(_, h)| !self.numbers.contains_key(&h.number)).map(|(s, _)| s.clone()).collect();
        for session in gone {
            self.drop_hold(&session);
        }
        for hold in self.sessions.values() {
            if let Some(n) = self.numbers.get_mut(&hold.number) {
                n.holders += 1;
            }
        }
        self.free = self.numbers.values().filter(|n| n.holders == 0).map(|n| (n.last_used, n.index)).collect();
        self.busy = self.numbers.values().filter(|n| n.holders > 0).map(|n| (n.last_used, n.index)).collect();
    }

    /// Ends every hold that expired by `now`.
    fn expire(&mut self, now: i64) {
        while let Some((expires_at, _)) = self.leases.first() {
            if *expires_at > now {
                break;
            }
            let Some((_, session)) = self.leases.pop_first() else { break };
            self.release(&session);
        }
    }

    /// Removes a session's hold entirely (lease included).
    fn drop_hold(&mut self, session: &str) {
        if let Some(hold) = self.sessions.get(session) {
            self.leases.remove(&(hold.expires_at, session.to_owned()));
        }
        self.release(session);
    }

    /// Forgets a session whose lease is already gone; frees its number when it was the last holder.
    fn release(&mut self, session: &str) {
        let Some(hold) = self.sessions.remove(session) else { return };
        if let Some(count) = self.clients.get_mut(&hold.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.clients.remove(&hold.client);
            }
        }
        let Some(n) = self.numbers.get_mut(&hold.number) else { return };
        n.holders = n.holders.saturating_sub(1);
        if n.holders == 0 {
            self.busy.remove(&(n.last_used, n.index));
            self.free.insert((n.last_used, n.index));
        }
    }

    /// Marks a number used now (moving it to `busy` at its new last use).
    fn use_number(&mut self, number: &str, held_before: bool) {
        self.uses += 1;
        let uses = self.uses;
        let Some(n) = self.numbers.get_mut(number) else { return };
        if held_before {
            self.busy.remove(&(n.last_used, n.index));
        } else {
            self.free.remove(&(n.last_used, n.index));
            n.holders += 1;
        }
        n.last_used = uses;
        self.busy.insert((n.last_used, n.index));
    }

    fn set_lease(&mut self, session: &str, expires_at: i64) {
        if let Some(hold) = self.sessions.get_mut(session) {
            self.leases.remove(&(hold.expires_at, session.to_owned()));
            hold.expires_at = expires_at;
            self.leases.insert((expires_at, session.to_owned()));
        }
    }

    /// Gives `session` of `client` its number (renewing an existing hold).
    pub fn assign(&mut self, session: &str, client: &str, now: i64, hold_ms: i64, client_cap: usize) -> Result<Assignment, Refusal> {
        self.expire(now);
        let expires_at = now + hold_ms;
        if let Some(number) = self.sessions.get(session).map(|h| h.number.clone()) {
            self.set_lease(session, expires_at);
            self.use_number(&number, true);
            let shared = self.numbers.get(&number).is_some_and(|n| n.holders > 1);
            return Ok(Assignment { number, expires_at, shared, renewed: true });
        }
        if self.clients.get(client).copied().unwrap_or(0) >= client_cap {
            return Err(Refusal::ClientCap);
        }
        // A free number, least recently used first, so a just-released number
        // is not immediately given to a new visitor (late calls still reach the old one).
        let (pick, shared) = match (self.free.first(), self.busy.first()) {
            (Some(&(_, index)), _) => (index, false),
            (None, Some(&(_, index))) => (index, true),
            (None, None) => return Err(Refusal::Empty),
        };
        if shared {
            self.exhausted_total += 1;
        }
        let number = self.order[pick].clone();
        self.use_number(&number, shared);
        if shared {
            // A second holder of a busy number: count it (use_number counted only the first).
            if let Some(n) = self.numbers.get_mut(&number) {
                n.holders += 1;
            }
        }
        self.sessions.insert(session.to_owned(), Hold { number: number.clone(), expires_at, client: client.to_owned() });
        self.leases.insert((expires_at, session.to_owned()));
        *self.clients.entry(client.to_owned()).or_insert(0) += 1;
        Ok(Assignment { number, expires_at, shared, renewed: false })
    }

    /// Extends an existing hold (the session sent an event); `None` if it holds nothing.
    pub fn touch(&mut self, session: &str, now: i64, hold_ms: i64) -> Option<Assignment> {
        self.expire(now);
        let number = self.sessions.get(session)?.number.clone();
        let expires_at = now + hold_ms;
        self.set_lease(session, expires_at);
        self.use_number(&number, true);
        let shared = self.numbers.get(&number).is_some_and(|n| n.holders > 1);
        Some(Assignment { number, expires_at, shared, renewed: true })
    }

    /// Whether `session` holds a live number in this pool at `now`.
    pub fn holds(&self, session: &str, now: i64) -> bool {
        self.sessions.get(session).is_some_and(|h| h.expires_at > now)
    }

    /// Replays a published assignment (restart recovery); the hold counts for no client.
    pub fn restore(&mut self, session: &str, number: &str, expires_at: i64, now: i64) {
        self.expire(now);
        if expires_at <= now || !self.numbers.contains_key(number) {
            return;
        }
        if self.sessions.get(session).is_some_and(|h| h.number == number) {
            self.set_lease(session, expires_at);
            self.use_number(number, true);
            return;
        }
        self.drop_hold(session);
        let held_before = self.numbers.get(number).is_some_and(|n| n.holders > 0);
        self.use_number(number, held_before);
        if held_before {
            if let Some(n) = self.numbers.get_mut(number) {
                n.holders += 1;
            }
        }
        self.sessions.insert(session.to_owned(), Hold { number: number.to_owned(), expires_at, client: String::new() });
        self.leases.insert((expires_at, session.to_owned()));
    }

    /// (live holds' numbers, numbers in the pool), for the utilisation metric.
    pub fn utilisation(&mut self, now: i64) -> (usize, usize) {
        self.expire(now);
        (self.busy.len(), self.numbers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: i64 = 30 * 60_000;

    fn pool(n: usize) -> PoolState {
        PoolState::new(&(0..n).map(|i| format!("+1555010900{i}")).collect::<Vec<_>>())
    }

    /// Assigns without a client cap (one client).
    trait Assign {
        fn assign1(&mut self, session: &str, now: i64, hold: i64) -> Assignment;
    }

    impl Assign for PoolState {
        fn assign1(&mut self, session: &str, now: i64, hold: i64) -> Assignment {
            self.assign(session, "client", now, hold, usize::MAX).unwrap()
        }
    }

    #[test]
    fn a_live_session_keeps_its_number() {
        let mut p = pool(2);
        let a = p.assign1("s1", 0, HOLD);
        let b = p.assign1("s1", 60_000, HOLD);
        assert_eq!(a.number, b.number);
        assert!(b.renewed && !b.shared);
        assert_eq!(b.expires_at, 60_000 + HOLD);
    }

    #[test]
    fn no_number_is_live_in_two_sessions_until_exhaustion() {
        let mut p = pool(3);
        let numbers: Vec<_> = (0..3).map(|i| p.assign1(&format!("s{i}"), i, HOLD).number).collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3);
        let fourth = p.assign1("s3", 10, HOLD);
        assert!(fourth.shared);
        assert_eq!(fourth.number, numbers[0], "least recently used number is reused");
        assert_eq!(p.exhausted_total, 1);
    }

    #[test]
    fn reuse_within_one_millisecond_still_rotates() {
        let mut p = pool(3);
        let got: Vec<_> = (0..9).map(|i| p.assign1(&format!("s{i}"), 5, HOLD).number).collect();
        for n in ["+15550109000", "+15550109001", "+15550109002"] {
            assert_eq!(got.iter().filter(|g| *g == n).count(), 3, "{got:?}");
        }
    }

    #[test]
    fn reuse_follows_the_order_of_use_even_when_request_times_arrive_out_of_order() {
        let mut p = pool(3);
        // Request times taken before the lock: 10, 9, 8, … in lock order.
        let got: Vec<_> = (0..9).map(|i| p.assign1(&format!("s{i}"), 10 - i, HOLD).number).collect();
        assert_eq!(&got[3..6], &got[0..3], "shared reuse starts from the first number used: {got:?}");
        assert_eq!(&got[6..9], &got[0..3]);
    }

    #[test]
    fn holds_expire_after_the_last_activity() {
        let mut p = pool(1);
        p.assign1("s1", 0, HOLD);
        assert!(p.touch("s1", HOLD - 1, HOLD).is_some());
        // Renewed at HOLD-1, so still held just before 2*HOLD-1.
        assert!(p.assign1("s2", 2 * HOLD - 2, HOLD).shared);
        let mut p = pool(1);
        p.assign1("s1", 0, HOLD);
        let s2 = p.assign1("s2", HOLD, HOLD);
        assert!(!s2.shared, "expired hold frees the number");
        assert!(p.touch("s1", HOLD + 1, HOLD).is_none());
    }

    #[test]
    fn holds_reports_live_sessions_only() {
        let mut p = pool(1);
        p.assign1("s1", 0, HOLD);
        assert!(p.holds("s1", HOLD - 1));
        assert!(!p.holds("s1", HOLD));
        assert!(!p.holds("s2", 0));
    }

    #[test]
    fn restored_holds_block_reassignment() {
        let mut p = pool(2);
        p.restore("old", "+15550109000", HOLD, 10);
        let a = p.assign1("new", 20, HOLD);
        assert_eq!(a.number, "+15550109001");
        p.restore("gone", "+15550109001", 5, 10);
        assert_eq!(p.utilisation(20), (2, 2));
    }

    #[test]
    fn a_client_holds_at_most_its_cap_and_other_clients_are_unaffected() {
        let mut p = pool(5);
        for i in 0..3 {
            assert!(p.assign(&format!("bot-{i}"), "203.0.113.9", 0, HOLD, 3).is_ok());
        }
        assert_eq!(p.assign("bot-3", "203.0.113.9", 1, HOLD, 3), Err(Refusal::ClientCap));
        let visitor = p.assign("visitor", "198.51.100.7", 2, HOLD, 3).unwrap();
        assert!(!visitor.shared, "a real visitor still gets a number of their own");
        assert!(p.assign("bot-0", "203.0.113.9", 3, HOLD, 3).unwrap().renewed, "a held session renews over the cap");
        // Once the holds expire the client may hold numbers again.
        assert!(p.assign("bot-4", "203.0.113.9", HOLD + 10, HOLD, 3).is_ok());
    }

    #[test]
    fn expiry_frees_numbers_in_lease_order_and_an_empty_pool_refuses() {
        let mut p = pool(2);
        p.assign1("s1", 0, 10);
        p.assign1("s2", 5, 10);
        assert_eq!(p.utilisation(9), (2, 2));
        assert_eq!(p.utilisation(10), (1, 2), "s1's lease ended at 10");
        assert_eq!(p.utilisation(15), (0, 2));
        assert_eq!(PoolState::new(&[]).assign("s", "c", 0, 10, 5), Err(Refusal::Empty));
    }

    #[test]
    fn reconfigure_keeps_holds_on_surviving_numbers() {
        let mut p = pool(2);
        let a = p.assign1("s1", 0, HOLD);
        let b = p.assign1("s2", 0, HOLD);
        p.reconfigure(&[a.number.clone(), "+15550109999".into()]);
        assert_eq!(p.assign1("s1", 1, HOLD).number, a.number);
        assert!(!p.holds("s2", 1), "a hold on a removed number ends ({})", b.number);
        assert_eq!(p.assign1("s3", 2, HOLD).number, "+15550109999");
        assert_eq!(p.utilisation(3), (2, 2));
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
                            let a = p.assign1(&session, now, HOLD);
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
