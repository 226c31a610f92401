//! The registry raises its own open-files soft limit to the hard limit at
//! start (its own test binary: it lowers this process's limit, which the
//! registry inherits).

use e2e::Registry;

fn nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system call on a stack value.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
    let (_, hard) = nofile();
    assert!(hard > 512, "hard limit {hard} too low to test a raise");
    let lowered = libc::rlimit {
        rlim_cur: 512,
        rlim_max: hard,
    };
    // SAFETY: plain system call on a stack value.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let reg = Registry::start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", reg.pid().unwrap())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], hard.to_string(), "soft limit not raised: {line}");
    // The startup line is written by the log thread, a moment after the
    // registry answers.
    let want = format!("\"open_files_limit\":{hard}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !reg.log_text().contains(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "startup line does not report the limit:\n{}",
            reg.log_tail(5)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
