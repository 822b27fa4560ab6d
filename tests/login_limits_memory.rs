//! The login limits hold fixed memory: 100,000 distinct client addresses and emails leave the
//! heap where it was. A test binary of its own, because it replaces the global allocator; it
//! counts the allocations of the test's own thread only (the harness's threads allocate too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use sigmasight::auth::rate_limit::LoginLimits;

/// The system allocator, keeping a count of the bytes live that threads marked as counting
/// allocated and freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count(bytes: isize) {
    if COUNTING.with(Cell::get) {
        LIVE_BYTES.fetch_add(bytes, Ordering::SeqCst);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_hundred_thousand_distinct_addresses_and_emails_leave_the_heap_where_it_was() {
    let t0 = Instant::now();
    let limits = LoginLimits::new(Duration::from_secs(60), t0);
    COUNTING.with(|c| c.set(true));

    let mut refused = 0;
    for i in 0..100_000u32 {
        let client = IpAddr::from(i.to_be_bytes());
        let email = format!("user-{i}@example.com");
        if limits.check(client, &email, t0).is_err() {
            refused += 1;
        }
    }

    COUNTING.with(|c| c.set(false));
    let grown = LIVE_BYTES.load(Ordering::SeqCst);
    assert_eq!(grown, 0, "the limits grew the heap by {grown} bytes");
    assert_eq!(refused, 0, "distinct clients and emails were refused");
    assert!(
        limits.memory_bytes() <= 4 << 20,
        "{}",
        limits.memory_bytes()
    );
}
