//! # The bell: how one new event wakes thousands of waiting connections
//!
//! Every open stream waits for the same thing: the log grew (news), or the lecturer or a
//! shutdown wants every connection to end (control). The hub rings a [`Bell`]; each connection
//! holds a [`Subscription`] that remembers what it has seen and resolves when something rang.
//!
//! The bell rings **per worker thread, not per connection**. actix runs one single-threaded
//! runtime per core, and each connection lives on one of them. A publish wakes one small
//! ringer task per worker (a cross-thread wake each), and each ringer wakes the connections of
//! its own thread from a plain list — local wakes, no lock, no atomic queue per connection.
//!
//! The road not taken, measured: a `tokio::sync::watch` (the usual answer, and this server's
//! until issue 15). It is correct and simple, but with 9,000 spectators every event made the
//! publishing thread lock a waiter list and hand each of 9,000 tasks to its runtime's shared
//! queue, and every task re-registered under that lock before sleeping again: 7 % of the
//! server's CPU in a fan-out (`docs/results.md` §10). A `broadcast` channel or a queue per
//! connection would cost memory per connection and per event instead; the log stays the one
//! place the events are.
//!
//! Subscriptions must be made on a runtime with a `LocalSet` (every actix worker, and
//! `#[actix_web::test]`): the ringer of a thread is a local task, spawned by the first
//! subscription of that thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;

/// What rang since a subscription last looked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rang {
    /// The log grew.
    pub news: bool,
    /// Every connection was told to end (the lecturer's drop, or a shutdown).
    pub control: bool,
}

impl Rang {
    fn any(self) -> bool {
        self.news || self.control
    }
}

/// Rung by the hub: after every publish ([`Bell::ring_news`]) and every order to end all
/// connections ([`Bell::ring_control`]).
pub struct Bell {
    /// Counts the rings for news, bumped after the events are in the log. A count, not the
    /// log's last seq: a cluster node that reloads its ring may end at the seq it had (in
    /// another epoch), and its streams must look all the same.
    news: AtomicU64,
    /// Counts the orders to end all connections.
    control: AtomicU64,
    /// One ringer per thread that has subscribers.
    threads: Mutex<Vec<Arc<Ringer>>>,
}

/// The cross-thread half of one thread's ringer.
struct Ringer {
    waker: AtomicWaker,
    rung: AtomicBool,
    /// The bell is gone: the ringer task ends.
    closed: AtomicBool,
}

impl Bell {
    pub fn new() -> Arc<Bell> {
        Arc::new(Bell {
            news: AtomicU64::new(0),
            control: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// The log changed: wakes every subscription. Call after the events are in it.
    pub fn ring_news(&self) {
        self.news.fetch_add(1, Ordering::AcqRel);
        self.ring();
    }

    /// Wakes every subscription with [`Rang::control`].
    pub fn ring_control(&self) {
        self.control.fetch_add(1, Ordering::AcqRel);
        self.ring();
    }

    fn ring(&self) {
        for ringer in self.ringers().iter() {
            ringer.rung.store(true, Ordering::Release);
            ringer.waker.wake();
        }
    }

    fn ringers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Ringer>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A subscription on this thread that has seen everything so far.
    pub fn subscribe(self: &Arc<Bell>) -> Subscription {
        let local = Local::of(self);
        let slot = local.slots.borrow_mut().take();
        Subscription {
            bell: self.clone(),
            news: self.news.load(Ordering::Acquire),
            control: self.control.load(Ordering::Acquire),
            local,
            slot,
        }
    }
}

impl Drop for Bell {
    fn drop(&mut self) {
        for ringer in self.ringers().iter() {
            ringer.closed.store(true, Ordering::Release);
            ringer.waker.wake();
        }
    }
}

/// One connection's view of the bell.
pub struct Subscription {
    bell: Arc<Bell>,
    local: Rc<Local>,
    slot: usize,
    news: u64,
    control: u64,
}

impl Subscription {
    /// Ready with what rang since the last `Ready`; otherwise registers the task to be woken.
    /// Read the log *after* a `Pending` (or after handling a `Ready`): an event published
    /// after that rings again, so none is missed.
    pub fn poll_rang(&mut self, cx: &mut Context<'_>) -> Poll<Rang> {
        let rang = self.look();
        if rang.any() {
            return Poll::Ready(rang);
        }
        self.local.slots.borrow_mut().wait(self.slot, cx.waker());
        // A ring between the look and the registration woke nobody: look again.
        let rang = self.look();
        if rang.any() {
            return Poll::Ready(rang);
        }
        Poll::Pending
    }

    /// [`poll_rang`](Self::poll_rang) as a future.
    pub async fn rang(&mut self) -> Rang {
        std::future::poll_fn(|cx| self.poll_rang(cx)).await
    }

    fn look(&mut self) -> Rang {
        let news = self.bell.news.load(Ordering::Acquire);
        let control = self.bell.control.load(Ordering::Acquire);
        let rang = Rang {
            news: news != self.news,
            control: control != self.control,
        };
        self.news = news;
        self.control = control;
        rang
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.local.slots.borrow_mut().give_back(self.slot);
    }
}

/// The wakers of one thread's subscriptions, by slot.
#[derive(Default)]
struct Slots {
    /// A slot's waker, kept between rings so that re-registering the same task clones nothing;
    /// `waiting` says whether the ringer should wake it.
    slots: Vec<Slot>,
    free: Vec<usize>,
}

#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    waiting: bool,
}

impl Slots {
    fn take(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        })
    }

    fn give_back(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Slot::default();
            self.free.push(slot);
        }
    }

    fn wait(&mut self, slot: usize, waker: &Waker) {
        if let Some(s) = self.slots.get_mut(slot) {
            match &s.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => s.waker = Some(waker.clone()),
            }
            s.waiting = true;
        }
    }

    fn wake_all(&mut self) {
        for s in self.slots.iter_mut().filter(|s| s.waiting) {
            s.waiting = false;
            if let Some(w) = &s.waker {
                w.wake_by_ref();
            }
        }
    }
}

/// One thread's side of one bell: its subscriptions' wakers and its ringer.
struct Local {
    bell: Weak<Bell>,
    ringer: Arc<Ringer>,
    slots: RefCell<Slots>,
}

thread_local! {
    /// This thread's side of every bell it has subscribers of (one per hub; tests run several).
    static LOCALS: RefCell<Vec<Rc<Local>>> = const { RefCell::new(Vec::new()) };
}

impl Local {
    /// This thread's side of `bell`; the first call on a thread starts its ringer.
    fn of(bell: &Arc<Bell>) -> Rc<Local> {
        LOCALS.with(|locals| {
            let mut locals = locals.borrow_mut();
            // (A `Weak` keeps its allocation, so no other bell can have this address.)
            if let Some(local) = locals.iter().find(|l| l.bell.as_ptr() == Arc::as_ptr(bell)) {
                return local.clone();
            }
            let ringer = Arc::new(Ringer {
                waker: AtomicWaker::new(),
                rung: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            });
            bell.ringers().push(ringer.clone());
            let local = Rc::new(Local {
                bell: Arc::downgrade(bell),
                ringer,
                slots: RefCell::new(Slots::default()),
            });
            locals.push(local.clone());
            tokio::task::spawn_local(Local::ring(local.clone()));
            local
        })
    }

    /// The ringer task of one thread: wakes the thread's waiting subscriptions whenever the
    /// bell rang, until the bell is gone.
    async fn ring(local: Rc<Local>) {
        std::future::poll_fn(|cx| {
            local.ringer.waker.register(cx.waker());
            if local.ringer.rung.swap(false, Ordering::AcqRel) {
                local.slots.borrow_mut().wake_all();
            }
            if local.ringer.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        let _ = LOCALS.try_with(|locals| {
            locals.borrow_mut().retain(|l| !Rc::ptr_eq(l, &local));
        });
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread is ending (or the bell is gone): its ringer has nobody to wake.
        if let Some(bell) = self.bell.upgrade() {
            bell.ringers().retain(|r| !Arc::ptr_eq(r, &self.ringer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .unwrap_or_else(|_| panic!("{what}: not woken"))
    }

    #[actix_web::test]
    async fn a_ring_wakes_every_subscription_on_its_thread_once_per_look() {
        let bell = Bell::new();
        let mut subs: Vec<Subscription> = (0..100).map(|_| bell.subscribe()).collect();
        let waiting: Vec<_> = subs
            .drain(..)
            .map(|mut s| {
                actix_web::rt::spawn(async move {
                    let rang = s.rang().await;
                    (rang, s)
                })
            })
            .collect();
        actix_web::rt::task::yield_now().await;
        bell.ring_news();
        for task in waiting {
            let (rang, mut s) = within("news", task).await.unwrap();
            assert_eq!(
                rang,
                Rang {
                    news: true,
                    control: false
                }
            );
            let again = std::future::poll_fn(|cx| Poll::Ready(s.poll_rang(cx))).await;
            assert!(again.is_pending(), "seen once, not twice");
        }
    }

    #[actix_web::test]
    async fn a_ring_before_the_wait_is_not_lost_and_control_is_told_apart() {
        let bell = Bell::new();
        let mut sub = bell.subscribe();
        bell.ring_control();
        assert_eq!(
            within("control", sub.rang()).await,
            Rang {
                news: false,
                control: true
            }
        );
        bell.ring_news();
        bell.ring_news();
        assert!(within("two events", sub.rang()).await.news);
    }

    #[actix_web::test]
    async fn every_ring_is_news_even_when_the_log_ends_where_it_did() {
        // A cluster node reloading its ring in another epoch may end at the seq it had: its
        // streams must still look (and find the epoch changed).
        let bell = Bell::new();
        let mut sub = bell.subscribe();
        bell.ring_news();
        assert!(within("first ring", sub.rang()).await.news);
        bell.ring_news();
        assert!(
            within("a second ring, nothing else changed", sub.rang())
                .await
                .news
        );
    }

    #[actix_web::test]
    async fn a_ring_from_another_thread_wakes_this_one() {
        let bell = Bell::new();
        let mut sub = bell.subscribe();
        let ringer = bell.clone();
        let other = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            ringer.ring_news();
        });
        assert!(within("cross-thread", sub.rang()).await.news);
        other.join().unwrap();
    }

    #[actix_web::test]
    async fn slots_are_reused_and_a_dropped_subscription_is_not_woken() {
        let bell = Bell::new();
        let a = bell.subscribe();
        let b = bell.subscribe();
        let slot_a = a.slot;
        drop(a);
        let c = bell.subscribe();
        assert_eq!(c.slot, slot_a, "a freed slot is taken again");
        assert_ne!(b.slot, c.slot);
        bell.ring_news();
        actix_web::rt::task::yield_now().await;
    }
}
