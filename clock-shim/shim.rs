//! `libtestbed_clock.so`: preloaded (`LD_PRELOAD`) into a testbed's
//! redis-server and sentinel, it shifts their wall clock (`CLOCK_REALTIME`,
//! `gettimeofday`, `time`) by an offset the host changes while they run — a
//! clock jump or drift, as NTP or a VM pause would make, on that process
//! only.
//!
//! Why not libfaketime: Debian's redis and valkey link jemalloc, and
//! libfaketime resolves the real `clock_gettime` with `dlsym`, which
//! allocates, which makes jemalloc read the clock during its own set-up:
//! the process hangs or gets -1 (libfaketime#130, measured here with
//! 0.9.10). This shim never calls into libc: the real clock comes from the
//! `clock_gettime` system call, and the offset from a file mapped once,
//! read-only (`$TESTBED_CLOCK_FILE`, 4 KiB).
//!
//! The file: at byte 0, the offset in ns (i64, little endian); at byte 8,
//! a drift in parts per billion (i64) applied since byte 16's monotonic
//! time (ns, i64). The host rewrites it in place; every call reads it.
//! Without the variable, or with a file that cannot be mapped, the clock is
//! the real one. `CLOCK_MONOTONIC` and the other clocks are never shifted.

#![no_std]
#![allow(clippy::missing_safety_doc, non_camel_case_types)]

// no std: nothing of it runs inside the servers; only these functions
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

// core (built with unwinding) refers to it; with panic=abort nothing calls it
#[no_mangle]
extern "C" fn rust_eh_personality() {}

// Built by the testbed crate's build.rs with plain rustc (no cargo, so no
// libc crate): the few C types, constants and functions it needs.
use core::ffi::{c_char, c_int, c_long, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

type clockid_t = c_int;
type time_t = i64;

#[repr(C)]
struct timespec {
    tv_sec: time_t,
    tv_nsec: c_long,
}

#[repr(C)]
struct timeval {
    tv_sec: time_t,
    tv_usec: i64,
}

mod libc {
    use super::*;
    pub const CLOCK_REALTIME: clockid_t = 0;
    pub const CLOCK_MONOTONIC: clockid_t = 1;
    pub const CLOCK_REALTIME_COARSE: clockid_t = 5;
    pub const AT_FDCWD: c_int = -100;
    pub const O_RDONLY: c_int = 0;
    pub const O_CLOEXEC: c_int = 0o2000000;
    pub const PROT_READ: c_int = 1;
    pub const MAP_SHARED: c_int = 1;
    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub const CLOCK_GETTIME: i64 = 228;
        pub const OPENAT: i64 = 257;
        pub const MMAP: i64 = 9;
        pub const MUNMAP: i64 = 11;
        pub const CLOSE: i64 = 3;
    }
    #[cfg(target_arch = "aarch64")]
    mod nr {
        pub const CLOCK_GETTIME: i64 = 113;
        pub const OPENAT: i64 = 56;
        pub const MMAP: i64 = 222;
        pub const MUNMAP: i64 = 215;
        pub const CLOSE: i64 = 57;
    }
    pub const SYS_clock_gettime: c_long = nr::CLOCK_GETTIME as c_long;
    pub const SYS_openat: c_long = nr::OPENAT as c_long;
    pub const SYS_mmap: c_long = nr::MMAP as c_long;
    pub const SYS_munmap: c_long = nr::MUNMAP as c_long;
    pub const SYS_close: c_long = nr::CLOSE as c_long;
    #[link(name = "c")]
    extern "C" {
        pub fn syscall(n: c_long, ...) -> c_long;
        pub fn getenv(name: *const c_char) -> *mut c_char;
    }
}

/// 0: not mapped yet; 1: mapped; 2: no file (the real clock).
static STATE: AtomicU8 = AtomicU8::new(0);
static PAGE: AtomicPtr<i64> = AtomicPtr::new(core::ptr::null_mut());

const PAGE_LEN: usize = 4096;

unsafe fn real(clk: clockid_t, ts: *mut timespec) -> c_int {
    libc::syscall(libc::SYS_clock_gettime, clk as c_long, ts) as c_int
}

/// Maps the offset file once; `None`: no shift.
unsafe fn page() -> Option<*const i64> {
    match STATE.load(Ordering::Acquire) {
        1 => return Some(PAGE.load(Ordering::Acquire)),
        2 => return None,
        _ => {}
    }
    let path = libc::getenv(c"TESTBED_CLOCK_FILE".as_ptr());
    let mut mapped: *mut i64 = core::ptr::null_mut();
    if !path.is_null() {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as c_long,
            path,
            (libc::O_RDONLY | libc::O_CLOEXEC) as c_long,
        );
        if fd >= 0 {
            let p = libc::syscall(
                libc::SYS_mmap,
                0 as c_long,
                PAGE_LEN as c_long,
                libc::PROT_READ as c_long,
                libc::MAP_SHARED as c_long,
                fd,
                0 as c_long,
            );
            libc::syscall(libc::SYS_close, fd);
            if p != -1 && p != 0 {
                mapped = p as *mut i64;
            }
        }
    }
    if mapped.is_null() {
        STATE.store(2, Ordering::Release);
        return None;
    }
    // another thread may have mapped it meanwhile: keep the first mapping
    match PAGE.compare_exchange(core::ptr::null_mut(), mapped, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(_) => {
            libc::syscall(libc::SYS_munmap, mapped, PAGE_LEN as c_long);
        }
    }
    STATE.store(1, Ordering::Release);
    Some(PAGE.load(Ordering::Acquire))
}

/// The shift now, ns.
unsafe fn shift_ns() -> i64 {
    let Some(p) = page() else {
        return 0;
    };
    let offset = core::ptr::read_volatile(p);
    let drift_ppb = core::ptr::read_volatile(p.add(1));
    if drift_ppb == 0 {
        return offset;
    }
    let since = core::ptr::read_volatile(p.add(2));
    let mut now = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    real(libc::CLOCK_MONOTONIC, &mut now);
    let mono = now.tv_sec * 1_000_000_000 + now.tv_nsec;
    let elapsed = (mono - since).max(0) as i128;
    offset + (elapsed * drift_ppb as i128 / 1_000_000_000) as i64
}

fn shifted(clk: clockid_t) -> bool {
    matches!(clk, libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE)
}

unsafe fn add(ts: *mut timespec, ns: i64) {
    if ns == 0 {
        return;
    }
    let total = (*ts).tv_sec as i128 * 1_000_000_000 + (*ts).tv_nsec as i128 + ns as i128;
    (*ts).tv_sec = total.div_euclid(1_000_000_000) as time_t;
    (*ts).tv_nsec = total.rem_euclid(1_000_000_000) as c_long;
}

#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clk: clockid_t, ts: *mut timespec) -> c_int {
    let r = real(clk, ts);
    if r == 0 && shifted(clk) {
        add(ts, shift_ns());
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, _tz: *mut c_void) -> c_int {
    if tv.is_null() {
        return 0;
    }
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let r = clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    if r == 0 {
        (*tv).tv_sec = ts.tv_sec;
        (*tv).tv_usec = (ts.tv_nsec / 1000) as i64;
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn time(t: *mut time_t) -> time_t {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if clock_gettime(libc::CLOCK_REALTIME, &mut ts) != 0 {
        return -1;
    }
    if !t.is_null() {
        *t = ts.tv_sec;
    }
    ts.tv_sec
}
