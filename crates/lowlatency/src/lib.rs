//! Scheduling hints for the threads that keep an open-loop schedule.
//!
//! An open-loop driver's start times are only as precise as the wake-ups
//! of the threads that release them. On a busy machine Linux rounds a
//! sleeping thread's timer up by its timer slack (50 µs by default), and a
//! woken thread may wait for the running one's time slice to end, which
//! takes milliseconds. [`favour_wakeups`] asks for a 1 ns timer slack and,
//! on kernels whose fair scheduler is EEVDF (Linux 6.12 and later), a short
//! time slice: the thread then runs soon after it wakes, without getting a
//! larger share of the CPU. Neither needs privileges; kernels that do not
//! know a setting ignore or refuse it, and the thread runs as before.

/// The time slice asked for: the shortest the kernel accepts.
const SLICE_NS: u64 = 100_000;

/// Linux's default timer slack. New threads inherit their creator's slack,
/// so restoring it means setting this value, not asking for the default.
const DEFAULT_SLACK_NS: u64 = 50_000;

/// Applies both hints to the calling thread, and so to the threads it
/// creates from now on. A failure leaves the thread's scheduling as it was
/// and is reported for logging; it is never fatal.
pub fn favour_wakeups() -> std::io::Result<()> {
    set(1, SLICE_NS)
}

/// Gives the calling thread the kernel's default timer slack and time
/// slice again: for threads created by a favoured one that must compete
/// normally, such as an embedded server's.
pub fn restore_defaults() -> std::io::Result<()> {
    set(DEFAULT_SLACK_NS, 0)
}

#[cfg(target_os = "linux")]
fn set(slack_ns: u64, slice_ns: u64) -> std::io::Result<()> {
    rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(slack_ns))?;
    set_slice(slice_ns)
}

/// Elsewhere there is nothing to ask for.
#[cfg(not(target_os = "linux"))]
fn set(_slack_ns: u64, _slice_ns: u64) -> std::io::Result<()> {
    Ok(())
}

/// Sets the calling thread's time slice (0: the default), keeping its
/// policy and nice value: the attributes are read first and written back
/// with only the slice changed. Kernels before EEVDF accept and ignore the
/// field for the fair scheduling class.
#[cfg(target_os = "linux")]
fn set_slice(slice_ns: u64) -> std::io::Result<()> {
    let size = std::mem::size_of::<libc::sched_attr>();
    // SAFETY: an all-zero `sched_attr` is a valid value of this plain C
    // struct.
    #[allow(unsafe_code)]
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getattr writes at most `size` bytes into `attr`, which
    // is that large; pid 0 is the calling thread.
    #[allow(unsafe_code)]
    let read = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &raw mut attr,
            size as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if read != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if attr.sched_policy != libc::SCHED_OTHER as u32 {
        // Real-time and idle policies have their own notion of latency.
        return Ok(());
    }
    attr.size = size as u32;
    attr.sched_flags = 0;
    attr.sched_runtime = slice_ns;
    // SAFETY: sched_setattr reads `attr.size` bytes from a valid
    // `sched_attr`; pid 0 is the calling thread.
    #[allow(unsafe_code)]
    let written = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &raw const attr,
            0 as libc::c_uint,
        )
    };
    if written != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_apply_to_the_calling_thread_and_its_children() {
        std::thread::spawn(|| {
            favour_wakeups().expect("the hints are accepted");
            #[cfg(target_os = "linux")]
            {
                assert_eq!(rustix::thread::current_timer_slack().unwrap(), 1);
                let child = std::thread::spawn(|| {
                    let inherited = rustix::thread::current_timer_slack().unwrap();
                    restore_defaults().expect("the defaults are accepted");
                    (inherited, rustix::thread::current_timer_slack().unwrap())
                });
                assert_eq!(child.join().unwrap(), (1, DEFAULT_SLACK_NS));
            }
        })
        .join()
        .unwrap();
        #[cfg(target_os = "linux")]
        assert_ne!(rustix::thread::current_timer_slack().unwrap(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_nice_value_is_kept() {
        std::thread::spawn(|| {
            let me = Some(rustix::thread::gettid());
            // Raising the nice value needs no privilege.
            rustix::process::setpriority_process(me, 7).unwrap();
            favour_wakeups().expect("the hints are accepted");
            assert_eq!(rustix::process::getpriority_process(me).unwrap(), 7);
            restore_defaults().expect("the defaults are accepted");
            assert_eq!(rustix::process::getpriority_process(me).unwrap(), 7);
        })
        .join()
        .unwrap();
    }
}
