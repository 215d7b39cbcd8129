use super::*;

const OPEN_FOR: Duration = Duration::from_secs(15);

fn breaker(start: Instant) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig { failure_threshold: 3, open_for: OPEN_FOR }, start)
}

fn fail(b: &CircuitBreaker, now: Instant) {
    let admission = b.try_acquire(now).unwrap();
    b.record(admission, true, now);
}

#[test]
fn opens_after_the_threshold_of_consecutive_failures() {
    let t0 = Instant::now();
    let b = breaker(t0);
    fail(&b, t0);
    fail(&b, t0);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b, t0);
    assert_eq!(b.state(), BreakerState::Open);
    assert!(b.rejects(t0));
    assert_eq!(b.try_acquire(t0 + OPEN_FOR - Duration::from_millis(1)), Err(Rejected));
}

#[test]
fn a_success_resets_the_failure_count() {
    let t0 = Instant::now();
    let b = breaker(t0);
    fail(&b, t0);
    fail(&b, t0);
    let admission = b.try_acquire(t0).unwrap();
    b.record(admission, false, t0);
    fail(&b, t0);
    fail(&b, t0);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn after_the_open_period_one_probe_goes_through_and_its_success_closes() {
    let t0 = Instant::now();
    let b = breaker(t0);
    (0..3).for_each(|_| fail(&b, t0));
    let later = t0 + OPEN_FOR;
    assert!(!b.rejects(later));
    let probe = b.try_acquire(later).unwrap();
    assert!(matches!(probe, Admission::Probe(_)));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // Only one probe at a time.
    assert!(b.rejects(later));
    assert_eq!(b.try_acquire(later), Err(Rejected));
    b.record(probe, false, later);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.try_acquire(later), Ok(Admission::Normal));
}

#[test]
fn a_failed_probe_reopens_for_another_full_period() {
    let t0 = Instant::now();
    let b = breaker(t0);
    (0..3).for_each(|_| fail(&b, t0));
    let t1 = t0 + OPEN_FOR;
    let probe = b.try_acquire(t1).unwrap();
    b.record(probe, true, t1);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.try_acquire(t1 + OPEN_FOR - Duration::from_millis(1)), Err(Rejected));
    assert!(matches!(b.try_acquire(t1 + OPEN_FOR), Ok(Admission::Probe(_))));
}

#[test]
fn a_lost_probe_is_replaced_and_its_late_answer_ignored() {
    let t0 = Instant::now();
    let b = breaker(t0);
    (0..3).for_each(|_| fail(&b, t0));
    let t1 = t0 + OPEN_FOR;
    let lost = b.try_acquire(t1).unwrap();
    let t2 = t1 + OPEN_FOR;
    let second = b.try_acquire(t2).unwrap();
    assert_ne!(lost, second);
    b.record(lost, false, t2);
    assert_eq!(b.state(), BreakerState::HalfOpen, "a superseded probe must not close the breaker");
    b.record(second, false, t2);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn calls_admitted_before_opening_do_not_move_the_state() {
    let t0 = Instant::now();
    let b = breaker(t0);
    let in_flight = b.try_acquire(t0).unwrap();
    (0..3).for_each(|_| fail(&b, t0));
    b.record(in_flight, false, t0);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn a_threshold_of_zero_means_one() {
    let t0 = Instant::now();
    let b = CircuitBreaker::new(BreakerConfig { failure_threshold: 0, open_for: OPEN_FOR }, t0);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b, t0);
    assert_eq!(b.state(), BreakerState::Open);
}
